"""`galaxy-hpc ingest`: a seed project's images (+ captions, votes, properties) into a store."""

from __future__ import annotations

import argparse
import json

from galaxy_hpc.cli.batch import CONFIG_ENDINGS, add_batch_command, print_result
from galaxy_hpc.cli.main import EXIT_OK, EXIT_REJECTS



def register(subparsers: argparse._SubParsersAction) -> None:
    parser = add_batch_command(
        subparsers, "ingest", run=run, config="what to ingest, or an ingest config .yaml",
        metavar="SOURCE|CONFIG",
        help="turn image folders, manifests, FITS, NPY, HDF5 arrays or GZ2 votes into a store",
        description="Read SOURCE (a GalaxySD image folder with .txt captions, an "
        "Astro-Diffusion .jsonl manifest, FITS cutouts, a galaxyCGAN .npy with ids and a "
        "property CSV, an HDF5 file of an image stack and 1-D columns (Galaxy10), or an image "
        "folder joined to a GZ2/Kaggle vote table), centre-crop "
        "and resize every image, and write a Zarr or HDF5 store. Runs the same on one "
        "process, under mpiexec -n K or srun -n K; rerun the same command after a crash "
        "to finish. Bad inputs are listed in STORE.rejects.csv (exit status "
        f"{EXIT_REJECTS}). Instead of SOURCE, give an ingest YAML (kind: ingest); flags "
        "and KEY=VALUE override it.")
    parser.add_argument("--out", metavar="STORE", help="store path (X.zarr, or X.h5 for hdf5)")
    parser.add_argument("--format", choices=["zarr", "hdf5"])
    parser.add_argument("--compression", choices=["zstd", "gzip", "none", "jpeg-source"],
                        help="image compression (default: zstd for uint8 zarr, else none); "
                        "jpeg-source keeps source JPEGs that are already SIZE x SIZE RGB")
    parser.add_argument("--size", type=int, metavar="S", help="output S x S pixels (128)")
    parser.add_argument("--kind",
                        choices=["auto", "folder", "jsonl", "fits", "npy", "hdf5", "votes"],
                        help="source kind (default: guessed from SOURCE)")
    parser.add_argument("--captions", metavar="DIR",
                        help="folder of <image name>.txt captions (default: beside the images)")
    parser.add_argument("--no-captions", action="store_true", help="store no caption column")
    parser.add_argument("--labels", action="store_true",
                        help="folder: class folders (spiral_galaxies/, nebulae/) as a label "
                        "column")
    parser.add_argument("--ids", metavar="IDS.npy", help="npy: one id per image, in order")
    parser.add_argument("--table", metavar="CSV", help="npy: property table joined on the id")
    parser.add_argument("--id-column", metavar="NAME",
                        help="id column of the property table (HSC_id) or vote table")
    parser.add_argument("--prefer", metavar="RULE",
                        help="npy: row kept per id: first, last, max:COL, min:COL (first)")
    parser.add_argument("--images", metavar="DATASET",
                        help="hdf5: the image dataset (default: the only one of 3 or 4 axes)")
    parser.add_argument("--layout", choices=["auto", "channels_first", "channels_last"],
                        help="npy, hdf5: [n, C, H, W] or [n, H, W, C] (auto: from the shape)")
    parser.add_argument("--votes", metavar="TABLE", help="GZ2 or Kaggle vote table (CSV/FITS)")
    parser.add_argument("--catalog", metavar="TABLE",
                        help="any kind: CSV or FITS catalog of per-galaxy properties (redshift, "
                        "mass ...) joined on the record id")
    parser.add_argument("--catalog-id", metavar="NAME",
                        help="the catalog's id column ('id'): file names without their ending")
    parser.add_argument("--pattern", help="votes: image path of an id under SOURCE ('{id}.jpg')")
    parser.add_argument("--hdu", help="fits: HDU index or name (default: first image HDU)")
    parser.add_argument("--header-keys", metavar="K1,K2", help="fits: header keys to keep")
    parser.add_argument("--bands", metavar="B1,B2",
                        help="fits: one file per band, these bands in channel order (g,r,i)")
    parser.add_argument("--band-pattern", metavar="PATTERN",
                        help="fits: band file names, {id} and {band} ('{id}_{band}')")
    parser.add_argument("--shard-size", type=int, metavar="N",
                        help="records per block and items per store shard (256)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing store")


def _flag_overrides(args: argparse.Namespace) -> list[str]:
    hdu = args.hdu
    if hdu is not None and hdu.lstrip("-").isdigit():
        hdu = int(hdu)
    keys = [k.strip() for k in args.header_keys.split(",") if k.strip()] \
        if args.header_keys is not None else None
    bands = [b.strip() for b in args.bands.split(",") if b.strip()] \
        if args.bands is not None else None
    flags = {
        "out": args.out, "format": args.format, "compression": args.compression,
        "size": args.size, "source_kind": args.kind,
        "shard_size": args.shard_size, "folder.captions": args.captions,
        "npy.ids": args.ids, "npy.table": args.table, "npy.prefer": args.prefer,
        "votes.table": args.votes, "votes.pattern": args.pattern,
        "catalog.table": args.catalog, "catalog.id_column": args.catalog_id,
        "fits.hdu": hdu, "fits.header_keys": keys, "hdf5.images": args.images,
        "fits.bands": bands, "fits.band_pattern": args.band_pattern,
        "npy.layout": args.layout, "hdf5.layout": args.layout,
    }
    if args.id_column is not None:
        flags["npy.id_column"] = flags["votes.id_column"] = args.id_column
    if args.no_captions:
        flags["captions"] = False
    if args.labels:
        flags["folder.labels"] = True
    if args.overwrite:
        flags["overwrite"] = True
    return [f"{key}={json.dumps(value)}" for key, value in flags.items() if value is not None]


def build_config(args: argparse.Namespace):
    from galaxy_hpc.data.ingest.config import IngestConfig
    from hpc.config import apply_overrides, from_dict, load_config

    overrides = list(args.overrides) + _flag_overrides(args)
    if args.config.lower().endswith(CONFIG_ENDINGS):
        return load_config(args.config, overrides, cls=IngestConfig)
    if args.out is None and not any(o.startswith("out=") for o in overrides):
        raise ValueError("give --out STORE (or an ingest config file)")
    data = apply_overrides({"source": args.config}, overrides)
    return from_dict(IngestConfig, data, source="command line")


def run(args: argparse.Namespace) -> int:
    from galaxy_hpc.data.ingest.pipeline import run_ingest

    summary = run_ingest(build_config(args), progress=not args.json)
    print_result(args, summary)
    return EXIT_REJECTS if summary.num_rejected else EXIT_OK
