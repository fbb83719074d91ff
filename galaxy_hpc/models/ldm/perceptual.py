"""The optional third term of the autoencoder loss (see config.PerceptualSection).

No weights are downloaded. `GradientLoss` needs none: it compares image gradients at
several scales, a structure term, honestly not a learned perceptual metric.
`VGGFeatureLoss` is the classic feature-space ("perceptual") loss on VGG16 ImageNet
features, read from a local torchvision weights file the user points to; LPIPS adds
learned per-channel weights on top of the same features, which we do not have offline.
Both take images in the model's [-1, 1] space, (B, C, H, W), and return a scalar.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from hpc.hub import resolve_weights

# Last layer index of each VGG16 stage in torchvision's `features` (relu1_2 ... relu5_3).
_VGG_TAPS = (3, 8, 15, 22, 29)
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


class GradientLoss(torch.nn.Module):
    """Mean over scales of L1(d/dx rec - d/dx x) + L1(d/dy rec - d/dy x); 2x average
    pooling between scales."""

    def __init__(self, num_scales: int = 3) -> None:
        super().__init__()
        self.num_scales = num_scales

    def forward(self, reconstruction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        a, b = reconstruction.float(), target.float()
        total = a.new_zeros(())
        used = 0
        for scale in range(self.num_scales):
            if scale:
                if min(a.shape[-2:]) < 4:
                    break
                a, b = F.avg_pool2d(a, 2), F.avg_pool2d(b, 2)
            total = total + (a.diff(dim=-1) - b.diff(dim=-1)).abs().mean() \
                + (a.diff(dim=-2) - b.diff(dim=-2)).abs().mean()
            used += 1
        return total / max(used, 1)


class VGGFeatureLoss(torch.nn.Module):
    """Sum over VGG16 stages of the mean squared distance between channel-normalised
    feature maps. Frozen; 3-band images go in as RGB, other band counts band by band as
    grey images."""

    def __init__(self, weights_path: str | Path) -> None:
        super().__init__()
        # The convolutional part only (what torchvision's vgg16().features is): the
        # classifier would be 120 M parameters we never use.
        from torchvision.models.vgg import cfgs, make_layers

        path = Path(resolve_weights(str(weights_path), field="model.perceptual.weights_path"))
        if not path.is_file():
            raise ValueError(f"model.perceptual.weights_path: no such file {path} (a local "
                             "torchvision vgg16 state dict, e.g. vgg16-397923af.pth; nothing "
                             "is downloaded). Or use perceptual.kind: gradient")
        state = torch.load(path, map_location="cpu", weights_only=True)
        features = {k[len("features."):]: v for k, v in state.items() if k.startswith("features.")}
        net = make_layers(cfgs["D"])[:_VGG_TAPS[-1] + 1]
        try:
            net.load_state_dict(features or state)
        except RuntimeError as error:
            raise ValueError(f"{path} is not a torchvision vgg16 state dict: "
                             f"{str(error).splitlines()[0]}") from None
        self.net = net.eval().requires_grad_(False)
        for name, values in (("mean", _IMAGENET_MEAN), ("std", _IMAGENET_STD)):
            self.register_buffer(name, torch.tensor(values).view(1, 3, 1, 1), persistent=False)

    def _features(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = ((x + 1) / 2 - self.mean.to(x.dtype)) / self.std.to(x.dtype)
        taps = []
        for index, layer in enumerate(self.net):
            x = layer(x)
            if index in _VGG_TAPS:
                taps.append(x / (x.norm(dim=1, keepdim=True) + 1e-10))
        return taps

    def forward(self, reconstruction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        channels = reconstruction.shape[1]
        if channels != 3:  # each band as a grey RGB image
            def grey(x: torch.Tensor) -> torch.Tensor:
                return x.reshape(-1, 1, *x.shape[2:]).expand(-1, 3, -1, -1)

            reconstruction, target = grey(reconstruction), grey(target)
        dtype = next(self.net.parameters()).dtype
        total = reconstruction.new_zeros((), dtype=torch.float32)
        for a, b in zip(self._features(reconstruction.to(dtype)), self._features(target.to(dtype))):
            total = total + (a.float() - b.float()).pow(2).sum(dim=1).mean()
        return total


def build_perceptual(section: Any) -> torch.nn.Module | None:
    """The configured term's module (frozen), or None when kind is none or weight 0."""
    if section.kind == "none" or section.weight == 0:
        return None
    if section.kind == "gradient":
        return GradientLoss(section.num_scales)
    return VGGFeatureLoss(section.weights_path)
