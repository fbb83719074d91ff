"""Feature extractors from torch-fidelity's registry, built from local weights only.

torch-fidelity downloads its networks when no weights path is given; on a compute node
without internet that hangs or fails deep inside torch.hub. Here the networks it ships
need `weights` (a ValueError saying which file otherwise), and nothing is downloaded:

- inception-v3-compat, vgg16: the .pth files torch-fidelity's releases publish;
- clip-*: OpenAI's TorchScript archive (e.g. ViT-B-32.pt), which torch-fidelity loads;
- dinov2-vit-*: torch-fidelity 0.4 can only load DINOv2 through torch.hub from the
  internet, so these names are served by `LocalDinoV2` (dinov2_local.py): the same
  preprocessing around a transformers Dinov2Model folder (facebook/dinov2-small etc.).

Any other name is looked up in torch-fidelity's registry, after importing
`extractor_module` (which calls `torch_fidelity.register_feature_extractor`), and built
as torch-fidelity builds it: `cls(name, features_list, feature_extractor_weights_path=...)`.
"""

from __future__ import annotations

import hashlib
import importlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from hpc.hub import resolve_weights
# Networks torch-fidelity would download, and what to give as their weights.
NEEDS_WEIGHTS = {
    "inception-v3-compat": "torch-fidelity's weights-inception-2015-12-05-6726825d.pth",
    "vgg16": "torch-fidelity's vgg16 .pth file",
    "clip-": "OpenAI's CLIP TorchScript archive (e.g. ViT-B-32.pt)",
    "dinov2-vit-": "a transformers Dinov2Model folder (e.g. facebook/dinov2-small, "
                   "saved with save_pretrained)",
}
# Side torch-fidelity's extractors resize every image to (for the output's description).
INPUT_SIZES = {"inception-v3-compat": 299, "vgg16": 224, "clip-": 224, "dinov2-vit-": 224}


def _prefix_match(table: dict[str, str] | dict[str, int], name: str) -> Any:
    for key, value in table.items():
        if name == key or (key.endswith("-") and name.startswith(key)):
            return value
    return None


@dataclass(frozen=True)
class ExtractorSpec:
    """What was built: enough to key a cache and to say in the output what ran."""

    name: str
    class_name: str
    weights: str | None
    weights_fingerprint: str | None
    layers: dict[str, str]  # metric -> feature layer
    input_size: int | None  # what the extractor resizes to, when known

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "class": self.class_name, "weights": self.weights,
                "weights_fingerprint": self.weights_fingerprint, "layers": dict(self.layers),
                "input_size": self.input_size}

    def describe(self) -> str:
        layers = ", ".join(f"{metric} {layer}" for metric, layer in self.layers.items())
        size = f", resized by the extractor to {self.input_size}x{self.input_size}" \
            if self.input_size else ""
        return f"{self.name} (layers: {layers}; weights {self.weights or 'built in'}{size})"


def fingerprint(path: str | None) -> str | None:
    """Path, size and modification time of a weights file or folder (cheap; a changed
    file changes it), hashed."""
    if path is None:
        return None
    root = Path(path).resolve()
    files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root]
    record = [(str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in files]
    return hashlib.sha256(json.dumps(record).encode()).hexdigest()[:16]


def extractor_class(name: str, extractor_module: str | None = None) -> type:
    """The FeatureExtractorBase subclass serving `name`."""
    if extractor_module:
        try:
            importlib.import_module(extractor_module)
        except ImportError as error:
            raise ValueError(f"extractor module {extractor_module!r} does not import: "
                             f"{error}") from None
    if name.startswith("dinov2-vit-"):
        from galaxy_hpc.evaluate.dinov2_local import LocalDinoV2

        return LocalDinoV2
    from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY

    if name not in FEATURE_EXTRACTORS_REGISTRY:
        known = ", ".join(sorted(FEATURE_EXTRACTORS_REGISTRY))
        raise ValueError(f"unknown feature extractor {name!r}: known are {known}; register "
                         "your own with torch_fidelity.register_feature_extractor in a module "
                         "given as --extractor-module")
    return FEATURE_EXTRACTORS_REGISTRY[name]


def metric_layers(cls: type, metrics: list[str]) -> dict[str, str]:
    """metric -> the extractor's default feature layer for it; metrics it offers no layer
    for are left out."""
    layers = {}
    for metric in metrics:
        try:
            layer = cls.get_default_feature_layer_for_metric(metric)
        except (KeyError, NotImplementedError):
            continue
        if layer is not None:
            layers[metric] = layer
    return layers


def build_extractor(name: str, metrics: list[str], *, weights: str | None,
                    extractor_module: str | None, device: torch.device
                    ) -> tuple[torch.nn.Module, ExtractorSpec]:
    """The extractor, in eval mode on `device`, producing the layers `metrics` need."""
    cls = extractor_class(name, extractor_module)
    if weights is not None:
        weights = resolve_weights(weights, field="features.weights")
    needs = _prefix_match(NEEDS_WEIGHTS, name)
    if needs and weights is None:
        raise ValueError(f"feature extractor {name!r} needs --weights PATH ({needs}); "
                         "nothing is downloaded")
    if weights is not None and not Path(weights).exists():
        raise FileNotFoundError(f"weights {weights} of feature extractor {name!r} do not exist")
    layers = metric_layers(cls, metrics)
    if "fid" not in layers:
        raise ValueError(f"feature extractor {name!r} names no feature layer for FID")
    features_list = sorted(set(layers.values()))
    try:
        module = cls(name, features_list, feature_extractor_weights_path=weights, verbose=False)
    except (RuntimeError, OSError) as error:  # a wrong or damaged weights file
        raise ValueError(f"feature extractor {name!r} could not load weights {weights}: "
                         f"{str(error).splitlines()[0]}") from None
    module.requires_grad_(False)
    module.eval()
    module.to(device)
    spec = ExtractorSpec(name, f"{cls.__module__}.{cls.__qualname__}", weights,
                         fingerprint(weights), layers, _prefix_match(INPUT_SIZES, name))
    return module, spec


def pick_device(choice: str, local_rank: int) -> torch.device:
    """auto: this rank's GPU (local rank modulo the node's GPUs) when CUDA works, else CPU."""
    if choice == "cpu" or (choice == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise ValueError("device 'cuda' was asked for but torch sees no GPU")
    return torch.device("cuda", local_rank % torch.cuda.device_count())


def extract(module: torch.nn.Module, batch: torch.Tensor, device: torch.device
            ) -> dict[str, torch.Tensor]:
    """{layer: (N, D) float32 tensor, left on `device`} for one uint8 batch."""
    with torch.no_grad():
        out = module(batch.to(device, non_blocking=True))
    return {name: value.detach().to(torch.float32).reshape(value.shape[0], -1)
            for name, value in module.convert_features_tuple_to_dict(out).items()}
