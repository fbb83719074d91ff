"""Storage candidates for uint8 images, measured on the same images (bench_data.py).

Each candidate is judged on two figures per core: images/s of a bare decode (what the
codec costs, before our loader adds anything) and bytes on disk, both as ratios to the
JPEG folder they came from. Zarr candidates are written the way stores are (chunks of
one image, shards of 256, crc32c after the compressor) and read in shard slices through
zarr with the zarrs pipeline on one thread; a codec zarrs does not support (numcodecs'
delta) is read through zarr's own pipeline, and the table says so. Image codecs (PNG,
lossless WebP) are decoded with PIL one image at a time; JPEG passthrough (the source
files' bytes kept as they are) is decoded with torchvision.io.decode_jpeg on lists of
64, on CPU and, when there is one, on the GPU (nvJPEG).
"""

from __future__ import annotations

import io
import shutil
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

ZARRS = {"codec_pipeline.path": "zarrs.ZarrsCodecPipeline", "threading.max_workers": 1}
SHARD = 256


@dataclass
class Candidate:
    name: str
    nbytes: int
    read: Callable[[], int]  # decodes everything once; returns the number of images
    note: str = ""


def _zarr_codecs(name: str) -> tuple[list[Any], list[Any] | None]:
    from zarr.codecs import BloscCodec, Crc32cCodec, GzipCodec, ZstdCodec

    kind, _, level = name.partition("-")
    crc = [Crc32cCodec()]
    if kind == "none":
        return crc, None
    if kind == "zstd":
        return [ZstdCodec(level=int(level)), *crc], None
    if kind == "gzip":
        return [GzipCodec(level=int(level)), *crc], None
    if kind == "blosc_zstd_bitshuffle":
        return [BloscCodec(cname="zstd", clevel=int(level), shuffle="bitshuffle", typesize=1),
                *crc], None
    if kind == "blosc_lz4":
        return [BloscCodec(cname="lz4", clevel=int(level), shuffle="noshuffle", typesize=1),
                *crc], None
    if kind == "delta_zstd":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from zarr.codecs.numcodecs import Delta
            return [ZstdCodec(level=int(level)), *crc], [Delta(dtype="uint8")]
    raise ValueError(f"unknown candidate {name!r}")


def zarr_candidate(images: np.ndarray, folder: Path, name: str) -> Candidate:
    import zarr

    compressors, filters = _zarr_codecs(name)
    path = folder / f"{name}.zarr"
    shutil.rmtree(path, ignore_errors=True)
    with zarr.config.set(ZARRS), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        array = zarr.create_array(path, shape=images.shape, dtype="uint8",
                                  chunks=(1, *images.shape[1:]),
                                  shards=(SHARD, *images.shape[1:]),
                                  compressors=compressors, filters=filters, fill_value=0)
        array[:] = images
        reader = zarr.open_array(path, mode="r")
        zarrs = type(reader._async_array.codec_pipeline).__name__ == "ZarrsCodecPipeline"
        if not np.array_equal(reader[:], images):
            raise SystemExit(f"candidate {name} does not read back what was written")

    def read() -> int:
        with zarr.config.set(ZARRS), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            array = zarr.open_array(path, mode="r")
            for start in range(0, len(images), SHARD):
                array[start:start + SHARD]
        return len(images)

    nbytes = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    return Candidate(f"zarr {name}", nbytes, read, "" if zarrs else "zarr's own pipeline")


def pil_candidate(images: np.ndarray, fmt: str, **options: Any) -> Candidate:
    from PIL import Image

    blobs = []
    for image in images:
        buffer = io.BytesIO()
        Image.fromarray(np.ascontiguousarray(image.transpose(1, 2, 0))).save(buffer, fmt,
                                                                            **options)
        blobs.append(buffer.getvalue())
    with Image.open(io.BytesIO(blobs[0])) as first:
        if not np.array_equal(np.asarray(first.convert("RGB")).transpose(2, 0, 1), images[0]):
            raise SystemExit(f"{fmt} {options} is not lossless here")

    def read() -> int:
        for blob in blobs:
            with Image.open(io.BytesIO(blob)) as image:
                np.asarray(image.convert("RGB"))
        return len(blobs)

    label = ", ".join(f"{k}={v}" for k, v in options.items())
    return Candidate(f"{fmt} lossless ({label}), PIL", sum(map(len, blobs)), read)


NVJPEG = "JPEG passthrough, decode_jpeg (cuda, nvJPEG)"


def jpeg_candidates(jpegs: list[Path], gpu: bool, batch: int = 64) -> list[Candidate]:
    """The source JPEG bytes as they are, decoded in lists of `batch` (lossy source: uint8
    only): on the CPU, and with `gpu` on the GPU through nvJPEG."""
    import torch
    from torchvision.io import decode_jpeg

    blobs = [torch.frombuffer(bytearray(p.read_bytes()), dtype=torch.uint8) for p in jpegs]
    nbytes = sum(blob.numel() for blob in blobs)
    out = []
    devices = ["cpu"] + (["cuda"] if gpu else [])
    for device in devices:
        def read(device: str = device) -> int:
            for start in range(0, len(blobs), batch):
                decoded = decode_jpeg(blobs[start:start + batch], device=device)
            if device == "cuda":
                torch.cuda.synchronize()
            del decoded
            return len(blobs)

        name = NVJPEG if device == "cuda" else "JPEG passthrough, decode_jpeg (cpu)"
        out.append(Candidate(name, nbytes, read,
                             f"lists of {batch}; lossy source kept, uint8 only"))
    return out


def jpeg_source_store(jpegs: list[Path], folder: Path, gpu: bool = False) -> list[Candidate]:
    """compression jpeg-source through hpc.store itself: the files written by the real
    writer (PIL decode for the digests, zarr shards of SHARD), read back in shard slices
    with `Store.read_images` (checks on; one decode_jpeg call per slice), on the CPU and
    with `gpu` through nvJPEG: what the loader's read costs, not a bare decode."""
    from PIL import Image

    from hpc.store import StoreSpec, create_store, finalize_store, open_store

    with Image.open(jpegs[0]) as first:
        width, height = first.size
    path = folder / "jpeg-source.zarr"
    spec = StoreSpec(image_shape=(3, height, width), shard_size=SHARD,
                     compression="jpeg-source")
    writer = create_store(path, spec, num_items=len(jpegs), overwrite=True)
    for shard in range(writer.num_shards):
        a, b = writer.shard_bounds(shard)
        writer.write_shard(shard, [p.read_bytes() for p in jpegs[a:b]])
    finalize_store(path)
    nbytes = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    out = []
    for device in ["cpu"] + (["cuda"] if gpu else []):
        def read(device: str = device) -> int:
            store = open_store(path)  # fresh: the per-process file checks are counted
            for start in range(0, len(store), SHARD):
                store.read_images(start, min(start + SHARD, len(store)), device=device)
            return len(store)

        out.append(Candidate(f"store jpeg-source, Store.read_images ({device})", nbytes, read,
                             "hpc.store reader, shard slices, checks on"))
    return out


def all_candidates(images: np.ndarray, folder: Path, jpegs: list[Path],
                   gpu: bool = False) -> list[Candidate]:
    folder.mkdir(parents=True, exist_ok=True)
    names = ["none", "zstd-1", "zstd-3", "zstd-9", "zstd-19", "gzip-1",
             "blosc_zstd_bitshuffle-1", "blosc_lz4-5", "delta_zstd-1"]
    found = [zarr_candidate(images, folder, name) for name in names]
    found.append(pil_candidate(images, "PNG", compress_level=1))
    found.append(pil_candidate(images, "WEBP", lossless=True, quality=0))
    return found + jpeg_candidates(jpegs, gpu) + jpeg_source_store(jpegs, folder, gpu)


def best_rate(candidate: Candidate, rounds: int) -> float:
    """Best images/s of `rounds` full decodes (one warm-up first)."""
    candidate.read()
    best = 0.0
    for _ in range(rounds):
        start = time.perf_counter()
        count = candidate.read()
        best = max(best, count / (time.perf_counter() - start))
    return best


def print_table(candidates: list[Candidate], rates: dict[str, float], jpeg_rate: float,
                jpeg_bytes: int) -> None:
    print(f"\ncandidates for uint8 images: bare decode on 1 core against the JPEG folder "
          f"(read {jpeg_rate:,.0f} images/s, .jpg files {jpeg_bytes / 1e6:.1f} MB)")
    print(f"  {'':52}{'images/s':>10}{'x JPEG':>8}{'MB':>8}{'x JPEG':>8}")
    for c in candidates:
        rate = rates[c.name]
        print(f"  {c.name:52}{rate:>10,.0f}{rate / jpeg_rate:>8.1f}{c.nbytes / 1e6:>8.1f}"
              f"{c.nbytes / jpeg_bytes:>8.2f}  {c.note}")
