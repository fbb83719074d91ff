"""`galaxy-hpc sbatch JOB [CONFIG] --cluster NAME`: print a standalone sbatch script.

The script asks Slurm for what `galaxy-hpc submit JOB --cluster NAME` would ask
(the profile's resources, preemption signal, modules and environment:
hpc.launch.slurm_options) and runs `srun galaxy-hpc JOB CONFIG "$@"`, one task
per GPU. The shipped slurm/*.sbatch are made the same way (tools/make_sbatch.py).
`serve` is not a batch job but gets a script too (galaxy_hpc.serve.sbatch): one task on
one node that prints the ssh tunnel to the server.
"""

from __future__ import annotations

import argparse
import os
import textwrap
from pathlib import Path

from galaxy_hpc.cli.submit_cmd import add_profile_flags, profile_overrides

# The galaxy-hpc arguments that run a job on every rank, where they are not its name.
JOB_ARGUMENTS = {"evaluate": ("evaluate", "all")}
# Jobs that save and requeue themselves on the preemption signal (train loop, generate);
# the others would be ended by it, so their scripts do not ask for it.
PREEMPTIBLE_JOBS = frozenset({"train", "generate"})
SERVE = "serve"  # not a batch job: a server on one node until scancel


def register(subparsers: argparse._SubParsersAction) -> None:
    from galaxy_hpc.jobs import JOBS

    parser = subparsers.add_parser(
        "sbatch", help="print a standalone sbatch script for a job on a cluster profile",
        description="Print (or --out FILE) an sbatch script that runs JOB under srun with the "
        "cluster profile's resources, preemption signal, modules and environment: the same "
        "settings `galaxy-hpc submit` uses. CONFIG and KEY=VALUE, when given, are checked here "
        "and written into the script; arguments given to sbatch after the script are added. "
        f"Jobs: {', '.join([*JOBS, SERVE])}.")
    parser.add_argument("job", choices=sorted([*JOBS, SERVE]), metavar="JOB")
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
    if args.job == SERVE:
        return _serve_script(args, config, overrides)
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
    return _write(args, render_sbatch_script(profile, job))


def _serve_script(args: argparse.Namespace, config: str | None, overrides: list[str]) -> int:
    import galaxy_hpc.registry  # noqa: F401  (registers kind: serve)
    from galaxy_hpc.serve.sbatch import PORT_RULE, PROLOGUE
    from galaxy_hpc.serve.sbatch import profile_overrides as one_server
    from hpc.config import apply_overrides, from_dict, kind_class, load_config
    from hpc.launch import BatchJob, load_profile, render_sbatch_script
    from hpc.provenance import command_line

    if config:
        load_config(config, overrides, cls=kind_class(SERVE))
    elif overrides:
        from_dict(kind_class(SERVE), apply_overrides({}, overrides), source="overrides")
    asked = profile_overrides(args)
    profile = load_profile(args.cluster, asked)
    profile = load_profile(args.cluster, [*asked, *one_server(profile.gpus_per_node)])
    gpu = "one GPU of " if profile.gpus_per_node else ""
    job = BatchJob(
        job_name=args.job_name or "ghpc-serve",
        arguments=(SERVE, *([str(Path(config).resolve())] if config else []), *overrides),
        preemptible=False,
        about=(*textwrap.wrap(f"galaxy-hpc serve on {gpu}one node of cluster profile "
                              f"{profile.name!r}: the catalog browser and the generation API, "
                              "on the node's 127.0.0.1; the log says how to reach it.", 88),
               "", f"  sbatch {args.out or 'THIS_SCRIPT'} [--store NAME=PATH ...] "
               "[--model PATH] [key=value ...]", "", *textwrap.wrap(PORT_RULE, 88)),
        origin=(f"Written by: {command_line()}",),
        prologue=PROLOGUE)
    return _write(args, render_sbatch_script(profile, job))


def _write(args: argparse.Namespace, text: str) -> int:
    if not args.out:
        print(text, end="")
        return 0
    out = Path(args.out)
    out.write_text(text)
    os.chmod(out, 0o755)
    print(f"wrote {out} (sbatch {out} [key=value ...])")
    return 0
