"""A DINOv2 vote predictor folder with random weights: no training needed to test the
commands that read one (written by the same code a training run exports with)."""

from __future__ import annotations

from pathlib import Path


def random_vote_predictor(folder, *, head_std: float | None = None,
                          stretch: dict | None = None) -> Path:
    """A tiny 32 px predictor at `folder` (seed 0). `head_std`: redraw the head's last
    layer with this spread, so that outputs differ from galaxy to galaxy. `stretch`: the
    one its manifest records (uint8 by default; an asinh one for float stores)."""
    import torch

    from galaxy_hpc.data.gz2 import ANSWERS, column_name
    from galaxy_hpc.models.dino.config import TinyBackboneSection
    from galaxy_hpc.models.dino.network import (
        VoteEncoder,
        VoteHead,
        VoteRegressor,
        pixel_normalisation,
        tiny_backbone,
    )
    from galaxy_hpc.models.dino.predictor import save_predictor

    torch.manual_seed(0)
    backbone = tiny_backbone(TinyBackboneSection(), num_channels=3, image_size=32)
    mean, std = pixel_normalisation(3)
    encoder = VoteEncoder(backbone, input_size=32, pixel_mean=mean, pixel_std=std)
    head = VoteHead(encoder.feature_dim, 16, 0.0)
    if head_std is not None:
        torch.nn.init.normal_(head.net[-1].weight, std=head_std)
    save_predictor(folder, VoteRegressor(encoder, head),
                   {"image_size": 32, "stretch": stretch or {"kind": "uint8"},
                    "answer_columns": [column_name(a) for a in ANSWERS]})
    return Path(folder)
