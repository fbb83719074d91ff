"""FITS cutouts: a folder, a glob or one file of .fits/.fit/.fts (optionally gzipped,
.gz, or fpack'd, .fz: astropy decompresses both).

Each file gives one image: the HDU named by `hdu`, else the first image HDU with data.
2-D data is one channel, 3-D (bands, y, x) is one channel per band; values are float
flux as astropy returns them (BSCALE/BZERO applied) and stay float32 in the store.
Every image of a store has the same band count: `channels`, or by default the most
common count among the headers of the first `scan_files` files (ties go to the count
seen first); a file with another count is a `band_count` reject.

Header keys become columns: looked up in the image HDU's header, then the primary
header. A key's type is `header_types[key]`, else inferred from the first scanned file
that has it: numbers and booleans -> float64 (T/F -> 1.0/0.0), anything else -> str.
A record without the key (or with a value that is not a number, for a float64 key)
gets NaN or "" and is counted in the summary's `missing_header_values`.

Cutout services that write one file per band (HSC's, Pan-STARRS's) are read with
`fits.bands`: the files whose names match `fits.band_pattern` ({id} and {band}) are
grouped by id, and each object is one record whose channels are its bands' images in
the order of `bands` (each 2-D, all of one shape, else a `wrong_shape` reject); an
object missing a band is a `missing_band` reject, a file the pattern does not match a
`not_a_band_file` one. Its header keys come from its first band's file; its source is
its files' paths joined by BAND_SEPARATOR.
"""

from __future__ import annotations

import glob
import re
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits

from galaxy_hpc.data.file_names import FITS_ENDINGS, strip_ending
from galaxy_hpc.data.ingest.config import IngestConfig
from galaxy_hpc.data.ingest.fits_stack import list_stack, stack_shape
from galaxy_hpc.data.ingest.preprocess import float_image
from galaxy_hpc.data.ingest.records import (
    DECODE_ERRORS,
    Decoded,
    Deduper,
    Listing,
    Reject,
    RejectError,
    safe_column,
)

BAND_SEPARATOR = ";"  # between the band files of one object, in its source


def fits_files(source: str) -> list[str]:
    if any(char in source for char in "*?["):
        found = [p for p in glob.glob(source, recursive=True) if not Path(p).is_dir()]
    elif Path(source).is_dir():
        found = [str(p) for p in Path(source).iterdir() if not p.is_dir()]
    elif Path(source).is_file():
        return [source]
    else:
        raise ValueError(f"{source}: no such FITS file, folder or glob")
    return sorted(p for p in found if p.lower().endswith(FITS_ENDINGS))


def fits_id(path: str) -> str:
    """The file name without its FITS ending: `a.fits.gz` -> `a`."""
    return strip_ending(path, FITS_ENDINGS)


def image_hdu(hdul: fits.HDUList, wanted: int | str | None) -> Any:
    """The HDU to read; RejectError when the file has no such image HDU."""
    if wanted is not None:
        try:
            hdu = hdul[wanted]
        except (KeyError, IndexError):
            raise RejectError("no_image_hdu", f"no HDU {wanted!r}") from None
        if not getattr(hdu, "is_image", False):
            raise RejectError("no_image_hdu", f"HDU {wanted!r} is not an image")
        return hdu
    for hdu in hdul:
        header = hdu.header
        if getattr(hdu, "is_image", False) and header.get("NAXIS", 0) >= 1 and all(
                header.get(f"NAXIS{k}", 0) > 0 for k in range(1, header["NAXIS"] + 1)):
            return hdu
    raise RejectError("no_image_hdu", "no image HDU with data")


def header_value(hdul: fits.HDUList, hdu: Any, key: str) -> Any:
    for header in (hdu.header, hdul[0].header):
        if key in header and not isinstance(header[key], fits.card.Undefined):
            return header[key]
    return None


def _band_count(header: Any) -> int | None:
    naxis = header.get("NAXIS", 0)
    return 1 if naxis == 2 else header.get("NAXIS3") if naxis == 3 else None


def _scan(files: list[str], cfg: IngestConfig) -> tuple[int | None, dict[str, str]]:
    """Band count and header key types from the headers of the first scan_files files."""
    counts: Counter[int] = Counter()
    types = dict(cfg.fits.header_types)
    for path in files[: cfg.fits.scan_files]:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                with fits.open(path, lazy_load_hdus=True) as hdul:
                    hdu = image_hdu(hdul, cfg.fits.hdu)
                    bands = _band_count(hdu.header)
                    if bands:
                        counts[bands] += 1
                    for key in cfg.fits.header_keys:
                        value = header_value(hdul, hdu, key) if key not in types else None
                        if value is not None:
                            types[key] = "float64" if isinstance(value, (bool, int, float)) \
                                else "str"
        except (*DECODE_ERRORS, RejectError):
            continue  # decoding it later rejects it with the reason
    top = max(counts.values(), default=0)
    common = next((bands for bands in counts if counts[bands] == top), None)  # first seen
    return common, {key: types.get(key, "str") for key in cfg.fits.header_keys}


def band_regex(pattern: str, bands: list[str]) -> re.Pattern[str]:
    """The file-id pattern with {id} any text and {band} one of `bands`, whole-name."""
    escaped = re.escape(pattern)
    alternatives = "|".join(re.escape(b) for b in sorted(bands, key=len, reverse=True))
    escaped = escaped.replace(re.escape("{id}"), "(?P<id>.+?)")
    escaped = escaped.replace(re.escape("{band}"), f"(?P<band>{alternatives})")
    return re.compile(f"^{escaped}$")


def group_bands(files: list[str], cfg: IngestConfig) -> tuple[list[str], list[list[str]],
                                                                 list[Reject]]:
    """(ids, each id's files in band order, rejects) of one-file-per-band cutouts."""
    bands = cfg.fits.bands
    regex = band_regex(cfg.fits.band_pattern, bands)
    found: dict[str, dict[str, str]] = {}
    rejects = []
    for path in files:
        match = regex.match(fits_id(path))
        if match is None:
            rejects.append(Reject(path, f"not_a_band_file: {Path(path).name} does not match "
                                        f"fits.band_pattern {cfg.fits.band_pattern!r} for "
                                        f"bands {', '.join(bands)}"))
            continue
        record_id, band = match["id"], match["band"]
        per_band = found.setdefault(record_id, {})
        if band in per_band:
            rejects.append(Reject(path, f"duplicate_id: band {band} of id {record_id!r} was "
                                        f"already taken by {per_band[band]}", record_id))
            continue
        per_band[band] = path
    ids, groups = [], []
    for record_id, per_band in found.items():
        missing = [b for b in bands if b not in per_band]
        if missing:
            rejects.append(Reject(BAND_SEPARATOR.join(per_band.values()),
                                  f"missing_band: id {record_id!r} has no file for band(s) "
                                  f"{', '.join(missing)}", record_id))
            continue
        ids.append(record_id)
        groups.append([per_band[b] for b in bands])
    return ids, groups, rejects


def list_records(cfg: IngestConfig) -> Listing:
    files = fits_files(cfg.source)
    if not files:
        raise ValueError(f"{cfg.source}: no FITS files found ({', '.join(FITS_ENDINGS)})")
    stack = stack_shape(files[0], cfg) if len(files) == 1 and not cfg.fits.bands else None
    if stack is not None:
        return list_stack(cfg, files[0], *stack)
    ids, sources, rejects = [], [], []
    if cfg.fits.bands:
        ids, groups, rejects = group_bands(files, cfg)
        if not ids:
            raise ValueError(f"{cfg.source}: no object has a file for every band "
                             f"({', '.join(cfg.fits.bands)}) named as fits.band_pattern "
                             f"{cfg.fits.band_pattern!r} says; e.g. {Path(files[0]).name}")
        sources = [BAND_SEPARATOR.join(group) for group in groups]
        _, key_types = _scan([group[0] for group in groups], cfg)
        channels = len(cfg.fits.bands)
    else:
        dedupe = Deduper()
        for path in files:
            duplicate = dedupe.check(fits_id(path), path)
            if duplicate:
                rejects.append(duplicate)
            else:
                ids.append(fits_id(path))
                sources.append(path)
        channels, key_types = _scan(sources, cfg)
        channels = cfg.fits.channels or channels
    if not channels:
        which = "" if cfg.fits.hdu is None else f" {cfg.fits.hdu!r}"
        raise ValueError(f"{cfg.source}: none of the first {cfg.fits.scan_files} FITS files "
                         f"has a readable image HDU{which}; check the files or --hdu")
    columns = {safe_column(key, "fits.header_keys"): kind for key, kind in key_types.items()}
    return Listing(
        kind="fits", ids=ids, sources=sources, dtype="float32", channels=int(channels),
        column_types=columns, rejects=rejects, inputs=[cfg.source],
        notes={"channels_rule": f"one file per band: {', '.join(cfg.fits.bands)}"
               if cfg.fits.bands else "fits.channels" if cfg.fits.channels else
               f"most common band count in the first {cfg.fits.scan_files} headers",
               "header_key_types": key_types, "flux": cfg.flux},
        payload=list(key_types.items()),
    )


class Reader:
    def __init__(self, cfg: IngestConfig, listing: Listing) -> None:
        self.cfg = cfg
        self.listing = listing
        self.keys = [(key, safe_column(key, "fits.header_keys"), kind)
                     for key, kind in listing.payload]

    def _read(self, path: str) -> tuple[Any, dict[str, Any]]:
        """The image HDU's data and the header keys of one file."""
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                with fits.open(path, memmap=False) as hdul:
                    hdu = image_hdu(hdul, self.cfg.fits.hdu)
                    data = hdu.data
                    raw = {key: header_value(hdul, hdu, key) for key, _, _ in self.keys}
            except DECODE_ERRORS as error:
                if any("truncated" in str(w.message) for w in caught):
                    raise RejectError("truncated", f"{type(error).__name__}: {error}") from None
                raise
        if data is None:
            raise RejectError("no_image_hdu", f"the image HDU of {path} holds no data")
        return data, raw

    def _bands(self, paths: list[str]) -> tuple[np.ndarray, dict[str, Any]]:
        """One object's band files stacked in band order; its first file's header keys."""
        planes, raw = [], {}
        for band, path in zip(self.cfg.fits.bands, paths, strict=True):
            data, keys = self._read(path)
            if not planes:
                raw = keys  # header keys: the first band's file
            data = np.asarray(data)
            if data.ndim == 3 and data.shape[0] == 1:
                data = data[0]
            if data.ndim != 2:
                raise RejectError("wrong_shape", f"band {band} ({Path(path).name}) has shape "
                                                 f"{data.shape}: one 2-D image a band file")
            if planes and data.shape != planes[0].shape:
                raise RejectError("wrong_shape", f"band {band} ({Path(path).name}) is "
                                                 f"{data.shape}, band {self.cfg.fits.bands[0]} "
                                                 f"{planes[0].shape}")
            planes.append(data)
        return np.stack(planes), raw

    def decode(self, index: int) -> Decoded:
        source = self.listing.sources[index]
        if self.cfg.fits.bands:
            data, raw = self._bands(source.split(BAND_SEPARATOR))
        else:
            data, raw = self._read(source)
        image, side = float_image(data, self.cfg.size, channels=self.listing.channels,
                                  flux=self.cfg.flux)
        columns, missing = {}, []
        for key, name, kind in self.keys:
            columns[name], ok = _typed(raw[key], kind)
            if not ok:
                missing.append(name)
        return Decoded(image, side, columns, tuple(missing))


def _typed(value: Any, kind: str) -> tuple[Any, bool]:
    if kind == "str":
        return ("", False) if value is None else (str(value).replace("\x00", ""), True)
    if isinstance(value, (bool, int, float)):
        return float(value), True
    try:
        return float(str(value)), True
    except (TypeError, ValueError):
        return float("nan"), False
