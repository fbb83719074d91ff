"""`galaxy-hpc evaluate augmentation CONFIG [a.b=v ...]`: does a generated catalog help a
classifier on held-out real galaxies (galaxyCGAN's DAGAN test, GalaxySD's downstream test)?"""

from __future__ import annotations

import argparse

from galaxy_hpc.cli.evaluations.common import add_output_args, emit


def register(actions: argparse._SubParsersAction) -> None:
    parser = actions.add_parser(
        "augmentation", help="classifier on real only vs real + generated, tested on real",
        description="Train the same small classifier on real galaxies only and on real + "
        "generated ones (same number of steps), score both on held-out real galaxies: "
        "accuracy, completeness and purity per class, rare classes called out. Writes "
        "OUTPUT_DIR/augmentation.json and augmentation.png.")
    parser.add_argument("config", help="augmentation YAML (kind: augmentation)")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE")
    add_output_args(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from galaxy_hpc.evaluate.augmentation import run_augmentation
    from galaxy_hpc.evaluate.augmentation_config import AugmentationConfig
    from hpc.config import load_config

    cfg = load_config(args.config, list(args.overrides), cls=AugmentationConfig)
    return emit(run_augmentation(cfg, show_progress=not args.json), args, "augmentation")
