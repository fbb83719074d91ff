"""The training loop's AdamW, with the implementation chosen for the device.

Fused on a GPU that keeps the optimizer (torch's fastest AdamW there); torch's default
elsewhere (CPU ranks, CPU-offloaded ZeRO partitions). torch's multi-tensor (foreach)
AdamW was measured on CPU as the alternative (2026-12-05, 2-core VM, one thread): faster
for many small tensors (256 LoRA-sized ones: 2.6 ms a step against 4.9) and slower for
large ones (the CPU SD shape's whole UNet: 105 ms against 92), a wash on a LoRA step of
~160 ms, so it is not used. The benchmarks build their optimizer here too, so that they
time what the loop runs.
"""

from __future__ import annotations

from typing import Any

import torch

from galaxy_hpc.train.config import OptimSection


def build_adamw(params: Any, optim: OptimSection, *, device: torch.device,
                offload: bool = False) -> torch.optim.AdamW:
    """AdamW over `params` (tensors or parameter groups) with `optim`'s settings."""
    return torch.optim.AdamW(params, lr=optim.lr, betas=tuple(optim.betas), eps=optim.eps,
                             weight_decay=optim.weight_decay,
                             fused=device.type == "cuda" and not offload)
