"""A distributed self-test: do all ranks of this allocation see and talk to each other?

Run first on a new cluster, a new allocation shape, or after a module
change. Every rank contributes known values; the sums are checked against the
closed form, through torch.distributed (the path training uses: NCCL on GPUs,
gloo on CPUs) and through MPI (the path catalog generation and evaluation use).
A failure names what disagreed.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass
from typing import Literal

from hpc.config import register_kind

register_kind("selftest", "hpc.selftest:SelfTestConfig")


@dataclass
class SelfTestConfig:
    # Elements in the all-reduced vector: a few MB checks bandwidth, not just wiring.
    num_elements: int = 1 << 16
    # "auto": check MPI when the job was started by an MPI launcher (srun with
    # pmi2, mpiexec); "require": fail unless it was; "off": torch only.
    mpi: Literal["auto", "require", "off"] = "auto"
    timeout_s: int = 300

    def __post_init__(self) -> None:
        if self.num_elements < 1:
            raise ValueError(f"num_elements must be >= 1, got {self.num_elements}")


@dataclass
class SelfTestResult:
    ok: bool
    world_size: int
    backend: str
    source: str
    master: str
    hosts: list[str]
    torch_sum: float
    torch_expected: float
    allreduce_gbps: float
    mpi_world_size: int | None
    mpi_sum: float | None
    mpi_expected: float | None
    problems: list[str]

    def summary(self) -> str:
        lines = [
            f"selftest {'OK' if self.ok else 'FAILED'}: world_size={self.world_size} "
            f"backend={self.backend} source={self.source} master={self.master}",
            f"  hosts: {', '.join(self.hosts)}",
            f"  torch.distributed all_reduce: sum={self.torch_sum:g} "
            f"(expected {self.torch_expected:g}), {self.allreduce_gbps:.2f} GB/s algorithmic",
        ]
        if self.mpi_world_size is None:
            lines.append("  MPI: not checked (not started by an MPI launcher)")
        else:
            lines.append(f"  MPI Allreduce: world_size={self.mpi_world_size} sum={self.mpi_sum:g} "
                         f"(expected {self.mpi_expected:g})")
        lines += [f"  problem: {p}" for p in self.problems]
        return "\n".join(lines)


def _launched_by_mpi() -> bool:
    # Set by srun's pmi2 plugin and by mpich/Intel MPI hydra, and by Open MPI.
    return any(name in os.environ for name in ("PMI_RANK", "PMI_FD", "OMPI_COMM_WORLD_RANK",
                                                "PMIX_RANK"))


def run_selftest(cfg: SelfTestConfig | None = None) -> SelfTestResult:
    """Run on every rank; every rank returns the same result."""
    import torch
    import torch.distributed as torch_dist

    from hpc.dist import destroy_distributed, init_distributed

    cfg = cfg or SelfTestConfig()
    env = init_distributed(timeout_s=cfg.timeout_s)
    problems: list[str] = []
    try:
        device = torch.device("cuda", torch.cuda.current_device()) if env.backend == "nccl" \
            else torch.device("cpu")
        world = env.world_size
        # Rank r contributes (r + 1) everywhere: the sum is world * (world + 1) / 2.
        values = torch.full((cfg.num_elements,), float(env.rank + 1), dtype=torch.float64,
                            device=device)
        torch_dist.barrier()
        start = time.perf_counter()
        torch_dist.all_reduce(values)
        if device.type == "cuda":
            torch.cuda.synchronize()
        elapsed = max(time.perf_counter() - start, 1e-9)
        expected = world * (world + 1) / 2
        torch_sum = float(values[0].item())
        if not torch.all(values == expected):
            problems.append(f"torch all_reduce gave {torch_sum:g}, expected {expected:g}")
        gbps = values.numel() * values.element_size() / elapsed / 1e9

        hosts: list[str] = [""] * world
        torch_dist.all_gather_object(hosts, socket.gethostname())

        mpi_world = mpi_sum = mpi_expected = None
        want_mpi = cfg.mpi == "require" or (cfg.mpi == "auto" and _launched_by_mpi())
        if cfg.mpi == "require" and not _launched_by_mpi():
            problems.append("mpi=require but this job was not started by an MPI launcher "
                            "(use srun --mpi=pmi2 or mpiexec)")
        elif want_mpi:
            mpi_world, mpi_sum, mpi_expected = _mpi_check(cfg.num_elements)
            if mpi_world != world:
                problems.append(f"MPI world has {mpi_world} ranks, torch.distributed {world}")
            elif mpi_sum != mpi_expected:
                problems.append(f"MPI Allreduce gave {mpi_sum:g}, expected {mpi_expected:g}")

        # Agree on the verdict, so every rank returns (and exits with) the same.
        all_problems: list[list[str]] = [[] for _ in range(world)]
        torch_dist.all_gather_object(all_problems, problems)
        merged = sorted({p for rank_problems in all_problems for p in rank_problems})
        return SelfTestResult(
            ok=not merged, world_size=world, backend=env.backend, source=env.source,
            master=f"{env.master_addr}:{env.master_port}", hosts=sorted(set(hosts)),
            torch_sum=torch_sum, torch_expected=expected, allreduce_gbps=gbps,
            mpi_world_size=mpi_world, mpi_sum=mpi_sum, mpi_expected=mpi_expected,
            problems=merged,
        )
    finally:
        destroy_distributed()


def _mpi_check(num_elements: int) -> tuple[int, float, float]:
    import numpy as np

    from hpc.mpi import allreduce_sum, world

    comm = world()
    summed = allreduce_sum(np.full(num_elements, comm.rank + 1, dtype=np.float64), comm)
    expected = comm.size * (comm.size + 1) / 2
    value = float(summed[0]) if np.all(summed == summed[0]) else float("nan")
    return comm.size, value, expected
