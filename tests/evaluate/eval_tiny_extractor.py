"""A small feature extractor registered with torch-fidelity's own registry, for tests and
benchmarks: fixed random convolutions (seeded; or weights from a file), 16 features and 10
logits per image, any input size (pooled). Importing this module registers it."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch_fidelity import register_feature_extractor
from torch_fidelity.feature_extractor_base import FeatureExtractorBase
from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY

NAME = "tiny-test"
# About the mean feature of synthetic galaxies: logits around it spread over the classes,
# so the Inception Score is not trivially 1.
CENTRE = (0.29, -0.64, 0.51, 0.84, -0.33, 0.79, 0.50, -0.23, 0.01, 0.25, -0.68, -0.11, 0.59,
          -0.35, -0.92, 0.11)


class TinyExtractor(FeatureExtractorBase):
    def __init__(self, name, features_list, feature_extractor_weights_path=None, **kwargs):
        super().__init__(name, features_list)
        generator = torch.Generator().manual_seed(1234)
        self.conv1 = torch.nn.Conv2d(3, 8, 3, stride=2)
        self.conv2 = torch.nn.Conv2d(8, 16, 3, stride=2)
        self.fc = torch.nn.Linear(16, 10)
        for p in self.parameters():
            with torch.no_grad():
                p.copy_(torch.randn(p.shape, generator=generator) * 0.3)
        self.register_buffer("centre", torch.tensor(CENTRE), persistent=False)
        if feature_extractor_weights_path is not None:
            self.load_state_dict(torch.load(feature_extractor_weights_path, weights_only=True))

    def forward(self, x):
        assert x.dtype == torch.uint8 and x.shape[1] == 3, (x.dtype, x.shape)
        x = F.interpolate(x.float() / 255.0, size=(32, 32), mode="bilinear", align_corners=False)
        x = torch.tanh(self.conv1(x))
        x = torch.tanh(self.conv2(x))
        feats = x.mean(dim=(2, 3))
        out = {"feat": feats, "logits": self.fc(feats - self.centre) * 20}
        return tuple(out[name] for name in self.features_list)

    @staticmethod
    def get_provided_features_list():
        return ("feat", "logits")

    @staticmethod
    def get_default_feature_layer_for_metric(metric):
        return {"fid": "feat", "kid": "feat", "prc": "feat", "isc": "logits"}[metric]

    @staticmethod
    def can_be_compiled():
        return False

    @staticmethod
    def get_dummy_input_for_compile():
        return torch.zeros(1, 3, 8, 8, dtype=torch.uint8)


if NAME not in FEATURE_EXTRACTORS_REGISTRY:
    register_feature_extractor(NAME, TinyExtractor)
