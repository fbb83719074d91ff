"""A catalog of per-galaxy properties joined on the record id, for any source kind.

A folder of one's own cutouts has pixels and names; the redshift and stellar mass a
conditional model trains on sit in a survey catalog (CSV or FITS) keyed by object id.
`catalog.table` joins it: each record takes the columns of the one row its id keeps
(table.py's rule, `catalog.prefer`), and a record whose id has no row is set aside as a
`no_catalog_row` reject before it is decoded. When no record id is in the catalog at
all, the ids and the catalog's id column do not match (file names with a prefix, an id
column of another survey): that stops the ingest with an example of each, since a store
of nothing but rejects helps nobody.
"""

from __future__ import annotations

import numpy as np

from galaxy_hpc.data.ingest.config import CatalogOptions
from galaxy_hpc.data.ingest.records import Listing
from galaxy_hpc.data.ingest.table import read_property_table

# Listing columns a catalog may not replace (the store's own, or the source's).
_OWN = ("id", "source", "crop_size")


def join_catalog(listing: Listing, opts: CatalogOptions) -> None:
    """Add the catalog's columns to `listing` and refuse the records it has no row for."""
    assert opts.table is not None
    table = read_property_table(opts.table, id_column=opts.id_column, prefer=opts.prefer,
                                columns=opts.columns, rename=opts.rename, section="catalog")
    taken = [n for n in table.values if n in _OWN or n in listing.column_types]
    if taken:
        raise ValueError(f"catalog.table {opts.table}: column(s) {', '.join(taken)} the store "
                         "already has from its source; keep others with catalog.columns or "
                         "rename them with catalog.rename")
    ids = [str(i) for i in listing.ids]
    found = np.array([i in table.chosen for i in ids], dtype=bool)
    if len(ids) and not found.any():
        some_ids = ", ".join(repr(i) for i in ids[:3])
        some_keys = ", ".join(repr(k) for k in list(table.chosen)[:3])
        raise ValueError(f"catalog.table {opts.table}: none of the {len(ids)} record ids "
                         f"({some_ids} ...) is in its column {opts.id_column!r} ({some_keys} "
                         "...); name the column with catalog.id_column, or make the ids match")
    rows = [i if ok else next(iter(table.chosen)) for i, ok in zip(ids, found, strict=True)]
    listing.column_types.update(table.column_types)
    listing.columns.update(table.take(rows))  # placeholders for refused records: never stored
    for index in np.flatnonzero(~found).tolist():
        if index not in listing.refused:
            listing.refused[index] = (f"no_catalog_row: id {ids[index]} has no row in "
                                      f"{opts.table} ({opts.id_column})")
    listing.inputs.append(opts.table)
    listing.notes["catalog"] = {
        "table": opts.table, "id_column": opts.id_column, "rows": table.num_rows,
        "rows_dropped": table.num_dropped, "records_without_a_row": int((~found).sum()),
        "rows_unused": len(set(table.chosen) - set(ids)),
        "one_row_per_id": f"prefer={table.prefer} on {opts.id_column}",
        "columns": sorted(table.column_types)}
