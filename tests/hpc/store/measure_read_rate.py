"""Measure store write/read rates against a folder of JPEGs read with PIL. Prints only.

    .venv/bin/python tests/hpc/store/measure_read_rate.py [--num-items 5000] [--size 128]

Images are synthetic galaxies (Sersic profile, random shape and colour, sky + Gaussian
noise, 3 x size x size uint8), which compress like survey cutouts: mostly noisy sky.
Each rate is the best of three passes over the whole store in shard-sized slices,
through `Store.read_images`, with the zarrs pipeline on and off, on all cores and on one.
Not a test: rates depend on the machine; the results are recorded in hpc/store/README.md.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import zarr

from hpc.store import StoreSpec, create_store, finalize_store, open_store
from hpc.store.zarr_backend import ZARRS_ENV


def galaxies(count: int, size: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] - (size - 1) / 2
    out = np.empty((count, 3, size, size), dtype=np.uint8)
    for index in range(count):
        q, theta = rng.uniform(0.3, 1), rng.uniform(0, np.pi)
        r_e, n = rng.uniform(0.03, 0.12) * size, rng.choice([0.5, 1, 2, 4])
        x = np.cos(theta) * xx + np.sin(theta) * yy
        y = (-np.sin(theta) * xx + np.cos(theta) * yy) / q
        profile = np.exp(-(2 * n - 1 / 3) * ((np.hypot(x, y) / r_e) ** (1 / n) - 1))
        image = profile / profile.max() * rng.uniform(100, 250)
        colour = rng.uniform(0.6, 1.0, (3, 1, 1))
        noisy = image[None] * colour + 12 + rng.normal(0, 4, (3, size, size))
        out[index] = np.clip(noisy, 0, 255).astype(np.uint8)
    return out


def best_rate(function, count: int, repeats: int = 3) -> float:
    best = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        best = max(best, count / (time.perf_counter() - start))
    return best


def build(path: Path, spec: StoreSpec, images: np.ndarray) -> float:
    writer = create_store(path, spec, num_items=len(images), overwrite=True)
    start = time.perf_counter()
    for shard in writer.pending_shards():
        a, b = writer.shard_bounds(shard)
        writer.write_shard(shard, images[a:b], {})
    rate = len(images) / (time.perf_counter() - start)
    finalize_store(path)
    return rate


def read_rate(path: Path) -> tuple[float, float]:
    store = open_store(path)
    size = store.spec.shard_size

    def sequential() -> None:
        for start in range(0, len(store), size):
            store.read_images(start, min(start + size, len(store)))

    rate = best_rate(sequential, len(store))
    picks = np.random.default_rng(1).integers(0, len(store), 300)
    start = time.perf_counter()
    for index in picks:
        store.read_images(int(index), int(index) + 1)
    return rate, (time.perf_counter() - start) / len(picks) * 1e3


def jpeg_rate(images: np.ndarray, folder: Path) -> float:
    from PIL import Image

    folder.mkdir()
    for index, image in enumerate(images):
        Image.fromarray(image.transpose(1, 2, 0)).save(folder / f"{index:05d}.jpg", quality=95)
    files = sorted(folder.iterdir())

    def read_all() -> None:
        for name in files:
            with Image.open(name) as handle:
                np.asarray(handle.convert("RGB"))

    return best_rate(read_all, len(files))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-items", type=int, default=5000)
    parser.add_argument("--size", type=int, default=128)
    args = parser.parse_args()
    images = galaxies(args.num_items, args.size)
    print(f"{args.num_items} images 3x{args.size}x{args.size} uint8, {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        jpeg = jpeg_rate(images[:1000], root / "jpeg")
        print(f"{'JPEG folder, PIL (q95, 1,000 files)':44s} read {jpeg:8,.0f} img/s")
        for backend, name in (("zarr", "s.zarr"), ("hdf5", "s.h5")):
            spec = StoreSpec(image_shape=images.shape[1:], backend=backend)
            os.environ[ZARRS_ENV] = "1"
            folder = root / backend
            folder.mkdir()
            write = build(folder / name, spec, images)
            size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
            print(
                f"{backend}, {spec.compression} (default spec): write {write:,.0f} img/s, "
                f"{size / images.nbytes:.2f} of raw size"
            )
            runs = [("1", None), ("1", 1), ("0", None)] if backend == "zarr" else [("1", None)]
            for zarrs_on, threads in runs:
                os.environ[ZARRS_ENV] = zarrs_on
                with zarr.config.set({"threading.max_workers": threads}):
                    rate, one_ms = read_rate(folder / name)
                label = f"  {backend}"
                if backend == "zarr":
                    label += f", zarrs {'on' if zarrs_on == '1' else 'off'}"
                    label += f", {'all cores' if threads is None else '1 thread'}"
                print(
                    f"{label:44s} read {rate:8,.0f} img/s ({rate / jpeg:4.1f}x JPEG), "
                    f"one image {one_ms:.2f} ms"
                )


if __name__ == "__main__":
    main()
