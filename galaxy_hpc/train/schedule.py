"""Learning-rate schedules as multipliers of the base lr, for torch's LambdaLR."""

from __future__ import annotations

import math
from typing import Callable


def lr_multiplier(schedule: str, *, warmup_steps: int, max_steps: int,
                  min_ratio: float = 0.0) -> Callable[[int], float]:
    """Linear warm-up from ~0 to 1 over `warmup_steps`, then constant, cosine or linear decay
    to `min_ratio` at `max_steps`."""
    if schedule not in ("constant", "cosine", "linear"):
        raise ValueError(f"schedule must be constant, cosine or linear, got {schedule!r}")

    def multiplier(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        if schedule == "constant":
            return 1.0
        span = max(1, max_steps - warmup_steps)
        progress = min(1.0, (step - warmup_steps) / span)
        if schedule == "cosine":
            shape = 0.5 * (1.0 + math.cos(math.pi * progress))
        else:
            shape = 1.0 - progress
        return min_ratio + (1.0 - min_ratio) * shape

    return multiplier
