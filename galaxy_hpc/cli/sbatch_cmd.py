"""`galaxy-hpc sbatch JOB [CONFIG] --cluster NAME`: print a standalone sbatch script.

The script asks Slurm for what `galaxy-hpc submit JOB --cluster NAME` would ask
(the profile's resources, preemption signal, modules and environment:
hpc.launch.slurm_options) and runs `srun galaxy-hpc JOB CONFIG "$@"`, one task
per GPU. The shipped slurm/*.sbatch are made the same way (tools/make_sbatch.py).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from galaxy_hpc.cli.submit_cmd import add_profile_flags, profile_overrides

# The galaxy-hpc arguments that run a job on every rank, where they are not its name.
JOB_ARGUMENTS = {"evaluate": ("evaluate", "all")}
# Jobs that save and requeue themselves on the preemption signal (train loop, generate);
# the others would be ended by it, so their scripts do not ask for it.
PREEMPTIBLE_JOBS = frozenset({"train", "generate"})


def register(subparsers: argparse._SubParsersAction) -> None:
    from galaxy_hpc.jobs import JOBS

    parser = subparsers.add_parser(
        "sbatch", help="print a standalone sbatch script for a job on a cluster profile",
        description="Print (or --out FILE) an sbatch script that runs JOB under srun with the "
        "cluster profile's resources, preemption signal, modules and environment: the same "
        "settings `galaxy-hpc submit` uses. CONFIG and KEY=VALUE, when given, are checked here "
        "and written into the script; arguments given to sbatch after the script are added. "
        f"Jobs: {', '.join(JOBS)}.")
    parser.add_argument("job", choices=sorted(JOBS), metavar="JOB")
    parser.add_argument("config", nargs="?",
                        help="job YAML (its absolute path goes into the script)")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE")
    parser.add_argument("--cluster", required=True,
                        help="Slurm profile name in configs/cluster/ or a YAML path")
    add_profile_flags(parser)
    parser.add_argument("--job-name", help="Slurm job name (default: ghpc-JOB)")
    parser.add_argument("--out", metavar="FILE", help="write the script here (executable) "
                        "instead of printing it")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from galaxy_hpc.jobs import load_job_config
    from hpc.launch import BatchJob, load_profile, render_sbatch_script
    from hpc.provenance import command_line

    config, overrides = args.config, list(args.overrides)
    if config or overrides:
        load_job_config(args.job, config, overrides)  # a mistake shows here, not in the queue
    profile = load_profile(args.cluster, profile_overrides(args))
    arguments = (*JOB_ARGUMENTS.get(args.job, (args.job,)),
                 *([str(Path(config).resolve())] if config else []), *overrides)
    per_gpu = ", one per GPU" if profile.gpus_per_node else ""
    job = BatchJob(
        job_name=args.job_name or f"ghpc-{args.job}",
        arguments=arguments,
        preemptible=args.job in PREEMPTIBLE_JOBS,
        about=(f"galaxy-hpc {args.job} on cluster profile {profile.name!r}: {profile.nodes} "
               f"node(s) x {profile.tasks_per_node} task(s){per_gpu}.",
               "",
               f"  sbatch {args.out or 'THIS_SCRIPT'} [key=value ...]",
               "",
               "Runs from any directory. Override resources at submission (sbatch -N 4 -t 12:00:00",
               "-A ACCOUNT ...)."),
        origin=(f"Written by: {command_line()}",),
    )
    text = render_sbatch_script(profile, job)
    if not args.out:
        print(text, end="")
        return 0
    out = Path(args.out)
    out.write_text(text)
    os.chmod(out, 0o755)
    print(f"wrote {out} (sbatch {out} [key=value ...])")
    return 0
