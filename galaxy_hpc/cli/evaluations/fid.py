"""`galaxy-hpc evaluate fid REAL_STORE GEN_STORE`: FID, KID, IS, precision/recall."""

from __future__ import annotations

import argparse

from galaxy_hpc.cli.evaluations.common import add_output_args, emit, int_list, str_list


def add_feature_args(parser: argparse.ArgumentParser) -> None:
    """Flags of galaxy_hpc.evaluate.config.FeatureSettings."""
    parser.add_argument("--extractor", default="inception-v3-compat",
                        help="torch-fidelity feature extractor: inception-v3-compat (default), "
                        "dinov2-vit-s-14/b-14/l-14/g-14, clip-vit-b-32, ..., or one that "
                        "--extractor-module registers")
    parser.add_argument("--weights", metavar="PATH",
                        help="the extractor's weights (file or folder); nothing is downloaded")
    parser.add_argument("--extractor-module", metavar="MODULE",
                        help="import MODULE first (it calls torch_fidelity.register_feature_extractor)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--stretch", metavar="JSON",
                        help="float stores: the stretch to use (default: estimated from REAL_STORE)")
    parser.add_argument("--rgb-bands", type=int_list, metavar="R,G,B",
                        help="float stores with 3+ bands: which bands to show as R, G, B")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")


def feature_settings(args: argparse.Namespace):
    from galaxy_hpc.evaluate.config import FeatureSettings

    return FeatureSettings(extractor=args.extractor, weights=args.weights,
                           extractor_module=args.extractor_module, batch_size=args.batch_size,
                           stretch=args.stretch, rgb_bands=args.rgb_bands, device=args.device)


def register(actions: argparse._SubParsersAction) -> None:
    parser = actions.add_parser(
        "fid", help="FID, KID, Inception Score, precision/recall (exact over MPI ranks)",
        description="Frechet distance between the feature statistics of REAL_STORE and "
        "GEN_STORE (float64 sums over every image, one all-reduce), KID, IS and "
        "precision/recall with torch-fidelity's estimators. REAL_STORE's statistics are "
        "cached by checksum and extractor.")
    parser.add_argument("real", metavar="REAL_STORE")
    parser.add_argument("generated", metavar="GEN_STORE")
    add_feature_args(parser)
    parser.add_argument("--metrics", type=str_list, default=["fid", "kid", "isc"],
                        help="comma-separated from fid,kid,isc,prc (default fid,kid,isc)")
    parser.add_argument("--max-kept-features", type=int, default=10000,
                        help="features kept per store for KID and precision/recall")
    parser.add_argument("--kid-subsets", type=int, default=100)
    parser.add_argument("--kid-subset-size", type=int, default=1000)
    parser.add_argument("--isc-splits", type=int, default=10)
    parser.add_argument("--seed", type=int, default=2020)
    parser.add_argument("--cache-dir", help="where real-store statistics are cached "
                        "(default $GHPC_EVAL_CACHE or ~/.cache/galaxy-hpc/eval-stats)")
    parser.add_argument("--no-cache", action="store_true")
    add_output_args(parser)
    parser.set_defaults(func=run, distributed=True)


def build_config(args: argparse.Namespace):
    from galaxy_hpc.evaluate.config import FidConfig

    return FidConfig(real=args.real, generated=args.generated, features=feature_settings(args),
                     metrics=args.metrics, max_kept_features=args.max_kept_features,
                     kid_subsets=args.kid_subsets, kid_subset_size=args.kid_subset_size,
                     isc_splits=args.isc_splits, seed=args.seed, cache=not args.no_cache,
                     cache_dir=args.cache_dir)


def run(args: argparse.Namespace) -> int:
    from galaxy_hpc.evaluate.fid import run_fid

    return emit(run_fid(build_config(args), show_progress=not args.json), args, "fid")
