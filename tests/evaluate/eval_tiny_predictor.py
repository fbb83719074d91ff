"""A small VotePredictor made by the tests: a linear map of 4x4-pooled pixels to logits,
softmaxed per GZ2 question, saved to and loaded from a folder with predictor.json."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from galaxy_hpc.data.gz2 import QUESTIONS
from galaxy_hpc.models.vote_predictor import MANIFEST, register_predictor_kind

KIND = "tiny-test"


class TinyPredictor(torch.nn.Module):
    def __init__(self, channels: int, size: int) -> None:
        super().__init__()
        self.size = size
        self.linear = torch.nn.Linear(channels * 16, 37)

    @property
    def image_size(self) -> int:
        return self.size

    def predict_fractions(self, pixel_values: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            assert pixel_values.shape[-1] == self.size, pixel_values.shape
            pooled = torch.nn.functional.adaptive_avg_pool2d(pixel_values, 4).flatten(1)
            logits = self.linear(pooled)
            parts = [logits[:, q.columns].softmax(dim=1) for q in QUESTIONS]
            return torch.cat(parts, dim=1)


def save(folder: Path, channels: int, size: int, seed: int = 0) -> Path:
    torch.manual_seed(seed)
    model = TinyPredictor(channels, size)
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), folder / "weights.pt")
    (folder / MANIFEST).write_text(json.dumps({"kind": KIND, "channels": channels, "size": size}))
    return folder


def load(folder: Path, device: torch.device) -> TinyPredictor:
    meta = json.loads((Path(folder) / MANIFEST).read_text())
    model = TinyPredictor(meta["channels"], meta["size"])
    model.load_state_dict(torch.load(Path(folder) / "weights.pt", weights_only=True))
    return model.to(device).eval()


def reference_predictions(model: TinyPredictor, pixels: np.ndarray) -> np.ndarray:
    return model.predict_fractions(torch.from_numpy(pixels)).double().numpy()


register_predictor_kind(KIND, "eval_tiny_predictor:load")
