"""`galaxy-hpc synth`: synthetic SDSS-like galaxies (GalSim) with known truth, into a store."""

from __future__ import annotations

import argparse
import json

from galaxy_hpc.cli.batch import add_batch_command, print_result


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = add_batch_command(
        subparsers, "synth", run=run, required=False,
        config="synth YAML (kind: synth); flags override it",
        help="draw synthetic galaxies with known parameters into a store",
        description="GalSim bulge+disk galaxies whose flux, size, colour and shape follow "
        "(redshift, stellar mass), with simulated GZ2 votes and captions. Same seed, same "
        "bytes, for any number of ranks (srun/mpiexec). Either flags or a synth YAML config.")
    parser.add_argument("--n", type=int, dest="num_galaxies", help="number of galaxies")
    parser.add_argument("--size", type=int, help="stamp size in pixels (default 64)")
    parser.add_argument("--out", help="store path (e.g. synth.zarr or synth.h5)")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--format", choices=["zarr", "hdf5"])
    parser.add_argument("--shard-size", type=int)
    parser.add_argument("--float", action="store_true",
                        help="store linear flux per band (float32) instead of an RGB composite")
    parser.add_argument("--no-captions", action="store_true")
    parser.add_argument("--overwrite", action="store_true",
                        help="delete a store already at --out (only a store) and draw it again")


def build_config(args: argparse.Namespace):
    from hpc.config import apply_overrides, from_dict, load_config
    from galaxy_hpc.data.synth.job import SynthJobConfig

    flags = [f"{key}={json.dumps(value)}" for key, value in {
        "out": args.out, "num_galaxies": args.num_galaxies, "seed": args.seed,
        "format": args.format, "shard_size": args.shard_size,
        "galaxy.size": args.size}.items() if value is not None]
    if args.float:
        flags.append("galaxy.output=float32")
    if args.no_captions:
        flags.append("captions=false")
    if args.overwrite:
        flags.append("overwrite=true")
    overrides = list(args.overrides) + flags
    if args.config:
        return load_config(args.config, overrides, cls=SynthJobConfig)
    if args.out is None:
        raise ValueError("give --out STORE (or a synth config file)")
    return from_dict(SynthJobConfig, apply_overrides({"galaxy": {"output": "uint8"}}, overrides),
                     source="command line")


def run(args: argparse.Namespace) -> int:
    from galaxy_hpc.data.synth.job import run_synth

    summary = run_synth(build_config(args), progress=not args.json)
    print_result(args, summary, text=summary.line())
    return 0
