"""`galaxy-hpc report RUN_DIR`: an HTML page (PNGs beside it) from a run folder's evaluations."""

from __future__ import annotations

import argparse
import sys

from galaxy_hpc.cli.batch import add_command, print_result


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = add_command(
        subparsers, "report", run=run, distributed=False,
        help="HTML report (image grids, metrics, histograms, provenance) of a run",
        description="Read the results `galaxy-hpc evaluate ... --out RUN_DIR` wrote and write "
        "RUN_DIR/report/index.html with PNGs beside it; it opens from the file system. A "
        "report covers one generated store: when RUN_DIR holds results of several, that of "
        "the newest result (or --generated), and it says which results it left out.")
    parser.add_argument("run_dir", metavar="RUN_DIR")
    parser.add_argument("--per-class", type=int, default=8,
                        help="galaxies shown per class and store (default 8)")
    parser.add_argument("--generated", metavar="STORE",
                        help="report on the results of this generated store (path or checksum)")
    parser.add_argument("--baseline", metavar="BASE_DIR",
                        help="another run folder (e.g. the same model untrained): its FID, "
                        "conditioning figures and galaxies are shown beside RUN_DIR's")
    parser.add_argument("--label", default="generated",
                        help="what RUN_DIR's catalog is called on the page (default: generated)")
    parser.add_argument("--baseline-label", default="baseline",
                        help="what BASE_DIR's catalog is called (default: baseline)")


def run(args: argparse.Namespace) -> int:
    from galaxy_hpc.evaluate.report import build_report

    if args.per_class < 1:
        raise ValueError(f"--per-class must be >= 1, got {args.per_class}")
    result = build_report(args.run_dir, per_class=args.per_class, generated=args.generated,
                          baseline=args.baseline, label=args.label,
                          baseline_label=args.baseline_label)
    print_result(args, result)
    for note in result.notes if args.json else ():  # a mixed folder's warning, where a
        if note.startswith("warning:"):  # person sees it
            print(f"galaxy-hpc report: {note}", file=sys.stderr)
    return 0
