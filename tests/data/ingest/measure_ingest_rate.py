"""Ingest rate of a GalaxySD-style folder (128 px JPEG + .txt caption), 1 and 2 ranks.

    .venv/bin/python tests/data/ingest/measure_ingest_rate.py [--num-images 2000] [--repeats 3]

Rates are records per second inside run_ingest (listing, decoding, staging, compaction,
finalize; not interpreter start-up), best of the repeats, for each rank count.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from ingest_helpers import rgb
from PIL import Image

HERE = Path(__file__).resolve().parent
MPIEXEC = str(Path(sys.executable).parent / "mpiexec")


def make_folder(root: Path, num_images: int, size: int) -> None:
    root.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(num_images):
        shift = tuple(rng.normal(0, 2, 2) + (size - 1) / 2)
        image = rgb(size, size, i, centre=shift, sigma=float(rng.uniform(4, 16)))
        Image.fromarray(image).save(root / f"g{i:05d}.jpg", quality=90)
        (root / f"g{i:05d}.txt").write_text("sdss, smooth, in-between round galaxy")


def measure(folder: Path, out: Path, ranks: int, size: int, fmt: str) -> dict:
    """One ingest into a new store (kept out of the timing: no overwrite to do)."""
    cmd = [MPIEXEC, "-n", str(ranks), sys.executable, str(HERE / "ingest_worker.py"), "ingest",
           str(folder), "--out", str(out), "--size", str(size), "--format", fmt, "--json"]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=out.parent)
    if done.returncode != 0:
        raise SystemExit(done.stdout + done.stderr)
    return json.loads(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-images", type=int, default=2000)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "jpg"
        make_folder(folder, args.num_images, args.size)
        print(f"{args.num_images} JPEGs {args.size}x{args.size} + captions -> {args.size} px")
        print("| format | ranks | seconds | images/s |\n|---|---|---|---|")
        for fmt, ending in (("zarr", "zarr"), ("hdf5", "h5")):
            for ranks in (1, 2):
                runs = [measure(folder, Path(tmp) / f"{fmt}{ranks}-{k}.{ending}", ranks,
                                args.size, fmt) for k in range(args.repeats)]
                best = min(runs, key=lambda r: r["seconds"])
                print(f"| {fmt} | {ranks} | {best['seconds']:.2f} | {best['images_per_s']:,.0f} |")


if __name__ == "__main__":
    main()
