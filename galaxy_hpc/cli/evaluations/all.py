"""`galaxy-hpc evaluate all CONFIG [a.b=v ...]`: every evaluation of a catalog, then the report."""

from __future__ import annotations

import argparse

from galaxy_hpc.cli.output import print_json


def register(actions: argparse._SubParsersAction) -> None:
    parser = actions.add_parser(
        "all", help="run the evaluations an evaluate config lists, then write the report",
        description="Run FID, physics, morphology (when a predictor is given) and conditioning "
        "of one catalog from a config (kind: evaluate), writing OUT/<evaluation>.json and "
        "OUT/report/index.html. The same job `galaxy-hpc submit evaluate` sends.")
    parser.add_argument("config", nargs="?", help="evaluate YAML (kind: evaluate)")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE")
    parser.add_argument("--json", action="store_true")
    parser.set_defaults(func=run, distributed=True)


def run(args: argparse.Namespace) -> int:
    from galaxy_hpc.evaluate.job import run_evaluate
    from galaxy_hpc.jobs import load_job_config
    from hpc.dist import resolve_env

    if args.config and "=" in args.config:
        args.overrides, args.config = [args.config, *args.overrides], None
    cfg = load_job_config("evaluate", args.config, list(args.overrides))
    summary = run_evaluate(cfg, show_progress=not args.json)
    if resolve_env(cuda_available=False).is_main:
        if args.json:
            print_json(summary.to_dict())
        else:
            print(summary.summary(), flush=True)
    return 0
