"""What a model that predicts GZ2 vote fractions from images offers the rest of the toolkit.

Evaluation (morphology consistency of generated galaxies), `galaxy-hpc predict` and the
augmentation experiment take any such model through this one interface; the DINOv2
regressor is one implementation, a test can make another in a few lines. A predictor
saved to a folder says which implementation loads it in `predictor.json`:

    {"kind": "dino", ...anything that implementation needs}

and `load_vote_predictor(folder)` dispatches on that kind through PREDICTOR_KINDS (import
strings, so that reading this module imports no model code).

Conventions (those of galaxy_hpc.data.gz2): 37 answers in Kaggle order, per-question
fractions (each reached question sums to 1). Inputs are the training space of the
store they come from: `pixel_values` float32 (N, C, H, W) in [-1, 1] after the store's
stretch (StoreDataset's `pixel_values`), so a predictor sees generated galaxies exactly
as it saw real ones.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable

import torch

from hpc.files import loading_from, read_json
from hpc.imports import import_target
from hpc.hub import resolve_weights

MANIFEST = "predictor.json"

# kind -> "module:function" taking (folder, device) and returning a VotePredictor.
PREDICTOR_KINDS: dict[str, str] = {
    "dino": "galaxy_hpc.models.dino.predictor:load_dino_predictor",
}


@runtime_checkable
class VotePredictor(Protocol):
    """Images in, per-question GZ2 vote fractions out."""

    @property
    def image_size(self) -> int:
        """The side, in pixels, the model was trained at; callers resize to it."""

    def predict_fractions(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) float32 in [-1, 1] -> (N, 37) float32 per-question fractions.
        No gradients; the predictor moves the batch to its own device."""


def register_predictor_kind(kind: str, loader: str) -> None:
    """Make `load_vote_predictor` open folders whose predictor.json says `kind`."""
    PREDICTOR_KINDS[kind] = loader


def load_vote_predictor(folder: str | Path, *, device: str | torch.device = "cpu"
                        ) -> VotePredictor:
    folder = Path(resolve_weights(str(folder), field="the vote predictor"))
    manifest = folder / MANIFEST
    if not manifest.is_file():
        raise FileNotFoundError(f"{folder}: not a vote predictor (no {MANIFEST}); "
                                "train one with a dino config, or pass its output folder")
    try:
        kind = read_json(manifest, "the predictor's manifest")["kind"]
    except (KeyError, TypeError) as error:
        raise ValueError(f"{manifest}: unreadable ({error}); expected {{\"kind\": ...}}") from None
    if kind not in PREDICTOR_KINDS:
        raise ValueError(f"{manifest}: unknown predictor kind {kind!r}; "
                         f"known: {', '.join(sorted(PREDICTOR_KINDS)) or 'none'}")
    load = import_target(PREDICTOR_KINDS[kind], f"{manifest}: predictor kind {kind!r}")
    with loading_from(f"the vote predictor {folder} cannot be loaded", folder):
        return load(folder, torch.device(device))
