"""Data-layer benchmark: ingest rate, and training read rate against the seeds' JPEG folder.

    .venv/bin/python benchmarks/bench_data.py [--num-images 10000] [--size 128] [--check]

On the same images, in one run:
1. a GalaxySD-style folder: N JPEGs (quality 90) of S x S with same-named .txt
   captions, made from synthetic galaxies (each drawn galaxy appears in its 8
   dihedral orientations with fresh sky noise, so all N files differ);
2. ingest of that folder into a zarr store with 1 rank and with 2 ranks
   (mpiexec): images/s from the command's own summary (interpreter start-up
   excluded); target: 2 ranks >= 1.7x one rank;
3. reading for training on one core: the folder the seeds' way (PIL open,
   convert to RGB, float tensor in [-1, 1], caption read) against the store
   through StoreDataset/StoreLoader (same output: float tensor + caption;
   no augmentation, batch 64, no workers), for the default zstd-1 store and for
   an uncompressed one (`--compression none`), best of interleaved rounds;
   target: store >= 5x the folder.

Figures are printed; --check exits 1 when a target is missed. Machine load
matters (both cores are used by the 2-rank ingest): run it on an idle machine.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

BIN = Path(sys.executable).parent


def make_folder(folder: Path, num_images: int, size: int, seed: int = 0) -> float:
    """The seeds' layout: folder/NNNNN.jpg + folder/NNNNN.txt. Returns seconds."""
    from PIL import Image

    from galaxy_hpc.data.captions import CaptionConfig, Captioner
    from galaxy_hpc.data.synth import VOTE_COLUMNS, draw_galaxies
    from galaxy_hpc.data.synth_config import SynthConfig

    start = time.perf_counter()
    folder.mkdir(parents=True)
    num_drawn = -(-num_images // 8)
    images, columns = draw_galaxies(SynthConfig(size=size, output="uint8"), seed=seed, start=0,
                                    count=num_drawn)
    votes = np.stack([columns[name] for name in VOTE_COLUMNS], axis=1)
    captions = Captioner(CaptionConfig()).captions(votes)
    rng = np.random.default_rng(seed)
    for index in range(num_images):
        galaxy, variant = divmod(index, 8)
        image = np.rot90(images[galaxy].transpose(1, 2, 0), k=variant % 4)
        if variant >= 4:
            image = image[:, ::-1]
        noisy = np.clip(image + rng.normal(0, 3, image.shape), 0, 255).astype(np.uint8)
        Image.fromarray(noisy).save(folder / f"{index:05d}.jpg", quality=90)
        (folder / f"{index:05d}.txt").write_text(captions[galaxy])
    return time.perf_counter() - start


def ingest(folder: Path, out: Path, ranks: int, size: int, extra: list[str] = ()) -> dict:
    command = [str(BIN / "galaxy-hpc"), "ingest", str(folder), "--out", str(out),
               "--size", str(size), "--json", *extra]
    if ranks > 1:
        command = [str(BIN / "mpiexec"), "-n", str(ranks), *command]
    done = subprocess.run(command, capture_output=True, text=True, cwd=out.parent)
    if done.returncode != 0:
        raise SystemExit(f"ingest with {ranks} rank(s) failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def read_folder_like_the_seeds(folder: Path, limit: int) -> float:
    """PIL decode + float tensor in [-1, 1] + caption, one file at a time. Returns items/s."""
    import torch
    from PIL import Image

    paths = sorted(folder.glob("*.jpg"))[:limit]
    start = time.perf_counter()
    for path in paths:
        with Image.open(path) as image:
            pixels = torch.from_numpy(np.asarray(image.convert("RGB"), dtype=np.float32))
        pixels = pixels.permute(2, 0, 1) / 127.5 - 1.0
        caption = path.with_suffix(".txt").read_text()
        assert pixels.shape[0] == 3 and caption
    return len(paths) / (time.perf_counter() - start)


def read_store_for_training(store: Path, limit: int) -> float:
    """StoreDataset + StoreLoader, no augmentation, batch 64, no workers. Returns items/s."""
    from galaxy_hpc.data.dataset import StoreDataset
    from galaxy_hpc.data.loader import StoreLoader

    dataset = StoreDataset(store, batch_size=64, caption_column="caption", shuffle=True)
    loader = StoreLoader(dataset, num_workers=0)
    seen, start = 0, time.perf_counter()
    for batch in loader:
        seen += len(batch["caption"])
        if seen >= limit:
            break
    return seen / (time.perf_counter() - start)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--num-images", type=int, default=10_000)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--workdir", type=Path, help="keep the files here (default: a temp dir)")
    parser.add_argument("--rounds", type=int, default=3, help="read rounds (best is kept)")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args()
    torch_threads = os.environ.get("OMP_NUM_THREADS")
    os.environ["OMP_NUM_THREADS"] = "1"  # per-core figures: one thread in every process
    os.environ["HPC_STORE_READ_THREADS"] = "1"  # zarrs decodes on every core unless told
    import torch

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as temp:
        work = args.workdir or Path(temp)
        folder = work / "jpeg_folder"
        made = make_folder(folder, args.num_images, args.size)
        print(f"made {args.num_images:,} JPEG + .txt ({args.size}x{args.size}) in {made:.0f} s")
        one = ingest(folder, work / "one_rank.zarr", 1, args.size)
        two = ingest(folder, work / "two_ranks.zarr", 2, args.size)
        if one["checksum"] != two["checksum"]:
            raise SystemExit("1-rank and 2-rank stores differ: ingest is broken")
        ingest(folder, work / "raw.zarr", 1, args.size, ["--compression", "none"])
        # Best of interleaved rounds: a load that comes and goes hits every reader alike.
        jpeg = store = store_raw = 0.0
        for _ in range(args.rounds):
            jpeg = max(jpeg, read_folder_like_the_seeds(folder, args.num_images))
            store = max(store, read_store_for_training(work / "one_rank.zarr", args.num_images))
            store_raw = max(store_raw, read_store_for_training(work / "raw.zarr",
                                                               args.num_images))
        sizes = {name: sum(f.stat().st_size for f in (work / name).rglob("*") if f.is_file())
                 for name in ("one_rank.zarr", "raw.zarr")}
        folder_bytes = sum(f.stat().st_size for f in folder.iterdir())
    ingest_ratio = two["images_per_s"] / one["images_per_s"]
    read_ratio = store / jpeg
    print(f"\n{'':44}{'images/s':>10}{'MB':>8}")
    print(f"{'ingest, 1 rank':44}{one['images_per_s']:>10,.0f}")
    print(f"{'ingest, 2 ranks (mpiexec)':44}{two['images_per_s']:>10,.0f}")
    print(f"{'read JPEG folder (PIL), 1 core':44}{jpeg:>10,.0f}{folder_bytes / 1e6:>8.0f}")
    print(f"{'read store, zstd-1 (default), 1 core':44}{store:>10,.0f}"
          f"{sizes['one_rank.zarr'] / 1e6:>8.0f}")
    print(f"{'read store, --compression none, 1 core':44}{store_raw:>10,.0f}"
          f"{sizes['raw.zarr'] / 1e6:>8.0f}")
    print(f"\ningest 2 ranks / 1 rank: {ingest_ratio:.2f}x (target >= 1.7x)")
    print(f"store / JPEG folder read: {read_ratio:.1f}x zstd-1, {store_raw / jpeg:.1f}x "
          f"uncompressed (target >= 5x); best of {args.rounds} interleaved rounds")
    print(f"(OMP_NUM_THREADS was {torch_threads or 'unset'}; set to 1 here; "
          f"{os.cpu_count()} cores; torch {torch.__version__})")
    missed = ingest_ratio < 1.7 or read_ratio < 5.0
    return 1 if (args.check and missed) else 0


if __name__ == "__main__":
    sys.exit(main())
