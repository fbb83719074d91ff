"""`galaxy-hpc evaluate morphology GEN_STORE PREDICTOR`: predicted vs requested vote fractions."""

from __future__ import annotations

import argparse

from galaxy_hpc.cli.evaluations.common import add_output_args, emit


def register(actions: argparse._SubParsersAction) -> None:
    parser = actions.add_parser(
        "morphology", help="GZ2 vote fractions a predictor sees vs those requested (r, MAE)",
        description="Predict GZ2 vote fractions of GEN_STORE's galaxies with a vote predictor "
        "(a folder with predictor.json, e.g. a trained DINOv2 regressor) and compare them with "
        "the fractions the catalog requested (its <GZ2 stem>_fraction columns), per question.")
    parser.add_argument("generated", metavar="GEN_STORE")
    parser.add_argument("predictor", metavar="PREDICTOR",
                        help="vote predictor folder (galaxy_hpc.models.vote_predictor)")
    parser.add_argument("--real", metavar="REAL_STORE",
                        help="also score the predictor on real galaxies with known votes")
    parser.add_argument("--vote-suffix", default="fraction",
                        help="requested columns are <GZ2 stem>_<suffix> (default fraction)")
    parser.add_argument("--stretch", metavar="JSON",
                        help="float stores: stretch to use (default: estimated from REAL_STORE, "
                        "else from GEN_STORE)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    add_output_args(parser)
    parser.set_defaults(func=run, distributed=True)


def run(args: argparse.Namespace) -> int:
    from galaxy_hpc.evaluate.config import MorphologyConfig
    from galaxy_hpc.evaluate.morphology import run_morphology

    cfg = MorphologyConfig(generated=args.generated, predictor=args.predictor, real=args.real,
                           vote_suffix=args.vote_suffix, stretch=args.stretch,
                           batch_size=args.batch_size, device=args.device)
    return emit(run_morphology(cfg, show_progress=not args.json), args, "morphology")
