"""`galaxy-hpc evaluate conditioning GEN_STORE`: requested vs measured rank correlations."""

from __future__ import annotations

import argparse

from galaxy_hpc.cli.evaluations.common import add_output_args, emit, str_list


def register(actions: argparse._SubParsersAction) -> None:
    parser = actions.add_parser(
        "conditioning", help="rank correlation of requested vs measured quantities",
        description="Spearman rho between what a conditional model was asked for (columns of "
        "GEN_STORE, e.g. log_stellar_mass) and what its images show (total flux, half-light "
        "radius), overall and within bins of --by.")
    parser.add_argument("generated", metavar="GEN_STORE")
    parser.add_argument("--pairs", type=str_list,
                        default=["log_stellar_mass:total_flux",
                                 "log_stellar_mass:half_light_radius", "redshift:total_flux"],
                        help="requested:measured pairs, comma-separated; measured is total_flux "
                        "or half_light_radius")
    parser.add_argument("--by", default="redshift",
                        help="also correlate within quantile bins of this column ('' for none)")
    parser.add_argument("--bins", type=int, default=3)
    parser.add_argument("--real", metavar="REAL_STORE",
                        help="the same correlations on real galaxies, as the reference")
    add_output_args(parser)
    parser.set_defaults(func=run, distributed=True)


def run(args: argparse.Namespace) -> int:
    from galaxy_hpc.evaluate.conditioning import run_conditioning
    from galaxy_hpc.evaluate.config import ConditioningConfig

    cfg = ConditioningConfig(generated=args.generated, pairs=args.pairs, by=args.by or None,
                             num_bins=args.bins, real=args.real)
    return emit(run_conditioning(cfg, show_progress=not args.json), args, "conditioning")
