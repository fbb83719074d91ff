"""`galaxy-hpc caption VOTES`: write GalaxySD-style captions for a GZ2 or Kaggle vote table."""

from __future__ import annotations

import argparse
import csv
from collections import Counter
from pathlib import Path

from galaxy_hpc.cli.output import print_json
from galaxy_hpc.data.captions import CaptionConfig, Captioner
from galaxy_hpc.data.vote_table import FRACTION_SUFFIXES, TABLE_ENDINGS, read_vote_table
from hpc.files import check_writable

NUM_MOST_COMMON = 5


def default_out(votes: Path) -> Path:
    """`<stem>.captions.csv` beside the input (`gz2_hart16.csv.gz` -> `gz2_hart16.captions.csv`)."""
    name = votes.name
    ending = next((e for e in TABLE_ENDINGS if name.lower().endswith(e)), votes.suffix)
    return votes.with_name(f"{name[: len(name) - len(ending)]}.captions.csv")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "caption", help="caption galaxies from a GZ2 or Kaggle vote table",
        description="Read a GZ2 (tNN_..._aNN_...) or Kaggle (Class1.1 ...) vote table, CSV or "
        "FITS, and write id,caption rows in the GalaxySD style.")
    parser.add_argument("votes", type=Path, metavar="VOTES", help="vote table (.csv or .fits)")
    parser.add_argument("--out", type=Path, help="captions CSV (default: <stem>.captions.csv "
                        "beside VOTES)")
    parser.add_argument("--survey", default="sdss", help="caption prefix (default: sdss)")
    parser.add_argument("--threshold", type=float, default=CaptionConfig.threshold,
                        help="fraction an answer needs to count (default: %(default)s)")
    parser.add_argument("--odd-threshold", type=float, default=CaptionConfig.odd_threshold,
                        help="fraction 'anything odd? yes' and the odd feature need "
                        "(default: %(default)s)")
    parser.add_argument("--suffix", choices=FRACTION_SUFFIXES,
                        help="GZ2 columns to use (default: debiased if present, else fraction)")
    parser.add_argument("--id-column", help="id column (default: dr7objid/objid/id or GalaxyID)")
    parser.add_argument("--json", action="store_true", help="print a JSON summary")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    config = CaptionConfig(survey=args.survey, threshold=args.threshold,
                           odd_threshold=args.odd_threshold)
    out = args.out or default_out(args.votes)
    check_writable(out, "the captions")
    table = read_vote_table(args.votes, suffix=args.suffix, id_column=args.id_column)
    captions = Captioner(config).captions(table.fractions)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "caption"])
        writer.writerows(zip(table.ids.tolist(), captions, strict=True))
    common = Counter(captions).most_common(NUM_MOST_COMMON)
    if args.json:
        print_json({
            "num_captioned": len(captions), "out": str(out), "votes": str(args.votes),
            "naming": table.naming, "suffix": table.suffix,
            "most_common": [{"caption": c, "count": n} for c, n in common]})
    else:
        listing = "; ".join(f"{c!r} x{n}" for c, n in common)
        print(f"captioned {len(captions)} galaxies ({table.naming}"
              f"{', ' + table.suffix if table.suffix else ''}) -> {out}; most common: {listing}")
    return 0
