"""`galaxy-hpc caption VOTES`: GalaxySD-style captions for a GZ2 or Kaggle vote table;
`galaxy-hpc caption --predictor RUN STORE`: the same for a store's galaxies from the
fractions a trained vote predictor gives them (caption_store.py), into a new store;
`galaxy-hpc caption --vlm FOLDER STORE`: a store's captions from a vision-language model
and a prompt (caption_vlm.py)."""

from __future__ import annotations

import argparse
import csv
from collections import Counter
from pathlib import Path

from galaxy_hpc.cli.batch import add_command
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
    parser = add_command(
        subparsers, "caption", run=run,
        help="caption galaxies from a GZ2 or Kaggle vote table, or a store with a predictor",
        description="Read a GZ2 (tNN_..._aNN_...) or Kaggle (Class1.1 ...) vote table, CSV or "
        "FITS, and write id,caption rows in the GalaxySD style. With --predictor RUN, "
        "caption a store's galaxies from the vote fractions a trained vote predictor gives "
        "them instead, into a new store (the same images and columns, plus the caption and "
        "the predicted fractions); MPI-parallel under mpiexec/srun, and a rerun finishes "
        "a killed one. With --vlm FOLDER, caption a store's galaxies with a local "
        "vision-language model (transformers, e.g. Qwen2-VL) and a prompt instead.")
    parser.add_argument("source", type=Path, metavar="VOTES|STORE",
                        help="vote table (.csv or .fits); with --predictor or --vlm, a store")
    parser.add_argument("--predictor", metavar="RUN",
                        help="vote predictor folder (predictor.json), a train_dino run's "
                        "output folder, or its Hugging Face id: caption STORE with it")
    parser.add_argument("--vlm", metavar="FOLDER",
                        help="vision-language model folder (transformers layout, e.g. "
                        "Qwen2-VL) or its Hugging Face id in the local cache: caption STORE "
                        "with it")
    parser.add_argument("--out", type=Path, help="captions CSV (default: <stem>.captions.csv "
                        "beside VOTES); with --predictor or --vlm, the new store (default: "
                        "<stem>.captioned.zarr|h5 beside STORE)")
    parser.add_argument("--survey", default="sdss", help="caption prefix (default: sdss)")
    parser.add_argument("--threshold", type=float, default=CaptionConfig.threshold,
                        help="fraction an answer needs to count (default: %(default)s)")
    parser.add_argument("--odd-threshold", type=float, default=CaptionConfig.odd_threshold,
                        help="fraction 'anything odd? yes' and the odd feature need "
                        "(default: %(default)s)")
    parser.add_argument("--suffix", choices=FRACTION_SUFFIXES,
                        help="GZ2 columns to use (default: debiased if present, else fraction)")
    parser.add_argument("--id-column", help="id column (default: dr7objid/objid/id or GalaxyID)")
    store = parser.add_argument_group("with --predictor or --vlm")
    store.add_argument("--column", default="caption", help="caption column (default: caption)")
    store.add_argument("--prefix", default="pred_",
                       help="prefix of the predicted fraction columns (default: pred_)")
    store.add_argument("--batch-size", type=int,
                       help="images per forward pass (default: 128 with --predictor, "
                       "8 with --vlm)")
    store.add_argument("--device", default="auto",
                       help="auto (a GPU per rank if any), cpu, cuda, cuda:N")
    store.add_argument("--overwrite", action="store_true",
                       help="replace a store at --out made from other inputs or settings")
    vlm = parser.add_argument_group("with --vlm")
    vlm.add_argument("--prompt", help="what the model is asked about each galaxy (default: "
                     "a one-sentence morphology description)")
    vlm.add_argument("--max-new-tokens", type=int, default=64,
                     help="longest caption, in tokens (default: %(default)s)")


def run(args: argparse.Namespace) -> int:
    if args.predictor is not None and args.vlm is not None:
        raise ValueError("give --predictor RUN or --vlm FOLDER, not both")
    if args.vlm is None and (args.prompt is not None or args.max_new_tokens != 64):
        raise ValueError("--prompt and --max-new-tokens go with --vlm FOLDER STORE")
    if args.predictor is not None or args.vlm is not None:
        return run_on_store(args)
    if (args.overwrite or args.column != "caption" or args.prefix != "pred_"
            or args.batch_size is not None):
        raise ValueError("--column, --prefix, --batch-size and --overwrite go with "
                         "--predictor RUN STORE or --vlm FOLDER STORE")
    args.votes = args.source
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


def run_on_store(args: argparse.Namespace) -> int:
    from hpc.dist import resolve_env

    if args.suffix is not None or args.id_column is not None:
        raise ValueError("--suffix and --id-column pick vote table columns; a store captioned "
                         "with --predictor or --vlm has no vote table")
    if args.vlm is not None:
        from galaxy_hpc.cli.caption_vlm import DEFAULT_BATCH_SIZE, run_caption_vlm
        from galaxy_hpc.models.vlm_captions import DEFAULT_PROMPT

        if args.prefix != "pred_":
            raise ValueError("--prefix names predicted fraction columns; --vlm adds none")
        args.prompt = DEFAULT_PROMPT if args.prompt is None else args.prompt
        args.batch_size = DEFAULT_BATCH_SIZE if args.batch_size is None else args.batch_size
        summary = run_caption_vlm(args)
    else:
        from galaxy_hpc.cli.caption_store import run_caption_store

        args.batch_size = 128 if args.batch_size is None else args.batch_size
        summary = run_caption_store(args)
    if resolve_env(cuda_available=False).rank != 0:
        return 0
    if args.json:
        print_json(summary)
    elif summary["already_complete"]:
        print(f"already complete: {summary['out']} holds the captioned store "
              f"({summary['checksum']}); nothing to do")
    else:
        print(f"captioned {summary['num_items']} galaxies of {summary['source']} with "
              f"{summary.get('vlm') or summary['predictor']} in {summary['seconds']:.1f} s on "
              f"{summary['num_ranks']} rank(s) -> {summary['out']} (column "
              f"{summary['column']!r})")
    return 0
