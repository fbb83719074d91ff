"""Where am I in the job? Rank, world size and rendezvous, from whatever launched us.

One process can be started by torchrun (or the deepspeed launcher), by `srun`,
by `mpiexec`, by submitit's local executor, or by hand. Each announces the
layout in its own environment variables; this module reads them in one place
and hands back a `DistEnv`. Nothing here talks to other ranks until
`init_distributed` is called, so `galaxy-hpc env` can show what a job would do
inside `srun` without starting anything.

Precedence, and why:
1. torch-style variables (RANK, WORLD_SIZE): the launcher already decided.
2. an srun task (SLURM_PROCID with SLURM_STEP_NUM_TASKS, which only srun
   sets: a batch script also has SLURM_PROCID=0 but is not a task), unless an
   MPI launcher inside the allocation reports a different world (mpiexec uses
   srun to start one proxy per node, so Slurm would count proxies, not ranks).
3. MPI (mpich/Intel MPI hydra: PMI_RANK; Open MPI: OMPI_COMM_WORLD_RANK).
4. submitit's local executor (SUBMITIT_LOCAL_*).
5. a single process.

MASTER_ADDR / MASTER_PORT in the environment always win: they are how a user
overrides the rendezvous.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass

# Ports 15000-29999: below Linux's ephemeral range (32768+), above the
# well-known and Slurm's own (6817-6819) ports.
_PORT_BASE = 15000
_PORT_SPAN = 15000

_saved_environ: dict[str, str | None] = {}


@dataclass(frozen=True)
class DistEnv:
    rank: int
    world_size: int
    local_rank: int
    local_world_size: int
    node_rank: int
    num_nodes: int
    master_addr: str | None  # None: agreed at init time (multi-node MPI without Slurm)
    master_port: int | None
    backend: str
    source: str
    job_id: str | None
    hostname: str

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def is_distributed(self) -> bool:
        return self.world_size > 1

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=False)


def expand_nodelist(nodelist: str) -> list[str]:
    """`nid[001-003,010]` -> [nid001, nid002, nid003, nid010], with python-hostlist."""
    import hostlist  # maintained parser of Slurm's compressed host-list syntax

    try:
        return list(hostlist.expand_hostlist(nodelist))
    except hostlist.BadHostlist as error:
        raise ValueError(f"cannot parse Slurm node list {nodelist!r}: {error}") from None


def expand_tasks_per_node(spec: str) -> list[int]:
    """Slurm's SLURM_STEP_TASKS_PER_NODE: `2(x3),1` -> [2, 2, 2, 1]."""
    counts: list[int] = []
    for part in spec.split(","):
        match = re.fullmatch(r"(\d+)(?:\(x(\d+)\))?", part.strip())
        if not match:
            raise ValueError(f"cannot parse Slurm tasks-per-node {spec!r}")
        counts += [int(match.group(1))] * int(match.group(2) or 1)
    return counts


def master_port_for_job(job_id: str | int | None) -> int:
    """A rendezvous port every rank derives from the job id alone, without talking."""
    if job_id is None:
        return 29500  # torchrun's default, for hand-started single-node runs
    digits = re.sub(r"\D", "", str(job_id)) or "0"
    return _PORT_BASE + int(digits) % _PORT_SPAN


def default_backend(cuda_available: bool | None = None) -> str:
    if cuda_available is None:
        import torch

        cuda_available = torch.cuda.is_available()
    return "nccl" if cuda_available else "gloo"


def resolve_env(environ: Mapping[str, str] | None = None, *,
                cuda_available: bool | None = None) -> DistEnv:
    """Read the launch layout from the environment (os.environ by default)."""
    env = os.environ if environ is None else environ
    layout = (_from_torch(env) or _from_slurm_or_mpi(env) or _from_submitit_local(env)
              or _single(env))
    addr = env.get("MASTER_ADDR") or layout["master_addr"]
    port = int(env["MASTER_PORT"]) if env.get("MASTER_PORT") else layout["master_port"]
    return DistEnv(
        rank=layout["rank"],
        world_size=layout["world_size"],
        local_rank=layout["local_rank"],
        local_world_size=layout["local_world_size"],
        node_rank=layout["node_rank"],
        num_nodes=layout["num_nodes"],
        master_addr=addr,
        master_port=port,
        backend=default_backend(cuda_available),
        source=layout["source"],
        job_id=layout.get("job_id"),
        hostname=socket.gethostname(),
    )


def job_rendezvous(environ: Mapping[str, str] | None = None) -> tuple[str, int]:
    """(master_addr, master_port) for a whole Slurm job, as seen from its batch script.

    The sbatch helper exports these so that every step of the job agrees with
    what the tasks would derive themselves.
    """
    env = os.environ if environ is None else environ
    nodelist = env.get("SLURM_JOB_NODELIST") or env.get("SLURM_NODELIST")
    if not nodelist or not env.get("SLURM_JOB_ID"):
        raise ValueError("not inside a Slurm job (SLURM_JOB_ID / SLURM_JOB_NODELIST are unset)")
    return expand_nodelist(nodelist)[0], master_port_for_job(env["SLURM_JOB_ID"])


def _int(env: Mapping[str, str], *names: str, default: int | None = None) -> int | None:
    for name in names:
        if env.get(name, "") != "":
            return int(env[name])
    return default


def _from_torch(env: Mapping[str, str]) -> dict | None:
    if "RANK" not in env or "WORLD_SIZE" not in env:
        return None
    world = int(env["WORLD_SIZE"])
    local_world = _int(env, "LOCAL_WORLD_SIZE", default=world)
    return dict(
        source="torchrun",
        rank=int(env["RANK"]),
        world_size=world,
        local_rank=_int(env, "LOCAL_RANK", default=0),
        local_world_size=local_world,
        node_rank=_int(env, "GROUP_RANK", "NODE_RANK", default=int(env["RANK"]) // local_world),
        num_nodes=max(1, world // local_world),
        master_addr=env.get("MASTER_ADDR", "127.0.0.1"),
        master_port=_int(env, "MASTER_PORT", default=29500),
        job_id=env.get("TORCHELASTIC_RUN_ID") or env.get("SLURM_JOB_ID"),
    )


def _from_slurm_or_mpi(env: Mapping[str, str]) -> dict | None:
    mpi = _mpi_layout(env)
    if "SLURM_PROCID" in env and "SLURM_STEP_NUM_TASKS" in env:
        step_tasks = int(env["SLURM_STEP_NUM_TASKS"])
        if mpi is None or mpi["world_size"] == step_tasks:
            return _slurm_layout(env)
    return mpi


def _slurm_layout(env: Mapping[str, str]) -> dict:
    nodes = expand_nodelist(env.get("SLURM_STEP_NODELIST") or env["SLURM_JOB_NODELIST"])
    node_rank = _int(env, "SLURM_NODEID", default=0)
    per_node_spec = env.get("SLURM_STEP_TASKS_PER_NODE") or env.get("SLURM_TASKS_PER_NODE")
    per_node = expand_tasks_per_node(per_node_spec) if per_node_spec else [1] * len(nodes)
    job_id = env.get("SLURM_JOB_ID")
    return dict(
        source="slurm",
        rank=int(env["SLURM_PROCID"]),
        world_size=int(env["SLURM_STEP_NUM_TASKS"]),
        local_rank=_int(env, "SLURM_LOCALID", default=0),
        local_world_size=per_node[node_rank] if node_rank < len(per_node) else 1,
        node_rank=node_rank,
        num_nodes=len(nodes),
        master_addr=nodes[0],
        master_port=master_port_for_job(job_id),
        job_id=job_id,
    )


def _mpi_layout(env: Mapping[str, str]) -> dict | None:
    if "OMPI_COMM_WORLD_RANK" in env:
        rank = int(env["OMPI_COMM_WORLD_RANK"])
        world = int(env["OMPI_COMM_WORLD_SIZE"])
        local_rank = _int(env, "OMPI_COMM_WORLD_LOCAL_RANK", default=0)
        local_world = _int(env, "OMPI_COMM_WORLD_LOCAL_SIZE", default=world)
        node_rank = _int(env, "OMPI_COMM_WORLD_NODE_RANK", default=rank // max(local_world, 1))
    elif "PMI_RANK" in env and "PMI_SIZE" in env:
        rank = int(env["PMI_RANK"])
        world = int(env["PMI_SIZE"])
        local_rank = _int(env, "MPI_LOCALRANKID", default=0)
        local_world = _int(env, "MPI_LOCALNRANKS", default=world)
        node_rank = rank // max(local_world, 1)
    else:
        return None
    single_node = local_world == world
    return dict(
        source="mpi",
        rank=rank,
        world_size=world,
        local_rank=local_rank,
        local_world_size=local_world,
        node_rank=0 if single_node else node_rank,
        num_nodes=1 if single_node else -(-world // max(local_world, 1)),
        # One node: loopback. Several: rank 0 announces itself over MPI at init.
        master_addr="127.0.0.1" if single_node else None,
        master_port=None,
        job_id=env.get("SLURM_JOB_ID"),
    )


def _from_submitit_local(env: Mapping[str, str]) -> dict | None:
    if env.get("SUBMITIT_EXECUTOR") != "local" or "SUBMITIT_LOCAL_GLOBALID" not in env:
        return None
    world = int(env["SUBMITIT_LOCAL_NTASKS"])
    job_id = env.get("SUBMITIT_LOCAL_JOB_ID")
    return dict(
        source="submitit-local",
        rank=int(env["SUBMITIT_LOCAL_GLOBALID"]),
        world_size=world,
        local_rank=int(env.get("SUBMITIT_LOCAL_LOCALID", env["SUBMITIT_LOCAL_GLOBALID"])),
        local_world_size=world,
        node_rank=0,
        num_nodes=1,
        master_addr="127.0.0.1",
        master_port=master_port_for_job(job_id),
        job_id=job_id,
    )


def _single(env: Mapping[str, str]) -> dict:
    return dict(source="single", rank=0, world_size=1, local_rank=0, local_world_size=1,
                node_rank=0, num_nodes=1, master_addr="127.0.0.1", master_port=29500,
                job_id=env.get("SLURM_JOB_ID"))


# --------------------------------------------------------------------------- starting


def init_distributed(env: DistEnv | None = None, *, timeout_s: float = 600.0) -> DistEnv:
    """Start torch.distributed for this process (nccl with CUDA, gloo without).

    Also exports RANK/WORLD_SIZE/LOCAL_RANK/MASTER_* so that libraries that
    read them (DeepSpeed) see the same layout. Safe to call twice.
    """
    import datetime

    import torch
    import torch.distributed as torch_dist

    env = env or resolve_env()
    if env.master_addr is None or env.master_port is None:
        env = _agree_over_mpi(env)
    elif env.world_size == 1 and not os.environ.get("MASTER_PORT"):
        # Nobody to agree with: any free port, so two single-process runs on one
        # machine do not collide on the default.
        env = dataclasses.replace(env, master_port=_free_port())
    exported = dict(
        RANK=str(env.rank), WORLD_SIZE=str(env.world_size), LOCAL_RANK=str(env.local_rank),
        LOCAL_WORLD_SIZE=str(env.local_world_size), MASTER_ADDR=str(env.master_addr),
        MASTER_PORT=str(env.master_port),
    )
    if not _saved_environ:
        # Remembered so destroy_distributed can put them back: left behind, they
        # would make every process this one starts later believe it is rank 0 of
        # a torchrun job.
        _saved_environ.update({name: os.environ.get(name) for name in exported})
    os.environ.update(exported)
    if env.backend == "nccl":
        torch.cuda.set_device(env.local_rank % torch.cuda.device_count())
    if env.local_world_size > 1 and not os.environ.get("OMP_NUM_THREADS"):
        # Several ranks on one machine each default to one thread per core: with 4
        # ranks on 4 cores that is 16 spinning threads. Share the cores instead
        # (srun sets OMP_NUM_THREADS from --cpus-per-task in the slurm/*.sbatch scripts).
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // env.local_world_size))
    if not torch_dist.is_initialized():
        torch_dist.init_process_group(
            backend=env.backend,
            init_method=f"tcp://{_url_host(env.master_addr)}:{env.master_port}",
            rank=env.rank,
            world_size=env.world_size,
            timeout=datetime.timedelta(seconds=timeout_s),
        )
    return env


def destroy_distributed() -> None:
    """Tear down the process group and restore the variables init_distributed exported."""
    import torch.distributed as torch_dist

    if torch_dist.is_available() and torch_dist.is_initialized():
        torch_dist.destroy_process_group()
    for name, value in _saved_environ.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    _saved_environ.clear()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("", 0))
        return probe.getsockname()[1]


def _agree_over_mpi(env: DistEnv) -> DistEnv:
    """Multi-node MPI without Slurm: rank 0 picks a free port and tells the others."""
    from mpi4py import MPI

    comm = MPI.COMM_WORLD
    offer = None
    if comm.rank == 0:
        offer = (socket.getfqdn(), _free_port())
    addr, port = comm.bcast(offer, root=0)
    return dataclasses.replace(env, master_addr=env.master_addr or addr,
                               master_port=env.master_port or port)


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
