"""The ingest job's config: one typed dataclass, a section per source kind.

Paths are taken relative to the working directory of the command (as a shell would),
not to the YAML file. Only the section of the kind being ingested is read; the others
keep their defaults.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal


SOURCE_KINDS = ("folder", "jsonl", "fits", "npy", "hdf5", "votes")
FLUX_RULES = ("total", "surface_brightness")
_PREFER = re.compile(r"^(first|last|(max|min):.+)$")


@dataclass
class FolderOptions:
    """GalaxySD: a folder of JPEG/PNG (or TIFF) with same-named .txt captions."""

    # Folder of <name>.txt captions (GalaxySD's `caption_file`); None: beside the images.
    captions: str | None = None
    recursive: bool = False  # look in sub-folders too; ids are then relative paths
    # Class folders (Astro-Diffusion's spiral_galaxies/, nebulae/): each image's first
    # sub-folder becomes its `label` column; implies recursive. Images directly in the
    # source folder are then rejected (no_label).
    labels: bool = False
    # TIFF of float pixels (flux) makes a float store: folder.py says how.
    extensions: list[str] = field(default_factory=lambda: [".jpg", ".jpeg", ".png", ".tif",
                                                           ".tiff"])


@dataclass
class JsonlOptions:
    """Astro-Diffusion: a JSONL manifest of {"path", "caption"} lines."""

    path_key: str = "path"
    caption_key: str = "caption"
    label_key: str = "label"  # a `label` column when any line has one (manifest writes it)


@dataclass
class FitsOptions:
    """FITS cutouts: a folder, a glob or one file of .fits/.fit/.fts (optionally .gz)."""

    hdu: int | str | None = None  # index or EXTNAME; None: the first image HDU with data
    header_keys: list[str] = field(default_factory=list)  # kept as columns
    # Column type per header key, "float64" or "str"; keys not named here are inferred
    # from the first scanned file that has them (numbers and booleans -> float64).
    header_types: dict[str, str] = field(default_factory=dict)
    channels: int = 0  # 0: the most common band count among the scanned headers
    scan_files: int = 64  # headers read at listing time to infer channels and key types
    # One file per band (HSC's and Pan-STARRS's cutout services): the bands, in the
    # store's channel order; each object's files are found by band_pattern. Empty: one
    # file is one object.
    bands: list[str] = field(default_factory=list)
    # A file's name without its FITS ending, with {id} (the object) and {band} (one of
    # `bands`) in it, e.g. "{id}_{band}" (obj7_g.fits) or "cutout-HSC-{band}-{id}".
    band_pattern: str = "{id}_{band}"
    # One file holding a stack of cutouts ([n, y, x], or [n, bands, y, x]: fits_stack.py):
    # which axis of a 4-axis stack holds the bands, as npy.layout.
    layout: Literal["auto", "channels_first", "channels_last"] = "auto"

    def __post_init__(self) -> None:
        for key, kind in self.header_types.items():
            if kind not in ("float64", "str"):
                raise ValueError(f"fits.header_types.{key}: use float64 or str, got {kind!r}")
        if self.channels < 0 or self.scan_files < 1:
            raise ValueError("fits.channels must be >= 0 and fits.scan_files >= 1")
        if self.bands:
            if len(set(self.bands)) != len(self.bands) or not all(self.bands):
                raise ValueError(f"fits.bands must be distinct, non-empty names, got "
                                 f"{self.bands}")
            for part in ("{id}", "{band}"):
                if self.band_pattern.count(part) != 1:
                    raise ValueError(f"fits.band_pattern must hold {part} once, got "
                                     f"{self.band_pattern!r}")
            if self.channels and self.channels != len(self.bands):
                raise ValueError(f"fits.channels={self.channels} but fits.bands names "
                                 f"{len(self.bands)}: leave channels at 0")


@dataclass
class NpyOptions:
    """galaxyCGAN: an [n, C, H, W] NPY of images, an NPY of ids, a CSV property table."""

    ids: str | None = None  # NPY of n ids in image order; None: ids are "0", "1", ...
    table: str | None = None  # CSV of properties, joined on id_column
    id_column: str = "HSC_id"
    # Which row an id keeps when the table has several (HSC_id is a non-unique key):
    # first | last (file order) | max:<column> | min:<column> (NaN never wins; ties go
    # to the earlier row).
    prefer: str = "first"
    columns: list[str] | None = None  # table columns to keep; None: every numeric one
    rename: dict[str, str] = field(default_factory=dict)  # e.g. {photo_z: redshift}
    # Which axis holds the bands: channels_first [n, C, H, W] (galaxyCGAN's),
    # channels_last [n, H, W, C]; auto decides when the shape leaves no doubt (a band
    # axis of at most 16, smaller than both image axes) and stops otherwise. [n, H, W]
    # is one band either way.
    layout: Literal["auto", "channels_first", "channels_last"] = "auto"

    def __post_init__(self) -> None:
        if not _PREFER.match(self.prefer):
            raise ValueError(f"npy.prefer must be first, last, max:<column> or min:<column>, "
                             f"got {self.prefer!r}")


@dataclass
class Hdf5Options:
    """Galaxy10 and other HDF5 files of arrays: an image stack beside 1-D datasets."""

    images: str | None = None  # the image dataset; None: the file's only one of 3 or 4 axes
    layout: Literal["auto", "channels_first", "channels_last"] = "auto"  # as npy.layout
    ids: str | None = None  # dataset of one id per image; None: ids are "0", "1", ...
    # 1-D datasets of one value per image kept as columns (named by their last path
    # component); None: every numeric one. Named ones may be text.
    columns: list[str] | None = None
    rename: dict[str, str] = field(default_factory=dict)  # e.g. {z: redshift}
    # A kept column of integer class codes, and the name of each code: the store gets a
    # text `label` column (what the report's per-class grids read). Galaxy10's `ans`.
    label_column: str | None = None
    label_names: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.label_column is not None and not self.label_names:
            raise ValueError(f"hdf5.label_column={self.label_column!r} needs "
                             f"hdf5.label_names, the name of each class code in order")


@dataclass
class VotesOptions:
    """Galaxy Zoo 2: a GZ2-catalog or Kaggle vote table joined by id to image files."""

    table: str | None = None  # CSV or FITS vote table (required for kind votes)
    pattern: str = "{id}.jpg"  # image path relative to SOURCE, e.g. images_training_rev1/{id}.jpg
    id_column: str | None = None  # default: dr7objid/objid/id (GZ2) or GalaxyID (Kaggle)
    # GZ2 columns the fractions come from; None: the raw `fraction` columns (what
    # volunteers saw, which suits image captions); Kaggle tables have no choice.
    suffix: str | None = None
    # Write the 37 GZ2 `_count` columns (int64) when the table has them all: the DINOv2
    # regressor's Dirichlet-multinomial loss (model.loss auto) trains on them.
    counts: bool = True
    survey: str = "sdss"  # caption prefix
    threshold: float = 0.5
    odd_threshold: float = 0.5
    # A vote row whose image is missing: "reject" (listed) or "ignore" (counted only,
    # for catalogues much larger than the image folder).
    unmatched_votes: Literal["reject", "ignore"] = "reject"

    def __post_init__(self) -> None:
        if "{id}" not in self.pattern:
            raise ValueError(f"votes.pattern must contain {{id}}, got {self.pattern!r}")


@dataclass
class CatalogOptions:
    """A catalog of per-galaxy properties (redshift, stellar mass, magnitudes ...) joined
    on the record id, for any source kind: how a folder of one's own cutouts gets the
    columns a conditional model trains on (ingest/catalog.py)."""

    table: str | None = None  # CSV or FITS table; None: no catalog
    # The catalog's column holding the record ids: a folder's or FITS folder's file name
    # without its ending (relative path with folder.recursive), a manifest's path, an
    # array file's ids.
    id_column: str = "id"
    prefer: str = "first"  # row kept per id, as npy.prefer
    columns: list[str] | None = None  # columns to keep; None: every numeric one
    rename: dict[str, str] = field(default_factory=dict)  # e.g. {Z_BEST: redshift}

    def __post_init__(self) -> None:
        if not _PREFER.match(self.prefer):
            raise ValueError(f"catalog.prefer must be first, last, max:<column> or "
                             f"min:<column>, got {self.prefer!r}")


@dataclass
class IngestConfig:
    """Everything `galaxy-hpc ingest` does. Required: source and out."""

    # folder, .jsonl, .npy, .h5 of arrays, FITS folder/glob/file; for votes the image folder
    source: str
    out: str  # store path: X.zarr (zarr) or X.h5 (hdf5)
    # What SOURCE is; "auto" guesses from the path. (Not `kind`: that key names the
    # config's schema, `kind: ingest`.)
    source_kind: Literal["auto", "folder", "jsonl", "fits", "npy", "hdf5", "votes"] = "auto"
    # null: from the suffix of out (.h5/.hdf5: hdf5, .zarr: zarr), zarr without one;
    # a format that contradicts the suffix is an error (hpc.store.backend_for_path).
    format: Literal["zarr", "hdf5"] | None = None
    # Image compression; null: the backend's default for the dtype (zstd level 1 for uint8
    # zarr, none otherwise; hpc.store.spec.default_compression). "none" trades ~1.35x the
    # disk (JPEG sources) for ~1.8x the training read rate per core (hpc/store/README.md).
    # "jpeg-source" keeps each source JPEG file as it is (1.0x the folder's bytes against
    # 3.8x for zstd; reads decode JPEG again): zarr, folder/jsonl/votes sources whose files
    # are already size x size RGB JPEGs only; any other file stops the job (ingest/passthrough.py).
    compression: Literal["zstd", "gzip", "none", "jpeg-source"] | None = None
    size: int = 128  # output images are size x size
    shard_size: int = 256  # records per block handed to a rank, and items per store shard
    captions: bool = True  # False: no caption column, whatever the source has
    require_captions: bool = True  # with captions: a missing or empty one is a reject
    # Float images: "total" keeps the sum (total flux) of the cropped square; values are
    # flux per output pixel. "surface_brightness" keeps the mean (flux per source pixel).
    flux: Literal["total", "surface_brightness"] = "total"
    jpeg_draft: bool = True  # let libjpeg decode big JPEGs at 1/2, 1/4, 1/8 scale first
    # Float images with some NaN/inf pixels (none finite: always an all_nan reject): "keep"
    # them as they are, "zero" sets them to 0; both count them in the nonfinite_pixels
    # column and list the image in X.notes.csv. "reject" sets the image aside.
    nonfinite: Literal["keep", "zero", "reject"] = "keep"
    overwrite: bool = False  # replace an existing store (and its staging) at out
    folder: FolderOptions = field(default_factory=FolderOptions)
    jsonl: JsonlOptions = field(default_factory=JsonlOptions)
    fits: FitsOptions = field(default_factory=FitsOptions)
    npy: NpyOptions = field(default_factory=NpyOptions)
    hdf5: Hdf5Options = field(default_factory=Hdf5Options)
    votes: VotesOptions = field(default_factory=VotesOptions)
    catalog: CatalogOptions = field(default_factory=CatalogOptions)

    def __post_init__(self) -> None:
        from hpc.store import backend_for_path  # here: configs load without zarr/h5py

        if not self.source:
            raise ValueError("source is empty: give the folder, manifest or file to ingest")
        if not self.out:
            raise ValueError("out is empty: give the store path (e.g. out=galaxies.zarr)")
        if not 8 <= self.size <= 4096:
            raise ValueError(f"size must be in [8, 4096] pixels, got {self.size}")
        if self.shard_size < 1:
            raise ValueError(f"shard_size must be >= 1, got {self.shard_size}")
        self.format = backend_for_path(self.out, self.format)
