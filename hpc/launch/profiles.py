"""Cluster profiles: what a cluster needs from a job script, in one typed file each.

A profile holds everything that differs between sites (partition, account,
GPUs per node, module loads, network settings) so that job configs hold none
of it. Profiles live as YAML in `configs/cluster/NAME.yaml`; `--cluster` takes
a name from there or a path to a YAML file of your own.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from hpc.config import load_config, register_kind

register_kind("cluster", "hpc.launch.profiles:ClusterProfile")


@dataclass
class ClusterProfile:
    name: str
    # "local": submitit's LocalExecutor, tasks as processes on this machine.
    executor: Literal["local", "slurm"] = "slurm"
    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    constraint: str | None = None
    nodes: int = 1
    # On GPU clusters one task per GPU: tasks_per_node == gpus_per_node.
    tasks_per_node: int = 1
    gpus_per_node: int = 0
    cpus_per_task: int = 1
    mem_gb: float | None = None
    time_min: int = 60
    # Slurm sends this signal to every task signal_delay_s before the time limit,
    # so that a job can save and requeue itself (hpc.preempt). The same pair goes
    # to `galaxy-hpc submit` (submitit listens on it) and to every sbatch script.
    preempt_signal: Literal["USR1", "USR2"] = "USR2"
    signal_delay_s: int = 120
    # How many times a timed-out job may requeue itself before giving up.
    max_requeues: int = 3
    setup: list[str] = field(default_factory=list)  # shell lines before srun (module loads)
    env: dict[str, str] = field(default_factory=dict)  # exported in the job script
    sbatch_extra: dict[str, str] = field(default_factory=dict)  # any other #SBATCH option
    srun_args: list[str] = field(default_factory=list)
    log_dir: str = "logs/submitit"  # relative paths are relative to the working directory

    def __post_init__(self) -> None:
        for name in ("nodes", "tasks_per_node", "cpus_per_task", "time_min"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.signal_delay_s < 0:
            raise ValueError(f"signal_delay_s must be >= 0, got {self.signal_delay_s}")
        if self.gpus_per_node < 0:
            raise ValueError(f"gpus_per_node must be >= 0, got {self.gpus_per_node}")
        if self.executor == "local" and self.nodes != 1:
            raise ValueError("the local executor runs on this machine only: nodes must be 1")
        if self.gpus_per_node and self.tasks_per_node not in (1, self.gpus_per_node):
            raise ValueError(
                f"tasks_per_node={self.tasks_per_node} with gpus_per_node={self.gpus_per_node}: "
                "use one task per GPU (tasks_per_node = gpus_per_node)"
            )

    @property
    def num_tasks(self) -> int:
        return self.nodes * self.tasks_per_node

    def setup_lines(self) -> list[str]:
        """Shell lines run before the job: the profile's setup, then its exports."""
        return list(self.setup) + [f"export {key}={_shell_quote(value)}"
                                   for key, value in self.env.items()]


def profile_search_path() -> list[Path]:
    """Folders searched for `--cluster NAME`, first match wins."""
    folders = []
    if os.environ.get("GALAXY_HPC_CONFIGS"):
        folders.append(Path(os.environ["GALAXY_HPC_CONFIGS"]) / "cluster")
    folders.append(Path.cwd() / "configs" / "cluster")
    # The repository this package was installed from (editable installs, checkouts).
    folders.append(Path(__file__).resolve().parents[2] / "configs" / "cluster")
    unique: list[Path] = []
    for folder in folders:
        if folder not in unique:
            unique.append(folder)
    return unique


def available_profiles() -> list[str]:
    names = {p.stem for folder in profile_search_path() if folder.is_dir()
             for p in folder.glob("*.yaml")}
    return sorted(names)


def load_profile(name_or_path: str, overrides: list[str] | tuple[str, ...] = ()) -> ClusterProfile:
    """A profile by name (`perlmutter`) or by path (`my_site.yaml`)."""
    candidate = Path(name_or_path)
    if candidate.suffix in (".yaml", ".yml") or candidate.is_file():
        return load_config(candidate, overrides, cls=ClusterProfile)
    for folder in profile_search_path():
        path = folder / f"{name_or_path}.yaml"
        if path.is_file():
            return load_config(path, overrides, cls=ClusterProfile)
    known = ", ".join(available_profiles()) or "none found"
    searched = ", ".join(str(f) for f in profile_search_path())
    raise ValueError(f"no cluster profile {name_or_path!r} (known: {known}; searched {searched})")


def _shell_quote(value: str) -> str:
    import shlex

    return shlex.quote(str(value))
