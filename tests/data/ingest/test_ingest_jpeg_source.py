"""compression jpeg-source: ingest keeps the source JPEG files; plain zarr gives them back
byte for byte, our reader decodes them to PIL's pixels, verify checks them, and every
case that would need ingest to change a file is refused."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from ingest_helpers import ingest, rgb, write_image
from PIL import Image

from galaxy_hpc.cli.main import main
from galaxy_hpc.data.dataset import StoreDataset
from hpc.store import StoreDamaged, StoreSpec, open_store

SIZE = 32

# Runs in a fresh interpreter that never imports galaxy_hpc/hpc: what a plain zarr user
# gets from the store (the files, by source path) and PIL's pixels of them.
PLAIN = r"""
import hashlib, io, json, sys
import numpy as np, zarr
from PIL import Image
group = zarr.open_group(sys.argv[1], mode="r")
files = group["jpeg"][:]
sources = [str(s) for s in group["columns/source"][:]]
pixels = [np.asarray(Image.open(io.BytesIO(bytes(f))).convert("RGB")) for f in files]
ours = sorted(m for m in sys.modules if m.split(".")[0] in ("galaxy_hpc", "hpc"))
print(json.dumps({"ours": ours, "sources": sources,
                  "files": [bytes(f).hex() for f in files],
                  "shape": dict(group["jpeg"].attrs)["images_shape"],
                  "pixels": [hashlib.sha256(p.tobytes()).hexdigest() for p in pixels]}))
"""


def jpeg_folder(root: Path, n: int, size: int = SIZE) -> list[Path]:
    """n real RGB JPEGs of size x size, quality 90 (PIL), with captions beside them."""
    root.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        path = root / f"g{i:03d}.jpg"
        Image.fromarray(rgb(size, size, i)).save(path, quality=90)
        (root / f"g{i:03d}.txt").write_text(f"sdss, galaxy {i}\n")
        paths.append(path)
    return paths


def pil_pixels(path: Path) -> np.ndarray:
    with Image.open(path) as img:
        return np.asarray(img).transpose(2, 0, 1)


def test_files_kept_byte_for_byte_and_decoded_as_pil_decodes_them(tmp_path):
    paths = jpeg_folder(tmp_path / "img", 7)
    summary, store, rejects = ingest(tmp_path, tmp_path / "img", size=SIZE, shard_size=3,
                                     compression="jpeg-source")
    assert summary.num_ingested == 7 and rejects == []
    assert store.spec.compression == "jpeg-source" and not (store.path / "images").exists()

    done = subprocess.run([sys.executable, "-c", PLAIN, str(store.path)], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    plain = json.loads(done.stdout)
    assert plain["ours"] == [] and plain["shape"] == [3, SIZE, SIZE]
    assert plain["sources"] == [str(p) for p in paths]
    assert [bytes.fromhex(f) for f in plain["files"]] == [p.read_bytes() for p in paths]
    expected = [hashlib.sha256(pil_pixels(p).transpose(1, 2, 0).tobytes()).hexdigest()
                for p in paths]
    assert plain["pixels"] == expected

    pil = np.stack([pil_pixels(p) for p in paths])
    assert np.array_equal(store.read_images(), pil)
    assert np.array_equal(store.read_images_at([5, 1, 5]), pil[[5, 1, 5]])
    assert [bytes(b) for b in store.read_jpeg(2, 4)] == [p.read_bytes() for p in paths[2:4]]
    # The training path: batches of StoreDataset, x / 127.5 - 1 of PIL's pixels.
    dataset = StoreDataset(store, shuffle=False, batch_size=4, caption_column="caption")
    batches = list(dataset.batches())
    values = np.concatenate([b["pixel_values"].numpy() for b in batches])
    index = np.concatenate([b["index"].numpy() for b in batches])
    assert np.array_equal(np.rint((values + 1) * 127.5).astype(np.uint8), pil[index])
    subset = StoreDataset(store, shuffle=False, batch_size=3, items=np.array([0, 2, 5]))
    (batch,) = list(subset.batches())  # a held-out split's training items
    assert batch["index"].tolist() == [0, 2, 5]
    assert np.array_equal(np.rint((batch["pixel_values"].numpy() + 1) * 127.5), pil[[0, 2, 5]])

    # The same images as pixels: the same checksum, at several times the bytes.
    _, pixel_store, _ = ingest(tmp_path, tmp_path / "img", size=SIZE, shard_size=3,
                               name="pixels.zarr")
    assert pixel_store.checksum == store.checksum == summary.checksum
    # The shard files: each JPEG plus 28 bytes (index entry, length, count, crc32c).
    kept = sum(f.stat().st_size for f in (store.path / "jpeg" / "c").iterdir())
    assert kept <= 1.1 * sum(p.stat().st_size for p in paths)
    assert main(["store", "verify", str(store.path)]) == 0


def shard_entries(store: Path, shard: int) -> tuple[Path, np.ndarray]:
    """The shard file of `jpeg` and its chunk index (offset, nbytes per item)."""
    per_shard = json.loads((store / "jpeg" / "zarr.json").read_text())[
        "chunk_grid"]["configuration"]["chunk_shape"][0]
    file = store / "jpeg" / "c" / str(shard)
    raw = file.read_bytes()
    return file, np.frombuffer(raw[-(16 * per_shard + 4):-4], "<u8").reshape(-1, 2)


def test_verify_and_reads_catch_a_changed_byte_of_a_jpeg(tmp_path, capsys):
    jpeg_folder(tmp_path / "img", 7)
    _, store, _ = ingest(tmp_path, tmp_path / "img", size=SIZE, shard_size=3,
                         compression="jpeg-source")
    file, entries = shard_entries(store.path, 1)
    offset, nbytes = (int(v) for v in entries[1])  # item 4
    data = bytearray(file.read_bytes())
    data[offset + nbytes // 2] ^= 0xFF
    file.write_bytes(bytes(data))

    assert main(["store", "verify", str(store.path), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["num_damaged_items"] == 1
    assert [(d["start"], d["stop"], d["file"]) for d in report["damaged"]] == [(4, 5, "jpeg/c/1")]
    assert "fails its crc32c check" in report["damaged"][0]["reason"]

    fresh = open_store(store.path)
    with pytest.raises(StoreDamaged, match=r"jpeg/c/1 \(item 4\)"):
        fresh.read_images(3, 6)
    with pytest.raises(StoreDamaged, match=r"jpeg/c/1 \(item 4\)"):
        fresh.read_images(4, 5)
    assert fresh.read_images(0, 3).shape == (3, 3, SIZE, SIZE)  # the other shards read on
    assert fresh.read_images(6, 7).shape == (1, 3, SIZE, SIZE)


def test_without_chunk_checksums_verify_still_finds_a_changed_byte(tmp_path, capsys,
                                                                   monkeypatch):
    """A store written with HPC_STORE_CHUNK_CHECKSUMS=0 (read through zarr's pipeline):
    the changed file either fails to decode or decodes to other pixels than PIL's at
    ingest; either way verify names the item, and the other shards verify."""
    jpeg_folder(tmp_path / "img", 7)
    monkeypatch.setenv("HPC_STORE_CHUNK_CHECKSUMS", "0")
    _, store, _ = ingest(tmp_path, tmp_path / "img", size=SIZE, shard_size=3,
                         compression="jpeg-source")
    monkeypatch.delenv("HPC_STORE_CHUNK_CHECKSUMS")
    file, entries = shard_entries(store.path, 1)
    offset, nbytes = (int(v) for v in entries[1])  # item 4; the crc32c-less index is 16 B
    assert file.stat().st_size == int(entries[:, 1].sum()) + 16 * 3 + 4
    data = bytearray(file.read_bytes())
    data[offset + nbytes - 40] ^= 0x55  # inside the entropy-coded data, before EOI
    file.write_bytes(bytes(data))
    assert main(["store", "verify", str(store.path), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert [(d["start"], d["stop"]) for d in report["damaged"]] == [(4, 5)]


def test_a_deleted_jpeg_shard_is_damage(tmp_path):
    jpeg_folder(tmp_path / "img", 5)
    _, store, _ = ingest(tmp_path, tmp_path / "img", size=SIZE, shard_size=3,
                         compression="jpeg-source")
    (store.path / "jpeg" / "c" / "1").unlink()
    with pytest.raises(StoreDamaged, match=r"jpeg/c/1 \(items 3\.\.4\) is missing"):
        open_store(store.path).read_images(0, 5)


def test_files_ingest_would_change_are_refused_naming_the_file(tmp_path):
    jpeg_folder(tmp_path / "img", 3)
    write_image(tmp_path / "img" / "g001.jpg", rgb(48, 56, 1))  # needs crop and resize
    with pytest.raises(ValueError, match=r"g001\.jpg: a 56x48 RGB JPEG.*keeps only 32x32 RGB "
                       r"JPEG.*crop/resize it to 32x32"):
        ingest(tmp_path, tmp_path / "img", size=SIZE, compression="jpeg-source")

    grey = tmp_path / "grey"
    jpeg_folder(grey, 2)
    Image.fromarray(rgb(SIZE, SIZE, 0)[..., 0]).save(grey / "g000.jpg", quality=90)
    with pytest.raises(ValueError, match=r"g000\.jpg: a 32x32 L JPEG.*convert L to RGB"):
        ingest(tmp_path, grey, size=SIZE, compression="jpeg-source", overwrite=True)

    png = tmp_path / "png"
    jpeg_folder(png, 1)
    write_image(png / "g009.png", rgb(SIZE, SIZE, 9))
    (png / "g009.txt").write_text("sdss\n")
    with pytest.raises(ValueError, match=r"g009\.png: a 32x32 RGB PNG.*store PNG pixels"):
        ingest(tmp_path, png, size=SIZE, compression="jpeg-source", overwrite=True)


def test_float_hdf5_and_array_sources_are_refused(tmp_path):
    with pytest.raises(ValueError, match="uint8 RGB images only; a float32 store is never "
                       "stored lossily"):
        StoreSpec(image_shape=(3, 8, 8), image_dtype="float32", compression="jpeg-source")
    with pytest.raises(ValueError, match="RGB images"):
        StoreSpec(image_shape=(1, 8, 8), compression="jpeg-source")
    with pytest.raises(ValueError, match="Zarr stores only"):
        StoreSpec(image_shape=(3, 8, 8), backend="hdf5", compression="jpeg-source")
    jpeg_folder(tmp_path / "img", 2)
    with pytest.raises(ValueError, match="Zarr stores only"):
        ingest(tmp_path, tmp_path / "img", backend="hdf5", size=SIZE,
               compression="jpeg-source")
    np.save(tmp_path / "x.npy", np.zeros((2, 3, SIZE, SIZE), dtype=np.uint8))
    with pytest.raises(ValueError, match="a npy source holds uint8 arrays, not JPEG files"):
        ingest(tmp_path, tmp_path / "x.npy", size=SIZE, compression="jpeg-source",
               name="n.zarr")


def test_the_writer_takes_files_not_pixels(tmp_path):
    from hpc.store import create_store

    spec = StoreSpec(image_shape=(3, SIZE, SIZE), compression="jpeg-source", shard_size=2)
    writer = create_store(tmp_path / "w.zarr", spec, num_items=2)
    with pytest.raises(ValueError, match="give each item's file bytes, not a uint8 pixel"):
        writer.write_shard(0, np.zeros((2, 3, SIZE, SIZE), dtype=np.uint8))
    buffer = io.BytesIO()
    Image.fromarray(rgb(16, 16, 0)).save(buffer, "JPEG")
    with pytest.raises(ValueError, match="item 1 is a 16x16 RGB JPEG"):
        writer.write_shard(0, [_jpeg(SIZE), buffer.getvalue()])


def _jpeg(size: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb(size, size, 3)).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def test_dedup_copies_the_files_into_its_clean_store(tmp_path, capsys):
    paths = jpeg_folder(tmp_path / "img", 6)
    for i, path in enumerate(paths):  # distinct scenes: galaxies at different places
        centre = (4 + 5 * i, 27 - 4 * i)
        Image.fromarray(rgb(SIZE, SIZE, i, centre=centre, sigma=2 + i)).save(path, quality=90)
    paths[5].write_bytes(paths[2].read_bytes())  # an exact copy under another id
    _, store, _ = ingest(tmp_path, tmp_path / "img", size=SIZE, shard_size=4,
                         compression="jpeg-source")
    out = tmp_path / "clean.zarr"
    assert main(["dedup", str(store.path), "--out", str(out), "--json"]) == 0
    capsys.readouterr()
    clean = open_store(out)
    kept = [int(i[1:]) for i in clean.read_column("id")]
    assert clean.spec.keeps_jpeg and 5 not in kept and 0 < len(kept) < 6  # the copy went
    assert [bytes(b) for b in clean.read_jpeg()] == [paths[i].read_bytes() for i in kept]
    assert main(["store", "verify", str(out)]) == 0


@pytest.mark.mpi
def test_two_ranks_keep_the_same_files_and_reject_the_same(mpiexec, tmp_path):
    """mpiexec -n 2: staging parts carry the files; the store equals one rank's, and a
    truncated JPEG is a reject (exit 3) as in every ingest, not a stop."""
    paths = jpeg_folder(tmp_path / "img", 9)
    data = paths[4].read_bytes()
    paths[4].write_bytes(data[: len(data) // 2])
    worker = str(Path(__file__).with_name("ingest_worker.py"))

    def run(out: str, *launcher: str) -> dict:
        done = subprocess.run([*launcher, sys.executable, worker, "ingest", str(tmp_path / "img"),
                               "--out", out, "--size", str(SIZE), "--shard-size", "2",
                               "--compression", "jpeg-source", "--json"],
                              capture_output=True, text=True, timeout=300, cwd=tmp_path)
        assert done.returncode == 3, done.stdout + done.stderr
        return json.loads(done.stdout)

    one, two = run("one.zarr"), run("two.zarr", mpiexec, "-n", "2")
    assert (one["num_ranks"], two["num_ranks"], two["num_ingested"]) == (1, 2, 8)
    assert one["checksum"] == two["checksum"] and two["rejects_by_reason"] == {"truncated": 1}
    kept = open_store(tmp_path / "two.zarr")
    assert [bytes(b) for b in kept.read_jpeg()] == [p.read_bytes() for p in paths if p != paths[4]]
    kept.verify()
