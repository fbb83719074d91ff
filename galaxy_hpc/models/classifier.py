"""A small convolutional galaxy classifier: the yardstick of the augmentation experiment.

Deliberately plain (four conv blocks, global pooling, a linear layer) so that what
changes between the experiment's arms is the training data, not the model: the
question is whether generated galaxies teach a classifier something real ones alone do
not, as galaxyCGAN's DAGAN experiment and GalaxySD's downstream test ask. Global
average pooling makes it indifferent to the input size and, with rotation/flip
augmentation, close to rotation invariant, as galaxy morphology is.
"""

from __future__ import annotations

import torch
from torch import nn


class GalaxyClassifier(nn.Module):
    def __init__(self, in_channels: int, num_classes: int, width: int = 32) -> None:
        super().__init__()
        if num_classes < 2:
            raise ValueError(f"a classifier needs at least 2 classes, got {num_classes}")
        layers: list[nn.Module] = []
        channels = in_channels
        for k in range(4):
            out = width * 2 ** min(k, 2)
            layers += [nn.Conv2d(channels, out, 3, padding=1, bias=False), nn.BatchNorm2d(out),
                       nn.SiLU(), nn.Conv2d(out, out, 3, padding=1, bias=False),
                       nn.BatchNorm2d(out), nn.SiLU()]
            if k < 3:
                layers.append(nn.AvgPool2d(2))
            channels = out
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(channels, num_classes)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) in [-1, 1] -> (N, num_classes) logits."""
        return self.head(self.features(pixel_values).mean(dim=(2, 3)))
