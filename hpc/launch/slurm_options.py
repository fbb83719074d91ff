"""What a cluster profile asks of Slurm, derived once for both ways of submitting.

`galaxy-hpc submit` hands a profile to submitit; `galaxy-hpc sbatch` and the
shipped `slurm/*.sbatch` render it as a script of their own
(hpc.launch.sbatch_script). Both take the #SBATCH options, the preemption
signal and its delay, the site setup (modules, NCCL/libfabric environment) and
the srun arguments from the functions here, so a change to a profile reaches
both; a test on the local Slurm compares what each of them submits.
"""

from __future__ import annotations

from typing import Any

from hpc.launch.profiles import ClusterProfile


def slurm_time(minutes: int) -> str:
    """Minutes as Slurm's [D-]HH:MM:SS, the form people read in #SBATCH lines."""
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    clock = f"{hours:02d}:{mins:02d}:00"
    return f"{days}-{clock}" if days else clock


def sbatch_options(profile: ClusterProfile, *, job_name: str,
                   preemptible: bool = True) -> dict[str, str | bool]:
    """The #SBATCH options of a job on this profile, by Slurm's long option name.

    `preemptible`: the job saves and requeues itself on the profile's signal, so it
    asks for the signal and may be requeued. A job that does not handle the signal
    must not ask for it: SIGUSR1/2 would end it before its time limit.
    """
    if profile.executor != "slurm":
        raise ValueError(f"cluster profile {profile.name!r} uses the local executor: "
                         "it has no Slurm options (use a Slurm profile, e.g. --cluster slurm)")
    options: dict[str, str | bool] = {
        "job-name": job_name,
        "nodes": str(profile.nodes),
        "ntasks-per-node": str(profile.tasks_per_node),
    }
    if profile.gpus_per_node:
        options["gpus-per-node"] = str(profile.gpus_per_node)
    options["cpus-per-task"] = str(profile.cpus_per_task)
    if profile.mem_gb:
        whole = profile.mem_gb == int(profile.mem_gb)
        options["mem"] = f"{int(profile.mem_gb)}G" if whole else f"{int(profile.mem_gb * 1024)}M"
    options["time"] = slurm_time(profile.time_min)
    for key in ("partition", "account", "qos", "constraint"):
        if getattr(profile, key):
            options[key] = str(getattr(profile, key))
    if profile.gpus_per_node:
        # Each rank picks its GPU from its local rank (hpc.dist); all GPUs of the node
        # stay visible to every rank so that NCCL can use NVLink between them.
        options["gpu-bind"] = "none"
    if preemptible:
        options["signal"] = f"{profile.preempt_signal}@{profile.signal_delay_s}"
        options["requeue"] = True
    for key, value in profile.sbatch_extra.items():  # the site's word is the last
        options[key.replace("_", "-")] = value
    return options


def srun_arguments(profile: ClusterProfile) -> list[str]:
    """srun arguments every task launch of this profile gets (after the launcher's own)."""
    return list(profile.srun_args)


def submitit_parameters(profile: ClusterProfile, *, job_name: str) -> dict[str, Any]:
    """`SlurmExecutor.update_parameters(**these)` for a profile.

    Every #SBATCH option comes from `sbatch_options`, passed through submitit's
    public `additional_parameters` (which replaces submitit's own defaults of the
    same name: job name "submitit", signal USR2@90), so that a submitit job and an
    sbatch script of the same profile ask Slurm for the same things. submitit
    listens for the profile's signal in the job because the setup exports
    SUBMITIT_PREEMPT_SIGNAL before srun starts the tasks.
    """
    options = sbatch_options(profile, job_name=job_name)
    return dict(
        time=profile.time_min,  # submitit also counts a job's timeouts against it
        setup=[*profile.setup_lines(), f"export SUBMITIT_PREEMPT_SIGNAL={profile.preempt_signal}"],
        srun_args=srun_arguments(profile),
        stderr_to_stdout=False,
        # submitit writes its own parameters with underscores (job_name): the same
        # spelling replaces them instead of adding a second line.
        additional_parameters={key.replace("-", "_"): value for key, value in options.items()},
    )
