"""Small real inputs for the ingest tests: galaxies drawn with numpy, saved with PIL/astropy."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
from astropy.io import fits
from PIL import Image

from galaxy_hpc.data.ingest import (
    IngestConfig,
    read_rejects_csv,
    rejects_path,
    run_ingest,
)
from hpc.config import from_dict
from hpc.store import open_store

BACKENDS = {"zarr": "store.zarr", "hdf5": "store.h5"}


def blob(height: int, width: int, *, centre: tuple[float, float] | None = None,
         sigma: float = 4.0, flux: float = 1000.0) -> np.ndarray:
    """A round Gaussian galaxy of total `flux` at `centre` (y, x; default the middle)."""
    cy, cx = centre if centre is not None else ((height - 1) / 2, (width - 1) / 2)
    y, x = np.mgrid[:height, :width]
    g = np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / (2 * sigma**2))
    return flux * g / g.sum()


def rgb(height: int, width: int, seed: int, **kwargs) -> np.ndarray:
    """An (H, W, 3) uint8 galaxy, a little different per seed."""
    rng = np.random.default_rng(seed)
    g = blob(height, width, **kwargs)
    g = g / g.max()
    colour = rng.uniform(120, 255, size=3)
    return np.clip(g[..., None] * colour + rng.normal(12, 3, (height, width, 3)), 0,
                   255).astype(np.uint8)


def write_image(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, quality=92) if path.suffix == ".jpg" else \
        Image.fromarray(array).save(path)
    return path


def galaxysd_folder(root: Path, n: int, *, size: int = 48, captions: Path | None = None,
                    ext: str = ".jpg") -> list[str]:
    """n images g000.jpg ... with captions in `captions` (default: beside them)."""
    ids = []
    for i in range(n):
        record_id = f"g{i:03d}"
        write_image(root / f"{record_id}{ext}", rgb(size, size + 8, i))
        text_dir = captions or root
        text_dir.mkdir(parents=True, exist_ok=True)
        (text_dir / f"{record_id}.txt").write_text(f"sdss, galaxy number {i}\n")
        ids.append(record_id)
    return ids


def truncate(path: Path, fraction: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)])


def write_fits(path: Path, data: np.ndarray | None, header: dict | None = None,
               extension: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    hdr = fits.Header(header or {})
    if extension:
        hdus = [fits.PrimaryHDU(header=hdr), fits.ImageHDU(data, name="SCI")]
    else:
        hdus = [fits.PrimaryHDU(data, header=hdr)]
    fits.HDUList(hdus).writeto(path, overwrite=True)
    return path


def write_csv(path: Path, header: list[str], rows: list[list]) -> Path:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def write_jsonl(path: Path, records: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n"
                            for r in records))
    return path


def ingest(tmp_path: Path, source, *, backend: str = "zarr", name: str | None = None,
           **options):
    """Run a whole ingest in this process; returns (summary, store, rejects). Options
    are config keys, sections as dicts: ingest(tmp, src, npy={"prefer": "last"})."""
    out = tmp_path / (name or BACKENDS[backend])
    cfg = from_dict(IngestConfig, {"source": str(source), "out": str(out), "format": backend,
                                   **options})
    summary = run_ingest(cfg, progress=False)
    rejected = rejects_path(out)  # written only when something was rejected
    return summary, open_store(out), read_rejects_csv(rejected) if rejected.exists() else []


def reasons(rejects) -> dict[str, str]:
    """{source file name: reason category} of a rejects list."""
    return {Path(r.source).name: r.category for r in rejects}


def noisy_fits_folder(root: Path, n: int, shape: tuple[int, int, int] = (1, 32, 32)) -> None:
    """n cutouts obj0.fits ... of a Gaussian galaxy plus a little noise."""
    for i in range(n):
        rng = np.random.default_rng(i)
        data = np.stack([blob(*shape[1:])] * shape[0]) + rng.normal(0, 0.01, shape)
        write_fits(root / f"obj{i}.fits", data.astype(np.float32), {"EXPTIME": 53.9})
