"""Exponential moving average of the trainable weights, ZeRO-3 aware.

Under ZeRO stages 0-2 every rank holds whole parameters; under stage 3 each
rank holds a partition (`param.ds_tensor`) and the full tensor exists only
inside a gather. The EMA therefore keeps a shadow of whatever this rank holds
locally: whole tensors or its partitions. To export EMA weights, `swapped_in()`
copies the shadow into the local storage, the caller runs the usual
consolidation (a gather under stage 3) and the trained weights come back on exit.
Under stages 0-2 the shadow holds whole tensors, so `named_shadow()` hands the
float32 averages to the export directly, with no rounding through the module's
dtype; the checkpoint keeps the names beside the tensors so that anyone can
compare an export with it using torch alone.

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
    def __init__(self, params: list[torch.nn.Parameter], *, decay: float, warmup: bool = True,
                 names: list[str] | None = None):
        self.params = list(params)
        if names is not None and len(names) != len(self.params):
            raise ValueError(f"{len(names)} names for {len(self.params)} parameters")
        self.names = list(names) if names is not None else None
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
        """Under ZeRO-3 a collective: every rank enters and leaves it together."""
        backup = [_local(p).detach().clone() for p in self.params]
        with torch.no_grad():
            for shadow, param in zip(self.shadow, self.params):
                _local(param).copy_(shadow.to(_local(param).dtype))
        self._refresh_whole_copies()
        try:
            yield
        finally:
            with torch.no_grad():
                for saved, param in zip(backup, self.params):
                    _local(param).copy_(saved)
            self._refresh_whole_copies()

    def _refresh_whole_copies(self) -> None:
        # ZeRO-3's persistent parameters are used whole, not re-gathered from their
        # partitions: without this the grids under ZeRO-3 were drawn with live norms
        # and biases, and matched no export (13 grey levels off one).
        if self.partitioned:
            from hpc.zero import regather_available

            regather_available(self.params)

    @property
    def partitioned(self) -> bool:
        """True under ZeRO-3: the shadow holds this rank's flat partitions, not tensors."""
        return any(hasattr(p, "ds_tensor") for p in self.params)

    def named_shadow(self) -> dict[str, torch.Tensor]:
        """{parameter name: float32 average} as independent CPU copies (stages 0-2)."""
        if self.names is None:
            raise ValueError("this EMA was built without parameter names")
        if self.partitioned:
            raise ValueError("under ZeRO-3 the EMA holds partitions: swap it in and gather")
        return {name: shadow.detach().to("cpu", copy=True).view(param.shape)
                for name, shadow, param in zip(self.names, self.shadow, self.params)}

    def state_dict(self) -> dict[str, Any]:
        return {"num_updates": self.num_updates, "decay": self.decay, "names": self.names,
                "partitioned": self.partitioned,
                "shadow": [s.cpu() for s in self.shadow]}  # saved at once: no copy needed

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
