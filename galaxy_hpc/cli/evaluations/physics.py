"""`galaxy-hpc evaluate physics REAL_STORE GEN_STORE`: statmorph parameters, real vs generated."""

from __future__ import annotations

import argparse

from galaxy_hpc.cli.evaluations.common import add_output_args, emit


def register(actions: argparse._SubParsersAction) -> None:
    parser = actions.add_parser(
        "physics", help="flux, size, concentration, asymmetry, Gini/M20, ellipticity (statmorph)",
        description="Measure galaxies of both stores with statmorph on a photutils "
        "segmentation, split over ranks, and report the Wasserstein distance per parameter "
        "and histograms.")
    parser.add_argument("real", metavar="REAL_STORE")
    parser.add_argument("generated", metavar="GEN_STORE")
    parser.add_argument("--max-galaxies", type=int, default=5000,
                        help="galaxies measured per store, evenly spaced (default 5000)")
    parser.add_argument("--band", type=int, help="measure this band (default: the sum of bands)")
    parser.add_argument("--bins", type=int, default=30, help="histogram bins")
    parser.add_argument("--threshold-sigmas", type=float, default=1.5,
                        help="segmentation threshold above the sky, in sky sigmas")
    add_output_args(parser)
    parser.set_defaults(func=run, distributed=True)


def run(args: argparse.Namespace) -> int:
    from galaxy_hpc.evaluate.config import PhysicsConfig
    from galaxy_hpc.evaluate.physics import run_physics

    cfg = PhysicsConfig(real=args.real, generated=args.generated, max_galaxies=args.max_galaxies,
                        band=args.band, num_bins=args.bins, threshold_sigmas=args.threshold_sigmas)
    return emit(run_physics(cfg, show_progress=not args.json), args, "physics")
