"""The regressor's network: a Dinov2Model backbone, its input, a head, LoRA.

Inputs are the training space of the store (`pixel_values` in [-1, 1] after its
stretch). The encoder maps them to what DINOv2 checkpoints were trained on: [0, 1],
resized to `input_size` (224 for dinov2-base; patch 14 gives 16 x 16 tokens) and
normalised by the ImageNet mean and std for 3-band images; other band counts (a
backbone trained from scratch on flux stores) keep [0, 1] with mean 0.5, std 0.5.
Resizing happens inside the network, on the device, so the dataset and the predictor
hand over the store's own side and nothing is resized twice.

Features are [CLS token, mean of the patch tokens] of the last layer (after its
LayerNorm), as Dinov2ForImageClassification feeds its classifier: the CLS token alone
carries less of the local structure a bulge or a disk is.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from galaxy_hpc.data.gz2 import NUM_ANSWERS
from galaxy_hpc.models.dino.tree import bounded
from hpc.files import loading_from
from hpc.hub import resolve_weights

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def pixel_normalisation(num_channels: int) -> tuple[list[float], list[float]]:
    if num_channels == 3:
        return list(IMAGENET_MEAN), list(IMAGENET_STD)
    return [0.5] * num_channels, [0.5] * num_channels


def tiny_backbone(tiny: Any, *, num_channels: int, image_size: int) -> Any:
    """A Dinov2Model with random weights from a TinyBackboneSection (seeded by the caller)."""
    from transformers import Dinov2Config, Dinov2Model

    config = Dinov2Config(hidden_size=tiny.hidden_size, num_hidden_layers=tiny.num_layers,
                          num_attention_heads=tiny.num_heads, mlp_ratio=tiny.mlp_ratio,
                          patch_size=tiny.patch_size, image_size=image_size,
                          num_channels=num_channels)
    return Dinov2Model(config)


def load_backbone(path: str | Path) -> Any:
    """A Dinov2Model from a folder in transformers layout, or a Hub id in the local
    cache (hpc.hub; never downloads)."""
    from transformers import Dinov2Model

    folder = Path(resolve_weights(str(path), field="model.backbone"))
    if not (folder / "config.json").is_file():
        raise ValueError(f"model.backbone: {folder} is not a transformers model folder (no "
                         "config.json); save a DINOv2 checkpoint such as dinov2-base there "
                         "with save_pretrained (nothing is downloaded)")
    with loading_from(f"model.backbone {folder} cannot be loaded", folder):
        model = Dinov2Model.from_pretrained(folder, local_files_only=True)
    if model.config.model_type != "dinov2":
        raise ValueError(f"model.backbone: {folder} holds a {model.config.model_type!r} model, "
                         "not dinov2")
    return model


class VoteHead(torch.nn.Module):
    """Features -> 37 bounded log-concentrations (see tree.py)."""

    def __init__(self, in_dim: int, hidden_dim: int, dropout: float) -> None:
        super().__init__()
        self.config = {"in_dim": int(in_dim), "hidden_dim": int(hidden_dim),
                       "dropout": float(dropout)}
        if hidden_dim:
            self.net = torch.nn.Sequential(
                torch.nn.Dropout(dropout), torch.nn.Linear(in_dim, hidden_dim),
                torch.nn.GELU(), torch.nn.Dropout(dropout),
                torch.nn.Linear(hidden_dim, NUM_ANSWERS))
        else:
            self.net = torch.nn.Sequential(torch.nn.Dropout(dropout),
                                           torch.nn.Linear(in_dim, NUM_ANSWERS))
        # A near-uniform start: every question begins at equal fractions, so the first
        # steps do not spend themselves undoing a random confident guess.
        last = self.net[-1]
        torch.nn.init.normal_(last.weight, std=1e-3)
        torch.nn.init.zeros_(last.bias)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return bounded(self.net(features))


class VoteEncoder(torch.nn.Module):
    """Store-space images -> pooled backbone features (N, 2 x hidden)."""

    def __init__(self, backbone: Any, *, input_size: int, pixel_mean: list[float],
                 pixel_std: list[float]) -> None:
        super().__init__()
        self.backbone = backbone
        self.input_size = int(input_size)
        # Plain lists, not buffers: nothing to partition, round or save.
        self.pixel_mean, self.pixel_std = list(pixel_mean), list(pixel_std)

    @property
    def feature_dim(self) -> int:
        return 2 * self.backbone.config.hidden_size

    def backbone_input(self, pixel_values: torch.Tensor) -> torch.Tensor:
        dtype = next(self.backbone.parameters()).dtype
        x = (pixel_values.float() + 1.0) * 0.5
        if x.shape[-2:] != (self.input_size, self.input_size):
            x = F.interpolate(x, size=(self.input_size, self.input_size), mode="bilinear",
                              antialias=x.shape[-1] > self.input_size, align_corners=False)
        mean = torch.tensor(self.pixel_mean, device=x.device).view(1, -1, 1, 1)
        std = torch.tensor(self.pixel_std, device=x.device).view(1, -1, 1, 1)
        return ((x - mean) / std).to(dtype)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        tokens = self.backbone(pixel_values=self.backbone_input(pixel_values)).last_hidden_state
        return torch.cat([tokens[:, 0], tokens[:, 1:].mean(dim=1)], dim=1)


class VoteRegressor(torch.nn.Module):
    """encoder + head: images in [-1, 1] -> (N, 37) log-concentrations."""

    def __init__(self, encoder: VoteEncoder, head: VoteHead) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = head

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(pixel_values))


def add_lora(backbone: Any, lora: Any) -> Any:
    """The backbone wrapped by peft with LoRA adapters; only the adapters train."""
    from peft import get_peft_model

    from galaxy_hpc.models.lora import lora_config

    names = {name.rsplit(".", 1)[-1] for name, _ in backbone.named_modules()}
    missing = [t for t in lora.target_modules if t not in names]
    if missing:
        raise ValueError(f"lora.target_modules {missing} are not modules of the backbone; "
                         "DINOv2's attention has q_proj, k_proj, v_proj, o_proj and its MLP "
                         "mlp.fc1, mlp.fc2")
    return get_peft_model(backbone, lora_config(lora))


def plain_backbone(backbone: Any) -> Any:
    """A Dinov2Model with any LoRA adapters merged into its weights (what is exported)."""
    from peft import PeftModel

    return backbone.merge_and_unload() if isinstance(backbone, PeftModel) else backbone
