"""The condition encoder of the latent UNet, and the condition vectors of sample grids.

`ConditionEncoder` is a diffusers model (ModelMixin + ConfigMixin), so a pipeline
saves and reloads it like the UNet: `save_pretrained` writes its config and weights,
and model_index.json names this module as its library. It maps a row of store
columns (e.g. the 37 GZ2 vote fractions, or [redshift, log_stellar_mass]) to
`num_tokens` tokens the UNet cross-attends to:

    x = (conditions - mean) / std          per column, from the training store
    tokens = LayerNorm(MLP(x).view(T, D))  or LayerNorm(null_tokens) where dropped

The normalisation travels in the config, so a pipeline takes raw catalog values.
Missing values (NaN) become the column mean (0 after normalisation). The null tokens
are learned: training replaces the condition by them with probability p
(condition dropout), and sampling uses them for the unconditional half of
classifier-free guidance. They are selected inside `forward`, so that under ZeRO-3
(parameters gathered per forward) they are always whole when used.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

# (diffusers' pipeline loader looks ModelMixin up in this module: keep the import here.)
from diffusers import ConfigMixin, ModelMixin
from diffusers.configuration_utils import register_to_config


class ConditionEncoder(ModelMixin, ConfigMixin):
    @register_to_config
    def __init__(self, num_conditions: int, num_tokens: int = 4, embed_dim: int = 256,
                 hidden_dim: int = 256, condition_names: Sequence[str] | None = None,
                 mean: Sequence[float] | None = None, std: Sequence[float] | None = None) -> None:
        super().__init__()
        for name, values in (("condition_names", condition_names), ("mean", mean), ("std", std)):
            if values is not None and len(values) != num_conditions:
                raise ValueError(f"{name} has {len(values)} entries for {num_conditions} "
                                 "conditions")
        self.mlp = torch.nn.Sequential(
            torch.nn.Linear(num_conditions, hidden_dim), torch.nn.SiLU(),
            torch.nn.Linear(hidden_dim, hidden_dim), torch.nn.SiLU(),
            torch.nn.Linear(hidden_dim, num_tokens * embed_dim))
        self.null_tokens = torch.nn.Parameter(0.02 * torch.randn(num_tokens, embed_dim))
        self.norm = torch.nn.LayerNorm(embed_dim)

    def normalise(self, conditions: torch.Tensor) -> torch.Tensor:
        x = conditions.float()
        if self.config.mean is not None:
            x = x - torch.tensor(self.config.mean, dtype=torch.float32, device=x.device)
        if self.config.std is not None:
            x = x / torch.tensor(self.config.std, dtype=torch.float32, device=x.device)
        return torch.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)

    def forward(self, conditions: torch.Tensor, drop: torch.Tensor | None = None) -> torch.Tensor:
        """(B, K) raw condition values -> (B, num_tokens, embed_dim). `drop`: (B,) bool,
        True where the example gets the null (unconditional) tokens."""
        if conditions.ndim != 2 or conditions.shape[1] != self.config.num_conditions:
            raise ValueError(f"conditions must be (N, {self.config.num_conditions}), got "
                             f"{tuple(conditions.shape)}")
        dtype = self.mlp[0].weight.dtype
        batch = conditions.shape[0]
        tokens = self.mlp(self.normalise(conditions).to(dtype)).view(
            batch, self.config.num_tokens, self.config.embed_dim)
        if drop is not None:
            null = self.null_tokens.to(tokens.dtype).unsqueeze(0).expand(batch, -1, -1)
            tokens = torch.where(drop.to(tokens.device).view(-1, 1, 1), null, tokens)
        return self.norm(tokens)


def unet_inputs(unet: Any, tokens: torch.Tensor) -> dict[str, torch.Tensor]:
    """The UNet's conditioning keywords from the tokens: cross-attention context, plus the
    mean token as class label when the UNet adds one to its timestep embedding."""
    dtype = unet.dtype
    inputs = {"encoder_hidden_states": tokens.to(dtype)}
    if unet.config.class_embed_type == "projection":
        inputs["class_labels"] = tokens.mean(dim=1).to(dtype)
    return inputs


def column_statistics(values: np.ndarray) -> tuple[list[float], list[float]]:
    """Per-column mean and std (NaN ignored); a constant column gets std 1."""
    with np.errstate(all="ignore"):
        mean = np.nanmean(values, axis=0)
        std = np.nanstd(values, axis=0)
    mean = np.where(np.isfinite(mean), mean, 0.0)
    std = np.where(np.isfinite(std) & (std > 1e-8), std, 1.0)
    return mean.tolist(), std.tolist()


# Sample-grid prototypes for GZ2 vote fractions: the galaxy maximising the product of
# the fractions along a path of the decision tree.
GZ2_PROTOTYPES = (
    ("smooth, round", ("a01", "a16")),
    ("edge-on disk", ("a02", "a04")),
    ("spiral", ("a02", "a05", "a08")),
)


def prototype_conditions(columns: Sequence[str],
                         values: np.ndarray) -> tuple[list[str], np.ndarray]:
    """(labels, (P, K) condition rows) for sample grids, taken from real store rows.

    GZ2 vote columns: the most smooth-and-round, edge-on and spiral galaxies of the
    store (those prototypes whose answers are all among the columns). Otherwise: the
    rows at the 10%, 50% and 90% quantiles of the first column.
    """
    from galaxy_hpc.data.gz2 import parse_column

    values = np.asarray(values, dtype=np.float64)
    codes: dict[str, int] = {}
    for j, name in enumerate(columns):
        try:
            codes[parse_column(name)[0].code] = j
        except ValueError:
            continue
    labels, rows = [], []
    for label, path in GZ2_PROTOTYPES:
        if all(code in codes for code in path):
            score = np.prod(values[:, [codes[c] for c in path]], axis=1)
            labels.append(label)
            rows.append(values[int(np.nanargmax(np.where(np.isfinite(score), score, -1.0)))])
    if not rows:
        first = values[:, 0]
        order = np.argsort(np.where(np.isfinite(first), first, np.inf), kind="stable")
        finite = int(np.isfinite(first).sum()) or len(first)
        for q in (0.1, 0.5, 0.9):
            labels.append(f"{columns[0]} q{round(q * 100)}")
            rows.append(values[order[min(int(q * finite), finite - 1)]])
    return labels, np.stack(rows).astype(np.float32)
