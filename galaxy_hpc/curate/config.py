"""Settings of `galaxy-hpc dedup` (kind `dedup`) and `galaxy-hpc select` (kind `select`):
what the flags and a config file fill in."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

TRANSFORMS = ("d4", "none")
INDEXES = ("flat", "ivf")
DEVICES = ("auto", "cpu", "cuda")
# Cosine above which two items are duplicates, by extractor, when `threshold` is not given.
# pixels: measured on 64 px cutouts of the Hubble Deep Field (docs/curate.md): distinct
# cutouts reach 0.43 at most, one-pixel shifts and JPEG copies 0.76 at least.
DEFAULT_THRESHOLDS = {"pixels": 0.6}
NETWORK_THRESHOLD = 0.95  # networks' embeddings (CLIP, DINOv2, Inception): a common choice


@dataclass
class DedupConfig:
    """Remove exact and near-duplicate galaxies from a store.

    Exact duplicates first (equal item digests, or equal image bytes), then embeddings of
    every image from an extractor (the built-in pixel fingerprint, a CLIP folder, or any
    the evaluation supports: DINOv2, Inception, a registered one), split over MPI ranks
    by shard and resumable, searched with FAISS (cosine); items above the threshold form
    groups, and each group keeps its lowest store index. Writes a clean store (or, with
    mark, every item with keep and duplicate_of columns), a CSV of the groups and an HTML
    page of their thumbnails.
    """

    store: str = ""  # STORE: the store to clean
    out: str = ""  # CLEAN: the store to write (the source is never modified)
    # pixels (built in), clip (a transformers CLIP folder as --weights), or a torch-fidelity
    # extractor name (inception-v3-compat, dinov2-vit-s-14, clip-vit-b-32, a registered one).
    extractor: str = "pixels"
    weights: str | None = None  # the extractor's local weights file or folder
    extractor_module: str | None = None  # imported first: registers its own extractors
    # Cosine similarity at or above which two items are duplicates; none: 0.6 for pixels,
    # 0.95 for networks.
    threshold: float | None = None
    # d4: each image is also compared flipped and turned by quarter turns (8 embeddings an
    # image: flipped copies are found whatever the extractor); none: as stored only.
    transforms: Literal["d4", "none"] = "d4"
    neighbours: int = 16  # nearest neighbours looked at per item and transform
    # flat: exact search (cost N x T x N x D); ivf: FAISS inverted lists over 4 sqrt(N)
    # k-means cells, nprobe of them searched per query (benchmarks/README.md: speed, recall).
    index: Literal["flat", "ivf"] = "flat"
    nprobe: int = 16  # ivf: cells searched per query
    mark: bool = False  # write every item with keep / duplicate_of columns instead
    # Where the CSV, the HTML page and the per-shard embeddings (resume) go; none:
    # <CLEAN without its ending>.dedup beside CLEAN.
    report: str | None = None
    batch_size: int = 64  # images per extractor batch
    stretch: str | None = None  # float stores: a stretch JSON (default: from the store)
    rgb_bands: list[int] | None = None  # float stores with 3+ bands: shown as R, G, B
    device: Literal["auto", "cpu", "cuda"] = "auto"
    max_groups_shown: int = 200  # the HTML page shows the largest groups up to this many
    # Replace whatever is at CLEAN. Without it, a path that holds something this dedup's
    # report folder did not start (another store, a file) is refused; one it started is
    # resumed, or written again when the plan changed.
    overwrite: bool = False

    def __post_init__(self) -> None:
        for name in ("neighbours", "nprobe", "batch_size", "max_groups_shown"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"DedupConfig.{name} must be a positive integer, got {value!r}")
        if self.threshold is not None and not -1.0 <= self.threshold <= 1.0:
            raise ValueError(f"threshold is a cosine similarity in [-1, 1], got {self.threshold}")
        if self.transforms not in TRANSFORMS:
            raise ValueError(f"transforms must be one of {', '.join(TRANSFORMS)}, "
                             f"got {self.transforms!r}")
        if self.index not in INDEXES:
            raise ValueError(f"index must be one of {', '.join(INDEXES)}, got {self.index!r}")
        if self.device not in DEVICES:
            raise ValueError(f"device must be one of {', '.join(DEVICES)}, got {self.device!r}")
        if self.rgb_bands is not None and len(self.rgb_bands) != 3:
            raise ValueError(f"rgb_bands needs three band indices (R, G, B), got {self.rgb_bands}")

    def cosine_threshold(self) -> float:
        if self.threshold is not None:
            return self.threshold
        return DEFAULT_THRESHOLDS.get(self.extractor, NETWORK_THRESHOLD)


@dataclass
class SelectConfig:
    """Write the rows of a store where a condition on its columns holds to a new store
    (every column kept; the source is never modified). The condition reads like Python
    but only comparisons (== != < <= > >=, chains), `in [...]`, and/or/not, arithmetic
    and finite/isnan/abs/log10 of columns are allowed; a comparison with NaN is false.
    Examples: "finite(redshift)", "0.02 < redshift < 0.1 and label in ['merging']"."""

    store: str = ""  # STORE: the store to select from
    where: str = ""  # the condition a row must meet, e.g. "finite(redshift)"
    out: str = ""  # the new store (X.zarr, or X.h5 for HDF5)
    overwrite: bool = False  # replace a store at out made from other inputs or another filter
