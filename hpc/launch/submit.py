"""Submitting Python callables as cluster jobs, through submitit.

The launch layer knows nothing of what it runs: it takes a callable and a
ClusterProfile. Preemption is a normal path: a job whose callable is
`Resubmittable` is requeued with itself when Slurm (or the local executor)
signals the end of the allocation, and picks up from whatever state it keeps
(on disk, or in its own attributes, which submitit pickles).
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import submitit

from hpc.launch.profiles import ClusterProfile
from hpc.launch.slurm_options import submitit_parameters


class Resubmittable(submitit.helpers.Checkpointable):
    """Base for job callables that resume after preemption.

    submitit calls `checkpoint()` on rank 0 when the preemption/timeout signal
    arrives; the default returns a resubmission of the callable as it is now,
    so attributes it updated while running are carried over. Jobs that keep
    their state on disk (training checkpoints) need nothing more.
    """


@dataclass
class SubmittedJob:
    job: submitit.Job
    stdout: Path
    stderr: Path

    @property
    def job_id(self) -> str:
        return str(self.job.job_id)


def make_executor(profile: ClusterProfile, *, job_name: str,
                  folder: str | Path | None = None) -> submitit.Executor:
    """A submitit executor configured from a profile. Logs go to a folder per job under
    `folder`: named by Slurm's job id, or for the local executor by job name and time."""
    logs = Path(folder or profile.log_dir)
    if profile.executor == "local":
        # submitit's local controller creates the folder it is given as it stands, before
        # any job id exists: `logs/%j` left an empty folder literally named "%j". The
        # local job id (the controller's pid) is known only once it runs, so the folder
        # is named here.
        stamp = f"{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"
        executor = submitit.LocalExecutor(folder=logs / f"{job_name}-{stamp}")
        executor.update_parameters(
            timeout_min=profile.time_min,
            tasks_per_node=profile.tasks_per_node,
            gpus_per_node=profile.gpus_per_node,
            signal_delay_s=profile.signal_delay_s,
            setup=profile.setup_lines(),
        )
        return executor
    executor = submitit.SlurmExecutor(folder=logs / "%j", max_num_timeout=profile.max_requeues)
    executor.update_parameters(**submitit_parameters(profile, job_name=job_name))
    return executor


def submit(fn: Callable[..., Any], *args: Any, profile: ClusterProfile, job_name: str,
           folder: str | Path | None = None) -> SubmittedJob:
    executor = make_executor(profile, job_name=job_name, folder=folder)
    job = executor.submit(fn, *args)
    return SubmittedJob(job, Path(job.paths.stdout), Path(job.paths.stderr))


def submit_array(fn: Callable[..., Any], arguments: list[Any], *, profile: ClusterProfile,
                 job_name: str, folder: str | Path | None = None) -> list[SubmittedJob]:
    """One array job, one task per element of `arguments` (Slurm job arrays)."""
    executor = make_executor(profile, job_name=job_name, folder=folder)
    jobs = executor.map_array(fn, arguments)
    return [SubmittedJob(job, Path(job.paths.stdout), Path(job.paths.stderr)) for job in jobs]


# States after which a job will not run again (Slurm's, and the local executor's FINISHED).
TERMINAL_STATES = frozenset({"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY",
                             "NODE_FAIL", "BOOT_FAIL", "DEADLINE", "FINISHED", "INTERRUPTED"})


def wait(submitted: SubmittedJob, poll_s: float = 2.0) -> list[Any]:
    """Block until the job ends; return the results of all its tasks (raises if one failed)."""
    while not submitted.job.done():
        time.sleep(poll_s)
    return submitted.job.results()


def final_state(submitted: SubmittedJob, timeout_s: float = 60.0, poll_s: float = 1.0) -> str:
    """The scheduler's last word on a job whose result is in.

    The result file appears before Slurm's accounting has the job COMPLETED
    (the batch script still has to exit), so ask again until the state is
    terminal, up to `timeout_s`; then return whatever was seen last.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        state = submitted.job.get_info(mode="force").get("State") or submitted.job.state
        state = state.split()[0] if state else "UNKNOWN"
        if state in TERMINAL_STATES or time.monotonic() > deadline:
            return state
        time.sleep(poll_s)
