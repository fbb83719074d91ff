"""DINOv2 features from a local transformers folder, prepared as torch-fidelity prepares them.

torch-fidelity 0.4 builds its dinov2-vit-* extractors with torch.hub.load from GitHub
and raises NotImplementedError for a weights path, so offline it cannot run at all.
This extractor keeps its input handling (uint8 RGB, TensorFlow-1-compatible bilinear
resize to 224 x 224, ImageNet mean/std scaled to 0..255) and its output (the normalised
CLS token, `x_norm_clstoken` of the hub model, which is transformers' `pooler_output`),
and takes the network from a folder in transformers layout (`Dinov2Model.from_pretrained`
of facebook/dinov2-small, -base, -large or -giant, downloaded once by hand). The hub
model and transformers interpolate the position embeddings from 518 to 224 pixels in
slightly different ways, so features agree closely but not bit for bit with the hub's.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch_fidelity.feature_extractor_base import FeatureExtractorBase
from torch_fidelity.interpolate_compat_tensorflow import interpolate_bilinear_2d_like_tensorflow1x

INPUT_IMAGE_SIZE = 224
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


class LocalDinoV2(FeatureExtractorBase):
    """dinov2-vit-{s,b,l,g}-14 from `feature_extractor_weights_path` (a transformers folder)."""

    def __init__(self, name: str, features_list: list[str],
                 feature_extractor_weights_path: str | None = None, **kwargs) -> None:
        super().__init__(name, features_list)
        folder = Path(feature_extractor_weights_path or "")
        if feature_extractor_weights_path is None or not (folder / "config.json").is_file():
            raise ValueError(f"{name}: weights must be a transformers Dinov2Model folder "
                             f"(with config.json), got {feature_extractor_weights_path}")
        from transformers import Dinov2Model

        self.model = Dinov2Model.from_pretrained(folder, local_files_only=True)
        self.register_buffer("mean", torch.tensor(MEAN).view(1, 3, 1, 1) * 255, persistent=False)
        self.register_buffer("std", torch.tensor(STD).view(1, 3, 1, 1) * 255, persistent=False)
        self.requires_grad_(False)
        self.eval()

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        if x.dtype != torch.uint8 or x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"expected a (N, 3, H, W) uint8 batch, got {tuple(x.shape)} {x.dtype}")
        x = interpolate_bilinear_2d_like_tensorflow1x(
            x.to(torch.float32), size=(INPUT_IMAGE_SIZE, INPUT_IMAGE_SIZE), align_corners=False)
        x = (x - self.mean) / self.std
        features = {"dinov2": self.model(pixel_values=x).pooler_output.to(torch.float32)}
        return tuple(features[name] for name in self.features_list)

    @staticmethod
    def get_provided_features_list() -> tuple[str, ...]:
        return ("dinov2",)

    @staticmethod
    def get_default_feature_layer_for_metric(metric: str) -> str:
        # As torch-fidelity's DINOv2: one layer for everything (IS on it means little).
        return {"isc": "dinov2", "fid": "dinov2", "kid": "dinov2", "prc": "dinov2"}[metric]

    @staticmethod
    def can_be_compiled() -> bool:
        return False

    @staticmethod
    def get_dummy_input_for_compile() -> torch.Tensor:
        return torch.zeros(1, 3, 4, 4, dtype=torch.uint8)
