"""What every small torch-fidelity feature extractor here shares: two outputs, pooled
features (for FID, KID, precision/recall) and logits (for the Inception Score), and
registration under a name in torch-fidelity's own registry, once per process.

bench_fid.py's `bench-cnn` and the tests' `tiny-test` (tests/evaluate/eval_tiny_extractor.py)
subclass it; they differ only in their network. It lives with the benchmarks, which run
from a checkout without the test tree, and the tests import it from here.
"""

from __future__ import annotations

import torch
from torch_fidelity import register_feature_extractor
from torch_fidelity.feature_extractor_base import FeatureExtractorBase
from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY


class PoolAndLogitsExtractor(FeatureExtractorBase):
    """A subclass names its pooled output (POOL) and returns select(pool, logits) from
    forward; torch-fidelity's class questions are answered here."""

    POOL = "pool"

    def select(self, pool: torch.Tensor, logits: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The outputs torch-fidelity asked for (features_list), in its order."""
        out = {self.POOL: pool, "logits": logits}
        return tuple(out[name] for name in self.features_list)

    @classmethod
    def get_provided_features_list(cls) -> tuple[str, str]:
        return (cls.POOL, "logits")

    @classmethod
    def get_default_feature_layer_for_metric(cls, metric: str) -> str:
        return {"fid": cls.POOL, "kid": cls.POOL, "prc": cls.POOL, "isc": "logits"}[metric]

    @staticmethod
    def can_be_compiled() -> bool:
        return False

    @staticmethod
    def get_dummy_input_for_compile() -> torch.Tensor:
        return torch.zeros(1, 3, 8, 8, dtype=torch.uint8)


def register_once(name: str, cls: type[FeatureExtractorBase]) -> None:
    """Register `cls` as `name` unless this process already has (a module imported twice,
    as `__main__` and by name, would register twice, which torch-fidelity refuses)."""
    if name not in FEATURE_EXTRACTORS_REGISTRY:
        register_feature_extractor(name, cls)
