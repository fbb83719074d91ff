"""`galaxy-hpc config FILE [a.b=v ...]`: print a config as the job will see it."""

from __future__ import annotations

import argparse

from galaxy_hpc.cli.output import print_json


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "config", help="print a resolved config (inherit + overrides applied, types checked)",
        description="Load a YAML config, apply `a.b=value` overrides, check every key and type "
        "against its schema, and print the result. Exits 1 naming the bad key and file.")
    parser.add_argument("file", help="YAML config with a `kind:` key")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE")
    parser.add_argument("--json", action="store_true", help="print JSON instead of YAML")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import galaxy_hpc.jobs  # noqa: F401  (registers every config kind)
    from hpc.config import dump_yaml, load_config, to_dict

    cfg = load_config(args.file, args.overrides)
    if args.json:
        print_json(to_dict(cfg), indent=2)
    else:
        print(dump_yaml(cfg), end="")
    return 0
