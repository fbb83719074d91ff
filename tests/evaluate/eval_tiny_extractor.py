"""A small feature extractor registered with torch-fidelity's own registry, for tests and
benchmarks: fixed random convolutions (seeded; or weights from a file), 16 features and 10
logits per image, any input size (pooled). Importing this module registers it.

Its torch-fidelity side (the outputs it provides, which metric reads which, registration)
is benchmarks/fidelity_extractor.py's, shared with bench_fid.py's extractor; that folder is
put on sys.path here, so that subprocesses given this folder on PYTHONPATH find it too."""

from __future__ import annotations

import sys
from pathlib import Path

import torch
import torch.nn.functional as F

BENCHMARKS = str(Path(__file__).resolve().parents[2] / "benchmarks")
if BENCHMARKS not in sys.path:
    sys.path.append(BENCHMARKS)

from fidelity_extractor import PoolAndLogitsExtractor, register_once  # noqa: E402

NAME = "tiny-test"
# About the mean feature of synthetic galaxies: logits around it spread over the classes,
# so the Inception Score is not trivially 1.
CENTRE = (0.29, -0.64, 0.51, 0.84, -0.33, 0.79, 0.50, -0.23, 0.01, 0.25, -0.68, -0.11, 0.59,
          -0.35, -0.92, 0.11)


class TinyExtractor(PoolAndLogitsExtractor):
    POOL = "feat"

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
        return self.select(feats, self.fc(feats - self.centre) * 20)


register_once(NAME, TinyExtractor)
