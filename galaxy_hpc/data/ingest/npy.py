"""galaxyCGAN: images in one NPY [n, C, H, W], ids in another NPY, properties in a CSV.

The image array is memory-mapped; each rank reads only the rows of its blocks. The
nth image has the nth id. Stacks saved [n, H, W, C] or [n, H, W] are read too
(`npy.layout`, arrays.py says how `auto` decides). float arrays stay float32 flux with
C channels; uint8 arrays with 1, 3 or 4 channels become RGB like image files. With a
table, each image takes the properties of the one row its id keeps (see table.py for
the rule); an id with no row is a `no_table_row` reject, and table rows no image asks
for are only counted. The source of record i is `IMAGES.npy[i]`.
"""

from __future__ import annotations

import numpy as np

from galaxy_hpc.data.ingest.arrays import (bands_first, check_uint8_bands, is_uint8,
                                          preprocess_array, stack_layout)
from galaxy_hpc.data.ingest.config import IngestConfig
from galaxy_hpc.data.ingest.records import Decoded, Listing, Reject, keep_rows
from galaxy_hpc.data.ingest.table import id_strings, read_property_table


def open_images(path: str) -> np.ndarray:
    try:
        images = np.load(path, mmap_mode="r", allow_pickle=False)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such NPY file") from None
    except (OSError, ValueError) as error:
        raise ValueError(f"{path}: cannot read as an NPY array ({error})") from None
    if images.dtype.kind not in "uif":
        raise ValueError(f"{path}: images of dtype {images.dtype} are not numbers")
    return images


def list_records(cfg: IngestConfig) -> Listing:
    opts = cfg.npy
    images = open_images(cfg.source)
    layout, channels = stack_layout(images.shape, opts.layout, cfg.source, "npy.layout")
    check_uint8_bands(images.dtype, channels, cfg.source)
    count = images.shape[0]
    if opts.ids:
        raw_ids = np.load(opts.ids, allow_pickle=False)
        if raw_ids.ndim != 1 or len(raw_ids) != count:
            raise ValueError(f"{opts.ids}: {raw_ids.shape} ids for {count} images in "
                             f"{cfg.source}; need one id per image, in image order")
        all_ids = id_strings(raw_ids)
    else:
        all_ids = [str(i) for i in range(count)]
    table = None
    if opts.table:
        table = read_property_table(opts.table, id_column=opts.id_column, prefer=opts.prefer,
                                    columns=opts.columns, rename=opts.rename)

    def refuse(row: int, record_id: str, source: str) -> Reject | None:
        if table is None or record_id in table.chosen:
            return None
        return Reject(source, f"no_table_row: id {record_id} has no row in {opts.table} "
                              f"({opts.id_column})", record_id)

    rows, kept_ids, sources, rejects = keep_rows(all_ids, cfg.source, refuse)
    uint8 = is_uint8(images.dtype)
    notes = {"image_dtype_in": str(images.dtype), "image_shape_in": list(images.shape[1:]),
             "layout": layout}
    listing = Listing(kind="npy", ids=kept_ids, sources=sources,
                      dtype="uint8" if uint8 else "float32", channels=3 if uint8 else channels,
                      rejects=rejects, notes=notes, payload={"rows": rows, "layout": layout},
                      inputs=[cfg.source] + [p for p in (opts.ids, opts.table) if p])
    if table is not None:
        listing.column_types.update(table.column_types)
        listing.columns.update(table.take(kept_ids))
        notes.update({
            "table_rows": table.num_rows,
            "table_rows_dropped": table.num_dropped,
            "table_rows_unused": len(set(table.chosen) - set(kept_ids)),
            "one_row_per_id": f"prefer={table.prefer} on {opts.id_column}",
        })
    if not uint8:
        notes["flux"] = cfg.flux
    return listing


class Reader:
    def __init__(self, cfg: IngestConfig, listing: Listing) -> None:
        self.cfg = cfg
        self.listing = listing
        self._images: np.ndarray | None = None

    def decode(self, index: int) -> Decoded:
        if self._images is None:
            self._images = open_images(self.cfg.source)
        payload = self.listing.payload
        array = bands_first(np.asarray(self._images[payload["rows"][index]]), payload["layout"])
        image, side = preprocess_array(array, uint8=self.listing.dtype == "uint8",
                                       channels=self.listing.channels, size=self.cfg.size,
                                       flux=self.cfg.flux)
        return Decoded(image, side)
