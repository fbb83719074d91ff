"""Validation during training: the loss on the held-out items, the best so far, when to stop.

Every `run.eval_every` steps each rank computes the family's `validation_loss` on its
share of the held-out items (data.validation_fraction, galaxy_hpc/data/split.py), in
eval mode and without gradients; the loop averages it over all held-out items of all
ranks. A family with `whole_set_validation` (a distance between distributions, which no
mean over batches gives) measures its items instead (`measure_rank`), the loop gathers
them in store order (`in_store_order`) and the family scores the whole set. The set is
fixed (the first `data.validation_max_items` held-out items, no augmentation, no caption
dropout, captions as stored) and every batch's randomness (noise, timesteps) is seeded
from the batch's first store index, not the step, so successive validations differ only
by the weights. A whole-set family can seed each item instead
(galaxy_hpc.models.contract.item_seed): then its
score does not depend on how the items fell into batches over the ranks either.

`BestTracker` is the pure bookkeeping: the lowest loss and its step, the validations
since then, and whether early stopping says stop. It is saved in every checkpoint, so
a killed run resumes knowing its best; the checkpoint of the best loss is kept beside
the newest ones (hpc.checkpoint.mark_best).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np


@dataclass
class BestTracker:
    """Lowest validation loss so far, and early stopping (patience 0: never stop)."""

    patience: int = 0
    min_delta: float = 0.0
    best_loss: float | None = None
    best_step: int | None = None
    num_worse: int = 0  # validations since the last improvement

    def update(self, step: int, loss: float) -> bool:
        """Record the validation at `step`; True when it is the new best. A NaN or inf
        loss never improves (and counts towards patience)."""
        better = math.isfinite(loss) and (self.best_loss is None
                                          or loss < self.best_loss - self.min_delta)
        if better:
            self.best_loss, self.best_step, self.num_worse = float(loss), int(step), 0
        else:
            self.num_worse += 1
        return better

    @property
    def should_stop(self) -> bool:
        return self.patience > 0 and self.num_worse >= self.patience

    def state_dict(self) -> dict[str, Any]:
        return {"best_loss": self.best_loss, "best_step": self.best_step,
                "num_worse": self.num_worse}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """The state saved with a checkpoint; patience and min_delta stay this run's."""
        self.best_loss, self.best_step = state["best_loss"], state["best_step"]
        self.num_worse = int(state["num_worse"])


def batch_seed(seed: int, first_index: int) -> int:
    """The RNG seed of a validation batch: its first store index under the run's seed."""
    digest = hashlib.sha256(f"{seed}:validation:{first_index}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def validation_items(split: Any, max_items: int | None, world_size: int) -> np.ndarray:
    """The held-out store indices validated on: the first `max_items` in store order."""
    items = split.heldout if max_items is None else split.heldout[:max_items]
    if len(items) < world_size:
        raise ValueError(f"data.validation_fraction {split.fraction} holds out {len(items)} "
                         f"items, fewer than the {world_size} ranks that validate on them; "
                         "raise it")
    return items


def validation_dataset(cfg: Any, train_dataset: Any, split: Any, *, rank: int,
                       world_size: int) -> Any:
    """This rank's share of the held-out items as a StoreDataset, read in store order.
    Under ZeRO-3 every forward is a collective, so every rank must run as many batches:
    then each rank gets the same whole batches (dropping fewer than world_size x
    micro_batch_size items); otherwise ranks differ by at most one item."""
    from galaxy_hpc.data.dataset import StoreDataset

    items = validation_items(split, cfg.data.validation_max_items, world_size)
    equal = cfg.zero.stage == 3
    if equal and len(items) < world_size * cfg.run.micro_batch_size:
        raise ValueError(f"data.validation_fraction: {len(items)} held-out items are too few "
                         f"for a batch of {cfg.run.micro_batch_size} on each of {world_size} "
                         "ranks under ZeRO-3; raise it")
    return StoreDataset(train_dataset.store, rank=rank, world_size=world_size,
                        seed=cfg.run.seed, shuffle=False, drop_last=equal,
                        batch_size=cfg.run.micro_batch_size, augment=None,
                        caption_column=cfg.data.caption_column, shuffle_caption_tags=False,
                        condition_columns=cfg.data.condition_columns,
                        stretch=train_dataset.stretch, items=items,
                        pixels=train_dataset.pixels)


def validate_rank(family: Any, module: Any, dataset: Any, seed: int) -> dict[str, float]:
    """This rank's sums over its held-out items: {"items": n, "loss": sum of loss x batch
    size, term: likewise}, for the caller to all-reduce and divide. The module must
    already be in eval mode."""
    import torch

    sums: dict[str, float] = {"items": 0.0, "loss": 0.0}
    with torch.no_grad():
        for raw in dataset.batches():
            torch.manual_seed(batch_seed(seed, int(raw["index"][0])))
            batch = family.prepare_batch(raw)
            loss, terms = family.validation_loss(module, batch)
            size = len(raw["index"])
            sums["items"] += size
            sums["loss"] += float(loss.detach().float().item()) * size
            for name, value in terms.items():
                sums[name] = sums.get(name, 0.0) + float(value.detach().float().item()) * size
    return sums


def measure_rank(family: Any, module: Any, dataset: Any, seed: int
                 ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """This rank's held-out items for a whole-set validation: (store indices, {name:
    per-item array}) from the family's `validation_measure`, batches seeded as in
    `validate_rank`. The module must already be in eval mode."""
    import torch

    indices: list[np.ndarray] = []
    parts: dict[str, list[np.ndarray]] = {}
    with torch.no_grad():
        for raw in dataset.batches():
            torch.manual_seed(batch_seed(seed, int(raw["index"][0])))
            measured = family.validation_measure(module, family.prepare_batch(raw))
            size = len(raw["index"])
            for name, values in measured.items():
                values = np.asarray(values)
                if values.shape[:1] != (size,):
                    raise ValueError(f"{type(family).__name__}.validation_measure: {name!r} "
                                     f"has shape {values.shape}, not the batch's {size} "
                                     "items first")
                parts.setdefault(name, []).append(values)
            indices.append(np.asarray(raw["index"], dtype=np.int64))
    index = np.concatenate(indices) if indices else np.zeros(0, np.int64)
    return index, {name: np.concatenate(values) for name, values in parts.items()}


def in_store_order(per_rank: list[tuple[np.ndarray, dict[str, np.ndarray]]]
                   ) -> dict[str, np.ndarray]:
    """Every rank's (indices, measurements) as one set in store order: the same order
    however the items were split over ranks."""
    index = np.concatenate([part[0] for part in per_rank])
    order = np.argsort(index, kind="stable")
    names = [name for part in per_rank for name in part[1]]
    return {name: np.concatenate([part[1][name] for part in per_rank if name in part[1]])[order]
            for name in dict.fromkeys(names)}


def whole_set_totals(family: Any, measured: dict[str, np.ndarray], num_items: int
                     ) -> dict[str, float]:
    """The family's score of the gathered held-out set as the totals `as_row` reads (sums
    over items: the score times the item count)."""
    loss, terms = family.validation_score(measured)
    totals = {"items": float(num_items), "loss": float(loss) * num_items}
    totals.update({name: float(value) * num_items for name, value in terms.items()})
    return totals


def name_best(tracker: BestTracker, root: Any) -> None:
    """Rank 0: <root>/best.json names the checkpoint of the tracker's best step, when that
    checkpoint is complete and another (or none) is named; also after a resume, for a
    job killed between saving a best and naming it."""
    from hpc.checkpoint import MARKER, best_checkpoint, checkpoint_dir, mark_best

    step = tracker.best_step
    if step is None or not (checkpoint_dir(root, step) / MARKER).is_file():
        return
    named = best_checkpoint(root)
    if named is None or named.step != step:
        mark_best(root, step, val_loss=tracker.best_loss)


def validation_result(tracker: BestTracker, root: Any, stopped: bool) -> dict[str, Any]:
    """What a run's result says of its validations."""
    from hpc.checkpoint import best_checkpoint

    best = best_checkpoint(root)
    return {"best_loss": tracker.best_loss, "best_step": tracker.best_step,
            "best_checkpoint": str(best.path) if best else None, "stopped_early": stopped}


def as_row(totals: dict[str, float], tracker: BestTracker) -> dict[str, Any]:
    """The log row of one validation from sums over all ranks: val_loss, val_<term>,
    the item count and the best so far."""
    count = max(totals["items"], 1.0)
    row = {f"val_{name}": value / count for name, value in totals.items() if name != "items"}
    row["val_items"] = int(totals["items"])
    row["best_val_loss"] = tracker.best_loss
    row["best_val_step"] = tracker.best_step
    return row


def summary(tracker: BestTracker) -> dict[str, Any]:
    return asdict(tracker)
