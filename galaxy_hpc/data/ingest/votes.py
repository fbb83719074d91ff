"""Galaxy Zoo 2 votes joined to images: a GZ2-catalog or Kaggle table plus an image folder.

The table is read with `vote_table.read_vote_table` (CSV or FITS, either naming);
its 37 per-question fractions become the store columns `tNN_..._aNN_..._fraction`
(gz2.column_name), in Kaggle order, and a GalaxySD-style caption is made from them
with `captions.Captioner` (captions=false drops it). By default a GZ2 catalog's raw
`_fraction` columns are used (votes.suffix picks `debiased` etc.); Kaggle values are
converted to per-question fractions. When a GZ2 table has all 37 `_count` columns they
are written too, as int64 `tNN_..._aNN_..._count` columns (votes.counts=false drops
them): the DINOv2 regressor's Dirichlet-multinomial loss needs the counts, since a
fraction does not say how many volunteers it rests on.

The join: the image of id X is SOURCE / pattern.format(id=X). Records follow the
table's row order. A row whose image is missing is a `no_image` reject (or, with
unmatched_votes=ignore, only counted); a file that fits the pattern but whose id has
no row is a `no_vote_row` reject; a repeated id is a `duplicate_id` reject.
"""

from __future__ import annotations

import csv
import gzip
import re
from pathlib import Path

import numpy as np
from galaxy_hpc.data.captions import CaptionConfig, Captioner
from galaxy_hpc.data.gz2 import ANSWERS, column_name
from galaxy_hpc.data.ingest.config import IngestConfig
from galaxy_hpc.data.ingest.folder import walk_files
from galaxy_hpc.data.ingest.preprocess import ImageFileReader
from galaxy_hpc.data.ingest.records import Deduper, Listing, Reject
from galaxy_hpc.data.ingest.table import id_strings
from galaxy_hpc.data.vote_table import read_vote_table

FRACTION_COLUMNS = tuple(column_name(a, "fraction") for a in ANSWERS)
COUNT_COLUMNS = tuple(column_name(a, "count") for a in ANSWERS)


def is_kaggle(path: Path) -> bool:
    """Whether the table uses Kaggle naming (Class1.1 ...), from its header alone."""
    name = path.name.lower()
    if name.endswith((".csv", ".csv.gz")):
        opener = gzip.open if name.endswith(".gz") else open
        with opener(path, "rt", newline="") as handle:
            header = next(csv.reader(handle), [])
    else:
        from astropy.table import Table

        header = Table.read(path, format="fits", memmap=True).colnames
    return "class1.1" in {h.strip().lower() for h in header}


def pattern_regex(pattern: str) -> re.Pattern[str]:
    head, _, tail = pattern.partition("{id}")
    return re.compile(f"^{re.escape(head)}(?P<id>[^/]+?){re.escape(tail)}$")


def list_records(cfg: IngestConfig) -> Listing:
    opts = cfg.votes
    root = Path(cfg.source)
    if opts.table is None:
        raise ValueError("kind votes needs a vote table: --votes TABLE (votes.table)")
    if not root.exists():
        raise FileNotFoundError(f"{root}: no such folder (the images' folder is missing)")
    if not root.is_dir():
        raise ValueError(f"{root}: a file, not a folder of images")
    path = Path(opts.table)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such vote table")
    suffix = opts.suffix
    if suffix is None and not is_kaggle(path):
        suffix = "fraction"
    table = read_vote_table(path, suffix=suffix, id_column=opts.id_column)
    table_ids = id_strings(table.ids)
    files = set(walk_files(root, recursive="/" in opts.pattern))

    keep, ids, sources, rejects = [], [], [], []
    num_ignored = 0
    dedupe = Deduper()
    for row, record_id in enumerate(table_ids):
        where = f"{path}#row{row + 1}"
        duplicate = dedupe.check(record_id, where)
        if duplicate:
            rejects.append(duplicate)
            continue
        relative = opts.pattern.format(id=record_id)
        if relative not in files:
            if opts.unmatched_votes == "reject":
                rejects.append(Reject(str(root / relative), f"no_image: vote row {row + 1} "
                                      f"of {path} (id {record_id}) has no image", record_id))
            else:
                num_ignored += 1
            continue
        keep.append(row)
        ids.append(record_id)
        sources.append(str(root / relative))
    known = set(table_ids)
    regex = pattern_regex(opts.pattern)
    for name in sorted(files):
        match = regex.match(name)
        if match and match.group("id") not in known:
            rejects.append(Reject(str(root / name), f"no_vote_row: id {match.group('id')} "
                                  f"has no row in {path}", match.group("id")))
    if not ids and not rejects:
        raise ValueError(f"{path}: no vote rows")
    fractions = table.fractions[keep]
    with_counts = opts.counts and table.counts is not None
    listing = Listing(
        kind="votes", ids=ids, sources=sources, dtype="uint8", channels=3, rejects=rejects,
        inputs=[str(root), str(path)],
        notes={"votes_naming": table.naming, "votes_suffix": table.suffix,
               "vote_rows": len(table), "vote_rows_without_image_ignored": num_ignored,
               "vote_counts": bool(with_counts)},
    )
    for k, name in enumerate(FRACTION_COLUMNS):
        listing.column_types[name] = "float64"
        listing.columns[name] = np.ascontiguousarray(fractions[:, k])
    if with_counts:
        counts = table.counts[keep]
        for k, name in enumerate(COUNT_COLUMNS):
            listing.column_types[name] = "int64"
            listing.columns[name] = np.ascontiguousarray(counts[:, k])
    if cfg.captions:
        captioner = Captioner(CaptionConfig(survey=opts.survey, threshold=opts.threshold,
                                            odd_threshold=opts.odd_threshold))
        listing.column_types["caption"] = "str"
        listing.columns["caption"] = np.array(captioner.captions(fractions), dtype=object)
    return listing


Reader = ImageFileReader  # image files, one per row
