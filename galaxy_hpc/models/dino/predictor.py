"""The exported regressor: a folder that `load_vote_predictor` opens, and its predictor.

    predictor/
      predictor.json        {"kind": "dino", image_size, input_size, stretch, head, ...}
      backbone/             Dinov2Model.save_pretrained (config.json, model.safetensors);
                            LoRA adapters are merged in, so it is a plain DINOv2 model
      head.safetensors      the head's weights (its shape is in predictor.json)
      metrics.json          held-out metrics of the run that wrote it (when trained)

`Dinov2Model.from_pretrained(folder / "backbone")` works on its own, so the fine-tuned
backbone can serve other uses (features for similarity search, a new head).
`image_size` is the side of the store images it was trained on: callers give images at
that side in the store's training space (the `stretch` recorded here), exactly as the
training dataset did; the network resizes to its own `input_size` itself.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from galaxy_hpc.data.gz2 import fractions_to_kaggle
from galaxy_hpc.models.dino.network import (
    VoteEncoder,
    VoteHead,
    VoteRegressor,
    load_backbone,
    plain_backbone,
)
from galaxy_hpc.models.dino.tree import tree_softmax
from galaxy_hpc.models.vote_predictor import MANIFEST
from hpc.files import follow_umask, read_json
from hpc.hub import resolve_weights

KIND = "dino"
FORMAT_VERSION = 1
HEAD_FILE = "head.safetensors"
METRICS_FILE = "metrics.json"


def save_predictor(folder: str | Path, regressor: VoteRegressor, manifest: dict[str, Any]
                   ) -> Path:
    """Write the folder. `manifest` adds what the network does not know (image_size,
    stretch, answer_columns, provenance); the network's own settings are filled in here."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    encoder = regressor.encoder
    plain_backbone(encoder.backbone).save_pretrained(folder / "backbone",
                                                      safe_serialization=True)
    save_file({k: v.detach().float().contiguous().cpu()
               for k, v in regressor.head.state_dict().items()}, str(folder / HEAD_FILE))
    full = {"kind": KIND, "format_version": FORMAT_VERSION, **manifest,
            "input_size": encoder.input_size, "pixel_mean": encoder.pixel_mean,
            "pixel_std": encoder.pixel_std, "head": regressor.head.config,
            "backbone": "backbone", "weights": HEAD_FILE}
    (folder / MANIFEST).write_text(json.dumps(full, indent=2) + "\n")
    follow_umask(folder)
    return folder


def read_manifest(folder: str | Path) -> dict[str, Any]:
    path = Path(folder) / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(f"{folder}: not a predictor folder (no {MANIFEST}); pass the "
                                "`predictor` folder a train_dino run wrote")
    manifest = read_json(path, "the predictor's manifest")
    if manifest.get("kind") != KIND:
        raise ValueError(f"{path}: kind {manifest.get('kind')!r}, not {KIND!r}")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{path}: format_version {manifest.get('format_version')} is not "
                         f"{FORMAT_VERSION}, the one this galaxy-hpc reads")
    return manifest


def load_regressor(folder: str | Path) -> tuple[VoteRegressor, dict[str, Any]]:
    """The network (float32, CPU, eval mode) and the manifest of a predictor folder."""
    from safetensors.torch import load_file

    from transformers.utils import logging as hf_logging

    folder = Path(resolve_weights(str(folder), field="model.init_from"))
    manifest = read_manifest(folder)
    shown = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # a bar per load is noise in batch jobs
    try:
        backbone = load_backbone(folder / manifest["backbone"])
    finally:
        if shown:
            hf_logging.enable_progress_bar()
    encoder = VoteEncoder(backbone, input_size=manifest["input_size"],
                          pixel_mean=manifest["pixel_mean"], pixel_std=manifest["pixel_std"])
    head = VoteHead(**manifest["head"])
    head.load_state_dict(load_file(str(folder / manifest["weights"])), strict=True)
    return VoteRegressor(encoder, head).float().eval(), manifest


class DinoVotePredictor:
    """galaxy_hpc.models.vote_predictor.VotePredictor for a predictor folder."""

    def __init__(self, regressor: VoteRegressor, manifest: dict[str, Any],
                 device: torch.device) -> None:
        self.regressor = regressor.to(device).eval()
        self.manifest = manifest
        self.device = device

    @property
    def image_size(self) -> int:
        return int(self.manifest["image_size"])

    @property
    def stretch(self) -> Any:
        """The store -> [-1, 1] map it was trained with (galaxy_hpc.data.stretch)."""
        from galaxy_hpc.data.stretch import stretch_from_dict

        return stretch_from_dict(self.manifest["stretch"])

    @property
    def answer_columns(self) -> list[str]:
        """The 37 GZ2 columns it was trained to predict, Kaggle order."""
        return list(self.manifest["answer_columns"])

    @torch.no_grad()
    def predict_logits(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """(N, 37) per-question Dirichlet log-concentrations, on this predictor's device."""
        x = torch.as_tensor(pixel_values)
        if x.ndim != 4:
            raise ValueError(f"pixel_values must be (N, C, H, W), got {tuple(x.shape)}")
        return self.regressor(x.to(self.device, torch.float32)).float()

    def predict_fractions(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) float32 in [-1, 1] -> (N, 37) per-question fractions (float32, on
        the input's device); every question sums to 1."""
        device = torch.as_tensor(pixel_values).device
        return tree_softmax(self.predict_logits(pixel_values)).to(device)

    def predict_kaggle(self, pixel_values: torch.Tensor) -> np.ndarray:
        """(N, 37) Kaggle cumulative values (float64), via gz2.fractions_to_kaggle."""
        return fractions_to_kaggle(self.predict_fractions(pixel_values).cpu().numpy())


def load_dino_predictor(folder: str | Path, device: torch.device) -> DinoVotePredictor:
    """PREDICTOR_KINDS["dino"]: what load_vote_predictor calls for this kind."""
    regressor, manifest = load_regressor(folder)
    return DinoVotePredictor(regressor, manifest, torch.device(device))
