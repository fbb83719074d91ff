"""Where this rank computes and in what precision, and the switches that keep GPUs
deterministic.

One rank per GPU: a rank uses cuda:<local rank mod GPUs>, so `srun` with one task per GPU
(the slurm/*.sbatch scripts) or `mpiexec -n 4` on a 4-GPU node each get their own device.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from galaxy_hpc.generate.config import RuntimeSection


@dataclass(frozen=True)
class Runtime:
    device: Any  # torch.device
    dtype: Any  # torch.dtype
    precision: str  # fp32 / fp16 / bf16, resolved
    compile: bool
    cpu_threads: int

    def describe(self) -> dict[str, Any]:
        """What the catalog records about where it was made (bytes depend on it)."""
        import diffusers
        import torch

        if self.device.type == "cuda":
            where = torch.cuda.get_device_name(self.device)
        else:
            where = f"cpu ({self.cpu_threads} thread(s) per rank)"
        return {"device": where, "precision": self.precision, "torch": torch.__version__,
                "diffusers": diffusers.__version__}


def resolve_runtime(section: RuntimeSection, local_rank: int) -> Runtime:
    if section.deterministic:
        # cuBLAS reads this when it starts: it must be set before the first CUDA call.
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    import torch

    cuda = torch.cuda.is_available()
    if section.device == "cuda" and not cuda:
        raise ValueError("runtime.device is cuda but this process sees no GPU; use auto or cpu")
    on_gpu = cuda and section.device != "cpu"
    device = torch.device(f"cuda:{local_rank % torch.cuda.device_count()}") if on_gpu \
        else torch.device("cpu")
    precision = section.precision
    if precision == "auto":
        precision = ("bf16" if torch.cuda.is_bf16_supported() else "fp16") if on_gpu else "fp32"
    dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[precision]
    if section.cpu_threads is not None:
        torch.set_num_threads(section.cpu_threads)
    if on_gpu:
        torch.cuda.set_device(device)
        if section.deterministic:
            torch.backends.cudnn.benchmark = False
            torch.backends.cudnn.deterministic = True
            torch.use_deterministic_algorithms(True, warn_only=True)
    return Runtime(device=device, dtype=dtype, precision=precision, compile=section.compile,
                   cpu_threads=torch.get_num_threads())
