"""The one shape of a `galaxy-hpc` batch command: CONFIG, `KEY=VALUE` overrides, flags
read off the config's dataclass, `--json`, and a result that rank 0 alone prints.

A command module states what is its own (its help, which stores it takes as positionals,
the flags it keeps under an older name, what it runs) and leaves the rest here:

    parser = add_batch_command(subparsers, "physics", run=run, help=..., description=...,
                               config="physics YAML (kind: physics)",
                               stores=("real", "generated"), fields=PhysicsConfig)

`run(args)` then finds `args.config` (the config file, or None) and `args.overrides`:
the stores given as positionals, the `KEY=VALUE`s, then the flags given (so a flag wins
over an override of the same key, as in `ingest` and `synth`), all `a.b=value`.
`load_batch_config` turns them into the typed config; `print_result` reports.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from galaxy_hpc.cli.output import print_json

CONFIG_ENDINGS = (".yaml", ".yml")
# Positionals that name a store, as usage shows them.
_STORE_METAVARS = {"real": "REAL_STORE", "generated": "GEN_STORE"}


def add_command(subparsers: argparse._SubParsersAction, name: str, *,
                run: Callable[[argparse.Namespace], int], help: str, description: str,
                distributed: bool = True) -> argparse.ArgumentParser:
    """A subcommand with `--json`, run by `run(args)`; `distributed`: it runs on every rank
    of a launch (other ranks' output goes to per-rank logs, see cli/main.py)."""
    parser = subparsers.add_parser(name, help=help, description=description)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(func=run, distributed=distributed)
    return parser


def add_batch_command(subparsers: argparse._SubParsersAction, name: str, *,
                      run: Callable[[argparse.Namespace], int], config: str,
                      metavar: str = "CONFIG", required: bool = True, stores: Sequence[str] = (),
                      fields: type | None = None, aliases: Mapping[str, str] | None = None,
                      sections: bool = True, **command: Any) -> argparse.ArgumentParser:
    """`add_command` taking CONFIG (`config` says what it is; optional unless `required`),
    then the config fields named in `stores` as positionals (CONFIG is then optional and
    told apart by its ending, .yaml/.yml), `KEY=VALUE` overrides, and a flag for every
    other field of the dataclass `fields` (hpc.config_flags)."""
    parser = add_command(subparsers, name, run=_with_inputs(run, tuple(stores)), **command)
    if stores:
        shown = " ".join(_STORE_METAVARS.get(s, s.upper()) for s in stores)
        parser.add_argument("config", nargs="*", metavar=f"[CONFIG] {shown}",
                            help=f"{config}, then {shown} (the config's "
                            f"{', '.join(stores)}); each may also be an override")
    else:
        parser.add_argument("config", nargs=None if required else "?", metavar=metavar,
                            help=config)
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                        help="config overrides, e.g. a.b=1 (values are YAML)")
    if fields is not None:
        from hpc.config_flags import add_config_flags

        add_config_flags(parser, fields, exclude=stores, sections=sections, aliases=aliases)
    return parser


def _with_inputs(run: Callable[[argparse.Namespace], int],
                 stores: tuple[str, ...]) -> Callable[[argparse.Namespace], int]:
    def with_inputs(args: argparse.Namespace) -> int:
        resolve_inputs(args, stores)
        return run(args)

    return with_inputs


def resolve_inputs(args: argparse.Namespace, stores: Sequence[str] = ()) -> None:
    """Set `args.config` to the config file (or None) and `args.overrides` to every
    override the command line makes: stores, `KEY=VALUE`s, flags given, in that order."""
    from galaxy_hpc.cli.main import OVERRIDE
    from hpc.config_flags import config_overrides

    given = args.config if isinstance(args.config, list) else \
        [args.config] if args.config is not None else []
    named = [t for t in given if OVERRIDE.match(t)]  # `config a=1 ...` parsed without main()
    positional = [t for t in given if not OVERRIDE.match(t)]
    config = None
    if positional and (not stores or positional[0].lower().endswith(CONFIG_ENDINGS)):
        config = positional.pop(0)
    if len(positional) > len(stores):
        wanted = " ".join(_STORE_METAVARS.get(s, s.upper()) for s in stores)
        raise ValueError(f"unexpected {' '.join(positional[len(stores):])!r}: this command "
                         f"takes [CONFIG] {wanted} (a config file ends in .yaml or .yml)")
    from_stores = [f"{s}={json.dumps(p)}" for s, p in zip(stores, positional)]
    args.config = config
    args.overrides = [*from_stores, *named, *args.overrides, *config_overrides(args)]


def load_batch_config(cls: type, args: argparse.Namespace) -> Any:
    """`cls` from the config file and overrides; without a file, from the dataclass's
    defaults and the overrides."""
    import galaxy_hpc.registry  # noqa: F401  (every config kind: a file's `kind:` is checked)
    from hpc.config import apply_overrides, from_dict, load_config

    if args.config is None:
        return from_dict(cls, apply_overrides({}, args.overrides), source="command line")
    return load_config(args.config, args.overrides, cls=cls)


def is_main_rank() -> bool:
    from hpc.dist import resolve_env

    return resolve_env(cuda_available=False).is_main


def print_result(args: argparse.Namespace, result: Any, *, data: Any = None,
                 text: str | None = None) -> None:
    """On rank 0 only: `data` (default: the result's to_dict(), else its fields) as one
    JSON document with --json, else `text` (default: its summary())."""
    if not is_main_rank():
        return
    if args.json:
        if data is None:
            data = result.to_dict() if hasattr(result, "to_dict") else dataclasses.asdict(result)
        print_json(data)
    else:
        print(result.summary() if text is None else text, flush=True)
