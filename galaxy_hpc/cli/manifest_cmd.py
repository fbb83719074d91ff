"""`galaxy-hpc manifest FOLDER --out X.jsonl`: a JSONL manifest (path, label, caption)
from an image folder, for the jsonl ingest."""

from __future__ import annotations

import argparse
from dataclasses import asdict
from pathlib import Path

from galaxy_hpc.cli.output import print_json
from galaxy_hpc.data.ingest.manifest import IMAGE_EXTENSIONS, write_manifest
from hpc.files import check_writable


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "manifest", help="write a JSONL manifest (path, label, caption) from an image folder",
        description="List the images under FOLDER (sub-folders too) as Astro-Diffusion "
        "manifest lines: path relative to the manifest, label = the class folder "
        "(spiral_galaxies/, nebulae/ ...) for images in one, caption = the same-named .txt "
        "when there is one. Ingest it with `galaxy-hpc ingest X.jsonl --out STORE`.")
    parser.add_argument("folder", type=Path, metavar="FOLDER", help="folder of images")
    parser.add_argument("--out", type=Path, required=True, metavar="X.jsonl",
                        help="manifest to write")
    parser.add_argument("--captions", type=Path, metavar="DIR",
                        help="folder of <image name>.txt captions (default: beside the images)")
    parser.add_argument("--extensions", default=",".join(IMAGE_EXTENSIONS), metavar="E1,E2",
                        help="image file endings (default: %(default)s)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing manifest")
    parser.add_argument("--json", action="store_true", help="print a JSON summary")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    check_writable(args.out, "the manifest")
    extensions = tuple(e.strip() for e in args.extensions.split(",") if e.strip())
    summary = write_manifest(args.folder, args.out, captions=args.captions,
                             extensions=extensions, overwrite=args.overwrite)
    if args.json:
        print_json(asdict(summary))
    else:
        classes = ", ".join(f"{k} x{n}" for k, n in summary.labels.items()) or "none"
        print(f"listed {summary.num_images} images ({summary.num_captioned} with captions; "
              f"classes: {classes}) -> {summary.out}")
    return 0
