"""`galaxy-hpc encode STORE --model SD_FOLDER --out LATENTS`: cache a training store's VAE
latent distributions (and caption embeddings) for training from latents (data.latents)."""

from __future__ import annotations

import argparse

from galaxy_hpc.cli.batch import add_batch_command, load_batch_config, print_result


def register(subparsers: argparse._SubParsersAction) -> None:
    from galaxy_hpc.encode.job import EncodeConfig

    add_batch_command(
        subparsers, "encode", run=run, required=False, stores=("store",), fields=EncodeConfig,
        config="encode YAML (kind: encode)",
        help="cache a store's VAE latents (8 exact rotations/flips) for faster SD training",
        description="Stable Diffusion's VAE posterior (mean, log-variance) of every image "
        "under the 8 rotations and flips exact on the pixel grid, into a latent store that "
        "training reads with data.latents; caption embeddings too, once per distinct "
        "caption. MPI-parallel over shards (srun/mpiexec), same bytes for any number of "
        "ranks; a killed run rerun with the same command encodes only unfinished shards.")


def run(args: argparse.Namespace) -> int:
    from galaxy_hpc.encode.job import EncodeConfig, run_encode

    summary = run_encode(load_batch_config(EncodeConfig, args), progress=not args.json)
    print_result(args, summary, text=summary.line())
    return 0
