"""Every way of reading a damaged store fails naming the store, the file and its items.

In process, through the store API and the training dataset, for both backends and every
damage of damage_kit.py; the command-line tests (test_commands.py) run the commands.
Also: holes zarr legitimately leaves (an all-black image, an all-False column) are data;
the checks can be turned off to salvage what is left; a resumed writer refuses a written
shard whose file is damaged; a DataLoader worker's error stays one line.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from damage_kit import FLIPPED, IMAGE_KINDS, NUM_ITEMS, SHARD, SHARD_SIZE, damage

from hpc.store import StoreDamaged, create_store, finalize_store, open_store
from hpc.store.verify import verify_shard

BACKENDS = ("zarr", "hdf5")
SHARD_ITEMS = (SHARD * SHARD_SIZE, (SHARD + 1) * SHARD_SIZE)


def damaged_items(kind: str) -> str:
    if kind == "flip":
        return f"(item {FLIPPED})"
    return f"(items {SHARD_ITEMS[0]}..{SHARD_ITEMS[1] - 1})"


def expect_damage(store, file: str, items: str | None):
    pattern = re.escape(f"{store} is damaged: {file}") + (
        re.escape(f" {items}") if items else "")
    return pytest.raises(StoreDamaged, match=pattern)


def image_reads(store):
    """The ways commands read images: whole shards (training, FID), a run inside a shard
    (evaluation batches), scattered items (report grids, predict), the dataset."""
    from galaxy_hpc.data.dataset import StoreDataset

    return {
        "whole shard": lambda: store.read_images(*SHARD_ITEMS),
        "everything": lambda: store.read_images(),
        "one item": lambda: store.read_images(FLIPPED, FLIPPED + 1),
        "scattered": lambda: store.read_images_at([FLIPPED, 3, FLIPPED + 1]),
        "dataset": lambda: list(StoreDataset(store, batch_size=4, shuffle=True).batches()),
    }


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind", IMAGE_KINDS)
def test_image_damage_is_named_by_every_read(fresh_store, backend, kind):
    path = fresh_store(backend)
    file = damage(path, kind)
    try:
        store = open_store(path)
    except StoreDamaged as error:  # HDF5 stats its shard files when it opens
        assert backend == "hdf5" and kind == "delete", error
        assert f"{file} {damaged_items(kind)} is missing" in str(error)
        return
    for name, read in image_reads(store).items():
        fresh = open_store(path)  # checks are cached per handle: every path from scratch
        with expect_damage(path, file, damaged_items(kind)):
            image_reads(fresh)[name]()
    assert store.read_images(0, SHARD_SIZE).shape[0] == SHARD_SIZE  # other shards read
    if kind != "flip":  # a changed byte inside a chunk is seen only by reading it
        with expect_damage(path, file, damaged_items(kind)):
            open_store(path).check_files()
    else:
        open_store(path).check_files()
    found = [d for shard in range(3) for d in verify_shard(open_store(path), shard)]
    assert len(found) == 1 and found[0].file == file, found
    assert (found[0].start, found[0].stop) == (
        (FLIPPED, FLIPPED + 1) if kind == "flip" else SHARD_ITEMS)


@pytest.mark.parametrize("backend", BACKENDS)
def test_column_damage_is_named(fresh_store, backend):
    path = fresh_store(backend)
    file = damage(path, "column")
    store = open_store(path)
    items = damaged_items("column") if backend == "zarr" else None
    with expect_damage(path, file, items):
        store.read_column("redshift")
    with expect_damage(path, file, items):
        open_store(path).check_files()
    store.read_images()  # the images are intact
    assert store.read_column("id").shape == (NUM_ITEMS,)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_clean_store_with_legitimate_holes_reads_and_verifies(clean_stores, backend):
    """Item 0 is all black and `spiral` all False: zarrs writes no chunk for the image
    (whatever write_empty_chunks says), and stores written before every column chunk was
    kept have none for the column. Digests tell such holes from lost files."""
    store = open_store(clean_stores[backend])
    assert not store.read_images(0, 1).any() and not store.read_column("spiral").any()
    store.check_files()
    store.verify()


def test_a_column_hole_of_fill_values_is_data_and_of_values_is_damage(fresh_store):
    path = fresh_store("zarr")
    (path / "columns" / "spiral" / "c" / "1").unlink()  # all False: as old writers left it
    open_store(path).read_column("spiral")
    open_store(path).verify()
    with expect_damage(path, "columns/redshift/c/1", damaged_items("column")):
        damage(path, "column")
        open_store(path).read_column("redshift")


def test_salvage_with_checks_off_reads_fill_values(fresh_store, monkeypatch):
    path = fresh_store("zarr")
    damage(path, "delete")
    monkeypatch.setenv("HPC_STORE_READ_CHECKS", "0")
    assert not open_store(path).read_images(*SHARD_ITEMS).any()  # zarr's fill: black


@pytest.mark.parametrize("backend", BACKENDS)
def test_without_chunk_checksums_only_verify_sees_a_flip(tmp_path, monkeypatch, backend):
    """Stores written before chunk checksums (or with them off) decode a changed byte
    as data: the item digests are what finds it (README)."""
    from damage_kit import build_store

    monkeypatch.setenv("HPC_STORE_CHUNK_CHECKSUMS", "0")
    path = build_store(tmp_path / f"old.{'zarr' if backend == 'zarr' else 'h5'}")
    monkeypatch.delenv("HPC_STORE_CHUNK_CHECKSUMS")
    damage(path, "flip")
    open_store(path).read_images()  # no error: nothing on disk to check against
    with pytest.raises(StoreDamaged, match=rf"shard {SHARD} differs from its digests at "
                       rf"items \[{FLIPPED}\]"):
        open_store(path).verify()


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind", ["delete", "truncate"])
def test_a_resumed_writer_refuses_a_damaged_written_shard(tmp_path, backend, kind):
    """What generate, ingest and synth do on resume: the shards marked written must
    still be whole, or the finished store would have a hole; deleting the record redoes
    the shard."""
    from damage_kit import relative, shard_file

    from hpc.store import StoreSpec

    path = tmp_path / ("run.zarr" if backend == "zarr" else "run.h5")
    spec = StoreSpec(image_shape=(1, 4, 4), shard_size=SHARD_SIZE, backend=backend)
    images = np.arange(NUM_ITEMS * 16, dtype=np.uint8).reshape(NUM_ITEMS, 1, 4, 4)
    writer = create_store(path, spec, num_items=NUM_ITEMS)
    for shard in (0, 1):  # shard 2 pending: the job was killed
        writer.write_shard(shard, images[shard * SHARD_SIZE:(shard + 1) * SHARD_SIZE])
    file = shard_file(path)
    file.unlink() if kind == "delete" else file.write_bytes(file.read_bytes()[:100])
    with pytest.raises(StoreDamaged, match=re.escape(relative(path, file)) + ".*or delete "
                       + re.escape(writer._backend.record_name(SHARD))) as caught:
        create_store(path, spec, num_items=NUM_ITEMS)
    record = path / writer._backend.record_name(SHARD) if backend == "zarr" else \
        path.parent / writer._backend.record_name(SHARD)
    record.unlink()
    writer = create_store(path, spec, num_items=NUM_ITEMS)
    assert writer.pending_shards() == [1, 2], caught.value
    for shard in (1, 2):
        writer.write_shard(shard, images[shard * SHARD_SIZE:(shard + 1) * SHARD_SIZE])
    finalize_store(path)
    np.testing.assert_array_equal(open_store(path).read_images(), images)


def test_a_dataloader_worker_reports_one_line(fresh_store):
    """torch re-raises a worker's exception with the worker's whole traceback as its
    message; the command line must still print one line naming the damage."""
    from galaxy_hpc.data.dataset import StoreDataset
    from galaxy_hpc.data.loader import StoreLoader

    path = fresh_store("zarr")
    file = damage(path, "truncate")
    loader = StoreLoader(StoreDataset(path, batch_size=8, shuffle=False), num_workers=1)
    with expect_damage(path, file, damaged_items("truncate")) as caught:
        list(loader)
    assert "\n" not in str(caught.value), str(caught.value)


def test_a_store_verified_after_writing_says_so(fresh_store):
    from hpc.store.verify import record_verification

    path = fresh_store("zarr")
    assert open_store(path).info()["verification"] == {"verified": False}
    record_verification(open_store(path), [], 0)
    state = open_store(path).info()["verification"]
    assert state["verified"] and state["ok"] and state["num_damaged_items"] == 0
    finalize_store(path, attrs={"note": "finalized again"})  # same content: still verified
    assert open_store(path).info()["verification"]["verified"]
