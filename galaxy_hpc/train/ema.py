"""Exponential moving average of the trainable weights, ZeRO-3 aware.

Under ZeRO stages 0-2 every rank holds whole parameters; under stage 3 each
rank holds a partition (`param.ds_tensor`) and the full tensor exists only
inside a gather. The EMA therefore keeps a shadow of whatever this rank holds
locally: whole tensors or its partitions. To export EMA weights, `swapped_in()`
copies the shadow into the local storage, the caller runs the usual
consolidation (a plain state_dict, or DeepSpeed's 16-bit gather under stage 3)
and the trained weights come back on exit.

The shadow is float32 even when the module trains in bf16: averaging in bf16
would round away updates smaller than 1/256 of a weight.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

import torch


def _local(param: torch.nn.Parameter) -> torch.Tensor:
    return param.ds_tensor if hasattr(param, "ds_tensor") else param.data


class ParameterEMA:
    def __init__(self, params: list[torch.nn.Parameter], *, decay: float, warmup: bool = True):
        self.params = list(params)
        self.decay = decay
        self.warmup = warmup
        self.num_updates = 0
        self.shadow = [_local(p).detach().float().clone() for p in self.params]

    def current_decay(self) -> float:
        if not self.warmup:
            return self.decay
        return min(self.decay, (1 + self.num_updates) / (10 + self.num_updates))

    @torch.no_grad()
    def update(self) -> None:
        weight = 1.0 - self.current_decay()
        for shadow, param in zip(self.shadow, self.params):
            shadow.lerp_(_local(param).float(), weight)
        self.num_updates += 1

    @contextmanager
    def swapped_in(self) -> Iterator[None]:
        backup = [_local(p).detach().clone() for p in self.params]
        with torch.no_grad():
            for shadow, param in zip(self.shadow, self.params):
                _local(param).copy_(shadow.to(_local(param).dtype))
        try:
            yield
        finally:
            with torch.no_grad():
                for saved, param in zip(backup, self.params):
                    _local(param).copy_(saved)

    def state_dict(self) -> dict[str, Any]:
        return {"num_updates": self.num_updates, "decay": self.decay,
                "shadow": [s.cpu() for s in self.shadow]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if len(state["shadow"]) != len(self.shadow):
            raise ValueError(f"EMA checkpoint has {len(state['shadow'])} tensors, the model "
                             f"{len(self.shadow)}: was it saved with another model or ZeRO stage?")
        for mine, saved in zip(self.shadow, state["shadow"]):
            if mine.shape != saved.shape:
                raise ValueError(f"EMA checkpoint tensor of shape {tuple(saved.shape)} does not fit "
                                 f"{tuple(mine.shape)} (another world size under ZeRO-3?)")
            mine.copy_(saved.to(mine.device))
        self.num_updates = int(state["num_updates"])
