"""Measure StoreDataset throughput through StoreLoader (a torch DataLoader). Prints only.

    .venv/bin/python tests/data/measure_dataset_rate.py [--num-items 5000] [--size 128]

A uint8 store of synthetic galaxies (the generator of tests/hpc/store/measure_read_rate.py,
3 x size x size, default zarr zstd-1 spec, shard 256) is read for whole epochs with batch
64, num_workers 0 and 2, augmentation off and on. Each figure is the best of 2 epochs,
after a warm-up epoch that starts the forkserver; "epoch" includes starting the workers
(they start afresh every epoch), "steady" leaves out the time to the first batch.
Not a test: rates depend on the machine; the results go in the module docstring of
galaxy_hpc/data/dataset.py.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

from galaxy_hpc.data.augment import GalaxyAugment
from galaxy_hpc.data.dataset import StoreDataset
from galaxy_hpc.data.loader import StoreLoader
from hpc.store import StoreSpec, create_store, finalize_store

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "hpc" / "store"))
from measure_read_rate import galaxies


def epoch_rate(loader: StoreLoader) -> tuple[float, float]:
    start = time.perf_counter()
    first = None
    count = 0
    for batch in loader:
        count += len(batch["index"])
        if first is None:
            first, first_count = time.perf_counter(), count
    end = time.perf_counter()
    return count / (end - start), (count - first_count) / (end - first)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-items", type=int, default=5000)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()
    images = galaxies(args.num_items, args.size)
    print(f"{args.num_items} images 3x{args.size}x{args.size} uint8, batch {args.batch_size}, "
          f"{os.cpu_count()} cores, torch {torch.__version__} "
          f"({torch.get_num_threads()} threads in the main process), "
          f"load average {os.getloadavg()[0]:.1f} at the start")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "s.zarr"
        writer = create_store(path, StoreSpec(image_shape=images.shape[1:]),
                              num_items=len(images))
        for shard in writer.pending_shards():
            a, b = writer.shard_bounds(shard)
            writer.write_shard(shard, images[a:b], {})
        finalize_store(path)
        for num_workers in (0, 2):
            for augment in (None, GalaxyAugment()):
                ds = StoreDataset(path, seed=0, batch_size=args.batch_size, augment=augment)
                loader = StoreLoader(ds, num_workers=num_workers)
                epoch_rate(loader)  # warm-up: forkserver, zarrs, first reads
                rates = []
                for epoch in (1, 2):
                    loader.set_epoch(epoch)
                    rates.append(epoch_rate(loader))
                whole, steady = max(r[0] for r in rates), max(r[1] for r in rates)
                print(f"num_workers={num_workers} augment={'on ' if augment else 'off'}: "
                      f"{whole:7,.0f} items/s per epoch, {steady:7,.0f} items/s steady "
                      f"(load average {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
