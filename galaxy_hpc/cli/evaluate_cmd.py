"""`galaxy-hpc evaluate EVALUATION [CONFIG] [STORES] [a.b=v ...]`: judge a generated catalog
against real galaxies.

Each evaluation is a config kind (its typed dataclass, whose docstring is the command's
help and whose fields are its flags, see cli/batch.py) and a function that runs it;
EVALUATIONS lists them in the order `--help` shows them. Adding one is a config kind and
one line here. Every evaluation runs alone, under mpiexec or under srun, prints on rank 0,
has --json, and with --out RUN_DIR writes RUN_DIR/<evaluation>.json for `galaxy-hpc report`.
"""

from __future__ import annotations

import argparse
import importlib
from dataclasses import dataclass, field

from galaxy_hpc.cli.batch import add_batch_command, load_batch_config, print_result


@dataclass(frozen=True)
class Evaluation:
    """How the command line reaches one evaluation."""

    runner: str  # "module:function" under galaxy_hpc.evaluate: f(cfg, show_progress=...)
    stores: tuple[str, ...] = ()  # config fields given as positionals, in order
    aliases: dict[str, str] = field(default_factory=dict)  # older spellings of flags
    kind: str = ""  # the config kind and result name (RUN_DIR/<kind>.json); "": the name
    job: bool = False  # the `evaluate` job: its config's `out` is RUN_DIR, it writes there
    distributed: bool = True

    def register(self, actions: argparse._SubParsersAction, name: str) -> None:
        from hpc.config import kind_class

        cls = kind_class(self.kind or name)
        parser = add_batch_command(
            actions, name, run=lambda args: self.run(cls, name, args),
            help=cls.__doc__.partition("\n")[0].rstrip("."), description=cls.__doc__,
            config=f"{name} YAML (kind: {self.kind or name})", required=False,
            stores=self.stores, fields=cls, aliases=self.aliases, sections=not self.job,
            distributed=self.distributed)
        if not self.job:
            parser.add_argument("--out", metavar="RUN_DIR", help="also write RUN_DIR/"
                                f"{self.kind or name}.json (what `galaxy-hpc report` reads)")

    def run(self, cls: type, name: str, args: argparse.Namespace) -> int:
        if not self.job and args.out:
            from hpc.files import check_writable

            # Results are written at the end: an unwritable folder stops the work before it.
            check_writable(args.out, "the results folder (--out)")
        cfg = load_batch_config(cls, args)
        module, _, function = self.runner.partition(":")
        runner = getattr(importlib.import_module(f"galaxy_hpc.evaluate.{module}"), function)
        result = runner(cfg, show_progress=not args.json)
        if self.job:
            print_result(args, result)
        else:
            _emit(result, args, self.kind or name)
        return 0


BOTH = ("real", "generated")
EVALUATIONS: dict[str, Evaluation] = {
    "fid": Evaluation("fid:run_fid", BOTH),
    "physics": Evaluation("physics:run_physics", BOTH, {"num_bins": "--bins"}),
    "morphology": Evaluation("morphology:run_morphology", ("generated", "predictor")),
    "morphology-fidelity": Evaluation("morphology_fidelity:run_morphology_fidelity",
                                      ("generated", "predictor"), {"num_bins": "--bins"},
                                      kind="morphology_fidelity"),
    "conditioning": Evaluation("conditioning:run_conditioning", ("generated",),
                               {"num_bins": "--bins"}),
    "clipscore": Evaluation("clipscore:run_clipscore", ("generated",)),
    "augmentation": Evaluation("augmentation:run_augmentation", distributed=False),
    "all": Evaluation("job:run_evaluate", kind="evaluate", job=True),
}


def register(subparsers: argparse._SubParsersAction) -> None:
    # The modules that register the evaluations' config kinds (light: no torch).
    for module in ("config", "augmentation_config", "job"):
        importlib.import_module(f"galaxy_hpc.evaluate.{module}")
    parser = subparsers.add_parser(
        "evaluate", help="FID/KID/IS, physics, morphology (and its fidelity against the "
        "predictor's floor), conditioning and CLIP score of a catalog",
        description="Evaluate a generated store against a real one, on any number of ranks "
        "(mpiexec, srun). Each evaluation takes a config (kind: its name) and a.b=value "
        "overrides, or its stores as positionals and flags; it prints on rank 0, has --json, "
        "and with --out RUN_DIR writes RUN_DIR/<evaluation>.json; `galaxy-hpc report RUN_DIR` "
        "makes the HTML page. `evaluate all CONFIG` runs them all (kind: evaluate).")
    actions = parser.add_subparsers(dest="evaluation", metavar="EVALUATION", required=True)
    for name, evaluation in EVALUATIONS.items():
        evaluation.register(actions, name)


def _emit(result, args: argparse.Namespace, name: str) -> None:
    """Rank 0 prints the result (JSON or its summary) and writes it to --out."""
    from galaxy_hpc.cli.batch import is_main_rank
    from galaxy_hpc.evaluate.results import to_json, write_result

    if not is_main_rank():
        return
    data = result.to_dict()
    written = write_result(args.out, name, data) if args.out else None
    print_result(args, result, data=to_json(data),
                 text=result.summary() + (f"\nwrote {written}" if written else ""))

