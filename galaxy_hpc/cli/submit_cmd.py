"""`galaxy-hpc submit JOB CONFIG --cluster NAME`: send a job to Slurm (or run it locally) via submitit."""

from __future__ import annotations

import argparse
import json
import sys

from galaxy_hpc.cli.output import print_json


def register(subparsers: argparse._SubParsersAction) -> None:
    from galaxy_hpc.jobs import JOBS

    parser = subparsers.add_parser(
        "submit", help="submit a job to a cluster (or the local executor) with submitit",
        description="Validate CONFIG here, then submit JOB with the cluster profile's resources. "
        "Prints the job id and log paths; --wait blocks and prints the result. "
        f"Jobs: {', '.join(JOBS)}.")
    parser.add_argument("job", choices=sorted(JOBS), metavar="JOB")
    parser.add_argument("config", nargs="?", help="job YAML (default: the job's embedded defaults)")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE")
    parser.add_argument("--cluster", default="local",
                        help="profile name in configs/cluster/ or a YAML path (default: local)")
    add_profile_flags(parser)
    parser.add_argument("--log-dir", help="where submitit writes job logs (default: the profile's)")
    parser.add_argument("--wait", action="store_true", help="wait for the job and print its result")
    parser.add_argument("--json", action="store_true")
    parser.set_defaults(func=run)


def add_profile_flags(parser: argparse.ArgumentParser) -> None:
    """Flags that change the cluster profile's resources for one job (submit and sbatch)."""
    group = parser.add_argument_group("resources (default: the cluster profile's)")
    group.add_argument("--nodes", type=int)
    group.add_argument("--tasks-per-node", type=int)
    group.add_argument("--gpus-per-node", type=int)
    group.add_argument("--time", type=int, metavar="MINUTES")
    group.add_argument("--partition")
    group.add_argument("--account")
    group.add_argument("--qos")
    group.add_argument("--constraint")


def profile_overrides(args: argparse.Namespace) -> list[str]:
    """The profile flags given, as profile overrides (`nodes=4`)."""
    flags = {"nodes": args.nodes, "tasks_per_node": args.tasks_per_node,
             "gpus_per_node": args.gpus_per_node, "time_min": args.time,
             "partition": args.partition, "account": args.account, "qos": args.qos,
             "constraint": args.constraint, "log_dir": getattr(args, "log_dir", None)}
    return [f"{key}={json.dumps(value)}" for key, value in flags.items() if value is not None]


def run(args: argparse.Namespace) -> int:
    from galaxy_hpc.jobs import JobCall, load_job_config
    from hpc.launch import final_state, load_profile, submit, wait

    config, overrides = args.config, list(args.overrides)
    if config and "=" in config:
        config, overrides = None, [config, *overrides]
    cfg = load_job_config(args.job, config, overrides)
    profile = load_profile(args.cluster, profile_overrides(args))
    submitted = submit(JobCall(args.job, cfg), profile=profile, job_name=f"ghpc-{args.job}")
    info = {"job_id": submitted.job_id, "cluster": profile.name, "executor": profile.executor,
            "num_tasks": profile.num_tasks, "stdout": str(submitted.stdout),
            "stderr": str(submitted.stderr)}
    if not args.json:
        print(f"submitted {args.job} as job {submitted.job_id} on {profile.name} "
              f"({profile.nodes} node(s) x {profile.tasks_per_node} task(s))")
        print(f"  logs: {submitted.stdout}\n        {submitted.stderr}")
    if not args.wait:
        if args.json:
            print_json(info)
        return 0
    results = wait(submitted)
    main_result = results[0]
    ok = bool(getattr(main_result, "ok", True))
    state = final_state(submitted)
    info.update(state=state, ok=ok)
    if args.json:
        print_json(info)
    else:
        summary = main_result.summary() if hasattr(main_result, "summary") else repr(main_result)
        print(f"job {submitted.job_id} finished ({state})\n{summary}")
    sys.stdout.flush()
    return 0 if ok else 1
