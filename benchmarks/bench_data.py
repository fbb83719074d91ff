"""Data-layer benchmark: ingest rate, and training read rate against the seeds' JPEG folder.

    .venv/bin/python benchmarks/bench_data.py [--num-images 10000] [--size 128] [--check]
                                              [--nvjpeg]

On the same images, in one run:
1. a GalaxySD-style folder: N JPEGs (quality 90) of S x S with same-named .txt
   captions, made from synthetic galaxies (each drawn galaxy appears in its 8
   dihedral orientations with fresh sky noise, so all N files differ);
2. ingest of that folder into a zarr store with 1 rank and with 2 ranks
   (mpiexec): images/s from the command's own summary (interpreter start-up
   excluded); target: 2 ranks >= 1.7x one rank;
3. reading for training on one core: the folder the seeds' way (PIL open,
   convert to RGB, float tensor in [-1, 1], caption read) against the store
   through StoreDataset/StoreLoader as the training loop reads a uint8 store
   without resampling augmentation (uint8 batches + captions; the loop converts
   them to floats on its device: galaxy_hpc.data.dataset.to_model_pixels), and
   beside it the float32 path (floats made on the core, as data.pixel_transfer
   float32 does in a CPU rank's workers); no augmentation, batch 64, no workers; for the default zstd-1 store
   and for an uncompressed one (`--compression none`), best of interleaved rounds;
   target: store >= 7x the folder; and beside it a bare zarrs decode of the same
   shards (zarr + zarrs on one thread, shard slices, nothing else): target, the
   loader within 1.5x of it;
4. what checking reads costs there: each of those stores, and an uncompressed HDF5
   copy, read with the read checks on (the default: files stat-ed and shard indexes
   crc-checked once per process, every image's crc32c verified on every read: zarr's
   crc32c codec, HDF5's images_crc32c) against a copy written without chunk checksums
   and read with the checks off (what reading was before them), in the same
   interleaved rounds (on and off in alternating order: whichever goes first in a
   round reads slower), as a ratio of images per second of CPU time (the reading
   process's own, which other jobs on a shared machine inflate less than wall time;
   both are printed); target: >= 0.9x for the default zstd-1 store. Uncompressed
   images cost more to check: their bytes are read once more for the checksum;
   beside them, a store ingested with `--compression jpeg-source` (the source files kept,
   checksum equal to the default store's) read through the same loader;
5. storage candidates for uint8 images (store_candidates.py) on the first
   --candidate-images images: zstd levels, gzip, blosc (bitshuffle, lz4), a delta
   filter, lossless PNG and WebP, and the source JPEG bytes kept as they are
   (decode_jpeg in batches): bare decode images/s on one core and bytes, each as a
   ratio to the JPEG folder; target for the default store: bytes <= 1.5x the folder's;
   the same files also as a jpeg-source store written and read by hpc.store itself;
   with --nvjpeg (needs CUDA) the JPEG bytes are also decoded on the GPU, and a line
   `nvJPEG decode: N images/s ...` gives the rate (what benchmarks/gpu_check.py reads).

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
    from galaxy_hpc.data.synth.config import SynthConfig

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


def read_store_for_training(store: Path, limit: int, cpu: bool = False,
                            pixel_dtype: str = "uint8", rotation: str | None = None) -> float:
    """StoreDataset + StoreLoader, no augmentation, batch 64, no workers. Returns items/s
    of wall time (`cpu`: (wall, CPU) items/s; the rate of this process's CPU time, which
    other jobs on a shared machine do not inflate). pixel_dtype uint8 is what the training
    loop reads from a uint8 store on a GPU rank (the conversion to floats, and a rotation
    by any angle, are the device's, in the step); float32 does both here, on the core.
    rotation: None (no augmentation) or GalaxyAugment's rotation."""
    from galaxy_hpc.data.augment import GalaxyAugment
    from galaxy_hpc.data.dataset import StoreDataset
    from galaxy_hpc.data.loader import StoreLoader

    dataset = StoreDataset(store, batch_size=64, caption_column="caption", shuffle=True,
                           pixel_dtype=pixel_dtype,
                           augment=None if rotation is None else GalaxyAugment(rotation))
    loader = StoreLoader(dataset, num_workers=0)
    seen, start, start_cpu = 0, time.perf_counter(), time.process_time()
    for batch in loader:
        seen += len(batch["caption"])
        if seen >= limit:
            break
    wall = seen / (time.perf_counter() - start)
    return (wall, seen / (time.process_time() - start_cpu)) if cpu else wall


def bare_decode(store: Path) -> tuple[float, float]:
    """The same shards decoded by zarr with the zarrs pipeline on one thread, in shard
    slices, and nothing else: no checks of ours, no float conversion, no captions. What
    the training read path is held against (target: StoreLoader within 1.5x). Items/s
    of wall time and of this process's CPU time."""
    import zarr

    from store_candidates import SHARD, ZARRS

    with zarr.config.set(ZARRS):
        array = zarr.open_array(store / "images", mode="r")
        start, start_cpu = time.perf_counter(), time.process_time()
        for first in range(0, array.shape[0], SHARD):
            array[first:first + SHARD]
        count = array.shape[0]
        return count / (time.perf_counter() - start), count / (time.process_time() - start_cpu)


CHECKS = {"on": {"HPC_STORE_READ_CHECKS": "1", "HPC_STORE_CHUNK_CHECKSUMS": "1"},
          "off": {"HPC_STORE_READ_CHECKS": "0", "HPC_STORE_CHUNK_CHECKSUMS": "0"}}


def with_env(values: dict[str, str], work):
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        return work()
    finally:
        for key, value in saved.items():
            os.environ.pop(key) if value is None else os.environ.__setitem__(key, value)


def copy_store(source: Path, target: Path, checks: str, compression: str | None = None) -> Path:
    """The same items in another store (backend from the name), written with chunk
    checksums or without (`checks`): what a store written before them looks like."""
    from dataclasses import replace

    from hpc.store import backend_for_path, create_store, finalize_store, open_store

    store = open_store(source)
    backend = backend_for_path(target)
    spec = replace(store.spec, backend=backend,
                   compression=compression if compression else store.spec.compression,
                   compression_level=None if compression == "none" else
                   store.spec.compression_level)

    def write() -> None:
        writer = create_store(target, spec, num_items=len(store))
        for shard in range(writer.num_shards):
            a, b = writer.shard_bounds(shard)
            writer.write_shard(shard, store.read_images(a, b),
                               {name: store.read_column(name, a, b) for name in store.columns})
        finalize_store(target)

    with_env(CHECKS[checks], write)
    return target


def measure_candidates(work: Path, folder: Path, count: int, rounds: int,
                       gpu: bool) -> None:
    """Storage candidates on the first `count` images of the default store, against the
    JPEG folder read of the same files, in interleaved rounds (store_candidates.py)."""
    import store_candidates

    from hpc.store import open_store

    images = open_store(work / "one_rank.zarr").read_images(0, count)
    jpegs = sorted(folder.glob("*.jpg"))[:count]
    candidates = store_candidates.all_candidates(images, work / "candidates", jpegs, gpu)
    jpeg, rates = 0.0, {c.name: 0.0 for c in candidates}
    for _ in range(rounds):
        jpeg = max(jpeg, read_folder_like_the_seeds(folder, count))
        for candidate in candidates:
            rates[candidate.name] = max(rates[candidate.name],
                                        store_candidates.best_rate(candidate, 1))
    store_candidates.print_table(candidates, rates, jpeg, sum(p.stat().st_size for p in jpegs))
    if gpu:
        import torch

        cpu = rates["JPEG passthrough, decode_jpeg (cpu)"]
        gpu_rate = rates[store_candidates.NVJPEG]
        print(f"nvJPEG decode: {gpu_rate:,.0f} images/s ({torch.cuda.get_device_name()}; "
              f"the source JPEG bytes, torchvision decode_jpeg on lists), "
              f"{gpu_rate / cpu:.1f}x decode_jpeg on one CPU core, "
              f"{gpu_rate / jpeg:.1f}x the JPEG folder read")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--num-images", type=int, default=10_000)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--workdir", type=Path, help="keep the files here (default: a temp dir)")
    parser.add_argument("--rounds", type=int, default=3, help="read rounds (best is kept)")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--nvjpeg", action="store_true",
                        help="also decode the source JPEG bytes on the GPU (nvJPEG through "
                        "torchvision decode_jpeg, device='cuda'); needs CUDA")
    parser.add_argument("--candidate-images", type=int, default=2048,
                        help="images the storage candidates are measured on (0: none)")
    args = parser.parse_args()
    torch_threads = os.environ.get("OMP_NUM_THREADS")
    os.environ["OMP_NUM_THREADS"] = "1"  # per-core figures: one thread in every process
    os.environ["HPC_STORE_READ_THREADS"] = "1"  # zarrs decodes on every core unless told
    import torch

    torch.set_num_threads(1)
    if args.nvjpeg and not (args.candidate_images and torch.cuda.is_available()):
        raise SystemExit("--nvjpeg needs a CUDA device that torch sees, and --candidate-images "
                         "> 0")
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
        kept = ingest(folder, work / "jpeg.zarr", 1, args.size,
                      ["--compression", "jpeg-source"])
        if kept["checksum"] != one["checksum"]:
            raise SystemExit("the jpeg-source store's checksum differs from the pixel store's")
        checked = {"zstd-1": work / "one_rank.zarr", "none": work / "raw.zarr",
                   "hdf5": copy_store(work / "one_rank.zarr", work / "raw.h5", "on", "none")}
        unchecked = {
            "zstd-1": copy_store(work / "one_rank.zarr", work / "old.zarr", "off"),
            "none": copy_store(work / "raw.zarr", work / "old_raw.zarr", "off"),
            "hdf5": copy_store(work / "one_rank.zarr", work / "old.h5", "off", "none"),
        }
        # Best of interleaved rounds: a load that comes and goes hits every reader alike.
        jpeg = 0.0
        rates = {(name, mode): 0.0 for name in checked for mode in CHECKS}
        cpu_rates = dict(rates)
        bare = {"zstd-1": 0.0, "none": 0.0}
        bare_cpu = dict(bare)
        kept_rate, kept_cpu = 0.0, 0.0  # jpeg-source through StoreDataset/StoreLoader
        floats = {"zstd-1": 0.0, "none": 0.0}  # the float32 path (converted on the core)
        floats_cpu = dict(floats)
        rotated = {"uint8": 0.0, "float32": 0.0}  # zstd-1, rotation by any angle
        for round_ in range(args.rounds):
            jpeg = max(jpeg, read_folder_like_the_seeds(folder, args.num_images))
            wall, cpu = read_store_for_training(work / "jpeg.zarr", args.num_images, cpu=True)
            kept_rate, kept_cpu = max(kept_rate, wall), max(kept_cpu, cpu)
            for name in bare:
                wall, cpu = bare_decode(checked[name])
                bare[name], bare_cpu[name] = max(bare[name], wall), max(bare_cpu[name], cpu)
                wall, cpu = read_store_for_training(checked[name], args.num_images, cpu=True,
                                                    pixel_dtype="float32")
                floats[name], floats_cpu[name] = max(floats[name], wall), max(floats_cpu[name], cpu)
            for dtype in rotated:
                limit = min(args.num_images, 2048)  # rotating on the core is slow
                rotated[dtype] = max(rotated[dtype], read_store_for_training(
                    checked["zstd-1"], limit, cpu=True, pixel_dtype=dtype, rotation="any")[1])
            for name in checked:
                pair = [("on", checked), ("off", unchecked)]
                for mode, stores in pair[:: 1 if round_ % 2 else -1]:  # neither always first
                    wall, cpu = with_env(CHECKS[mode], lambda: read_store_for_training(
                        stores[name], args.num_images, cpu=True))
                    rates[name, mode] = max(rates[name, mode], wall)
                    cpu_rates[name, mode] = max(cpu_rates[name, mode], cpu)
        store, store_raw = rates["zstd-1", "on"], rates["none", "on"]
        sizes = {name: sum(f.stat().st_size for f in (work / name).rglob("*") if f.is_file())
                 for name in ("one_rank.zarr", "raw.zarr", "jpeg.zarr")}
        folder_bytes = sum(f.stat().st_size for f in folder.iterdir())
        if args.candidate_images:
            measure_candidates(work, folder, min(args.candidate_images, args.num_images),
                               args.rounds, args.nvjpeg)
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
    print(f"{'read store, hdf5 (no compression), 1 core':44}{rates['hdf5', 'on']:>10,.0f}")
    print(f"{'read store, --compression jpeg-source, 1 core':44}{kept_rate:>10,.0f}"
          f"{sizes['jpeg.zarr'] / 1e6:>8.0f}   (CPU time: {kept_cpu:,.0f} images/s)")
    print(f"\nthe training read path (uint8 batches, as the loop reads a uint8 store without "
          f"resampling augmentation) against a bare zarrs decode of the same shards "
          f"(1 core; target: loader within 1.5x):")
    for name in bare:
        print(f"  {name:8} wall: bare {bare[name]:>8,.0f}  StoreLoader {rates[name, 'on']:>8,.0f}"
              f"  = {bare[name] / rates[name, 'on']:.2f}x   CPU: bare {bare_cpu[name]:>8,.0f}  "
              f"StoreLoader {cpu_rates[name, 'on']:>8,.0f}  = "
              f"{bare_cpu[name] / cpu_rates[name, 'on']:.2f}x")
    print("the float32 path (pixels made floats on the core, as before the loop handed "
          "uint8 to the device; data.pixel_transfer float32, for CPU ranks' workers):")
    for name in bare:
        print(f"  {name:8} wall: StoreLoader {floats[name]:>8,.0f} = "
              f"{bare[name] / floats[name]:.2f}x"
              f" bare, {floats[name] / jpeg:.1f}x the folder   CPU: {floats_cpu[name]:>8,.0f} = "
              f"{bare_cpu[name] / floats_cpu[name]:.2f}x bare")
    print(f"with rotation by any angle (data.augment's default), zstd-1, CPU time: the "
          f"loader rotating on the core (float32) {rotated['float32']:,.0f} images/s, leaving "
          f"it to the device (uint8) {rotated['uint8']:,.0f} = "
          f"{rotated['uint8'] / rotated['float32']:.1f}x")
    print(f"\nread checks on / off (same items, same rounds; off = no chunk checksums "
          f"written, no checks on read), images/s of wall time and of CPU time:")
    cost = {name: cpu_rates[name, "on"] / cpu_rates[name, "off"] for name in checked}
    for name in checked:
        print(f"  {name:8} wall {rates[name, 'on']:>8,.0f} /{rates[name, 'off']:>8,.0f} = "
              f"{rates[name, 'on'] / rates[name, 'off']:.3f}x   CPU "
              f"{cpu_rates[name, 'on']:>8,.0f} /{cpu_rates[name, 'off']:>8,.0f} = "
              f"{cost[name]:.3f}x")
    print(f"\ningest 2 ranks / 1 rank: {ingest_ratio:.2f}x (target >= 1.7x)")
    print(f"store / JPEG folder read: {read_ratio:.1f}x zstd-1, {store_raw / jpeg:.1f}x "
          f"uncompressed (target >= 7x; the loop's uint8 batches against the seeds' float "
          f"tensors); best of {args.rounds} interleaved rounds")
    bytes_ratio = sizes["one_rank.zarr"] / folder_bytes
    print(f"store / JPEG folder bytes: {bytes_ratio:.2f}x zstd-1, "
          f"{sizes['raw.zarr'] / folder_bytes:.2f}x uncompressed, "
          f"{sizes['jpeg.zarr'] / folder_bytes:.2f}x jpeg-source (target <= 1.5x)")
    print(f"jpeg-source store / JPEG folder read: {kept_rate / jpeg:.1f}x (StoreLoader, CPU "
          f"decode; opt-in, lossy sources only)")
    print(f"(OMP_NUM_THREADS was {torch_threads or 'unset'}; set to 1 here; "
          f"{os.cpu_count()} cores; torch {torch.__version__})")
    print(f"read checks: {cost['zstd-1']:.3f}x the unchecked read rate for zstd-1 (target "
          f">= 0.9x), {cost['none']:.3f}x uncompressed, {cost['hdf5']:.3f}x hdf5 (CPU time)")
    default = "zstd-1"
    loader_ratio = bare_cpu[default] / cpu_rates[default, "on"]
    missed = (ingest_ratio < 1.7 or read_ratio < 7.0 or cost["zstd-1"] < 0.9
              or loader_ratio > 1.5 or bytes_ratio > 1.5)
    return 1 if (args.check and missed) else 0


if __name__ == "__main__":
    sys.exit(main())
