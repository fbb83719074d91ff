"""The HDF5 master + shard folder: relative VDS paths, moving, other working directories."""

from __future__ import annotations

import shutil

import h5py
import numpy as np
import pytest
from store_helpers import make_items, make_spec, read_with_fd_limit, write_shards

from hpc.store import StoreDamaged, StoreSpec, create_store, finalize_store, open_store


def build(folder, num_items=10, shard_size=4, seed=0):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "cat.h5"
    images, columns = make_items(num_items, seed=seed)
    write_shards(
        create_store(path, make_spec("hdf5", shard_size=shard_size), num_items=num_items),
        images,
        columns,
    )
    finalize_store(path)
    return path, images


def assert_reads(path, images):
    np.testing.assert_array_equal(open_store(path).read_images(), images)
    with h5py.File(path, "r") as master:  # what a user with plain h5py sees
        np.testing.assert_array_equal(master["images"][:], images)


def test_layout_on_disk(tmp_path):
    path, _ = build(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cat.h5", "cat.h5.shards"]
    assert sorted(p.name for p in (tmp_path / "cat.h5.shards").iterdir()) == [
        "manifest.json",
        "shard-000000.done.json",
        "shard-000000.h5",
        "shard-000001.done.json",
        "shard-000001.h5",
        "shard-000002.done.json",
        "shard-000002.h5",
    ]
    with h5py.File(path, "r") as master:
        sources = {vds.file_name for vds in master["images"].virtual_sources()}
    assert sources == {f"cat.h5.shards/shard-{j:06d}.h5" for j in range(3)}  # relative


def test_opened_from_another_cwd_with_a_decoy(tmp_path, monkeypatch):
    path, images = build(tmp_path / "data")
    decoy = tmp_path / "elsewhere"
    _, other = build(decoy, seed=1)  # same names, other content: must not be picked up from the cwd
    assert not np.array_equal(other, images)
    (decoy / "cat.h5").unlink()
    monkeypatch.chdir(decoy)
    assert_reads(path, images)
    monkeypatch.chdir(tmp_path)
    assert_reads("data/cat.h5", images)


def test_moving_the_folder_or_the_pair(tmp_path, monkeypatch):
    path, images = build(tmp_path / "a")
    shutil.move(tmp_path / "a", tmp_path / "b")
    assert_reads(tmp_path / "b" / "cat.h5", images)
    (tmp_path / "c" / "deeper").mkdir(parents=True)
    for name in ("cat.h5", "cat.h5.shards"):
        shutil.move(tmp_path / "b" / name, tmp_path / "c" / "deeper" / name)
    monkeypatch.chdir(tmp_path / "c")
    assert_reads("deeper/cat.h5", images)


def test_a_master_renamed_alone_is_refused_naming_both_folders(tmp_path):
    """A master renamed or copied without its folder could be a copy: it must not read
    the original's shards; the error says what to rename."""
    path, _ = build(tmp_path)
    path.rename(tmp_path / "renamed.h5")
    with pytest.raises(StoreDamaged, match=r"renamed.h5.shards/ \(items 0..9\) is missing "
                       r"\(renamed.h5 was written beside cat.h5.shards/\); .*rename or copy "
                       r"cat.h5.shards/ to renamed.h5.shards/"):
        open_store(tmp_path / "renamed.h5")


def test_a_renamed_pair_reads_its_own_shards_and_relinks_for_plain_h5py(tmp_path):
    path, images = build(tmp_path)
    (tmp_path / "cat.h5").rename(tmp_path / "new.h5")
    (tmp_path / "cat.h5.shards").rename(tmp_path / "new.h5.shards")
    store = open_store(tmp_path / "new.h5")
    np.testing.assert_array_equal(store.read_images(), images)
    assert store.stale_links() == "cat.h5.shards"
    store.close()
    with h5py.File(tmp_path / "new.h5", "r") as master:  # the VDS still names the old folder
        assert {v.file_name for v in master["images"].virtual_sources()} == {
            f"cat.h5.shards/shard-{j:06d}.h5" for j in range(3)}
    assert store.relink() is True
    assert_reads(tmp_path / "new.h5", images)
    again = open_store(tmp_path / "new.h5")
    assert again.stale_links() is None and again.relink() is False
    again.verify()


def test_a_copied_pair_never_reads_the_original(tmp_path):
    path, images = build(tmp_path / "a")
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    (tmp_path / "b" / "cat.h5").rename(tmp_path / "b" / "copy.h5")
    (tmp_path / "b" / "cat.h5.shards").rename(tmp_path / "b" / "copy.h5.shards")
    shutil.rmtree(tmp_path / "a")
    np.testing.assert_array_equal(open_store(tmp_path / "b" / "copy.h5").read_images(), images)


def test_a_shard_of_another_store_is_refused(tmp_path):
    path, _ = build(tmp_path / "a")
    build(tmp_path / "b", seed=1)  # same layout and names, another store
    shutil.copy(tmp_path / "b" / "cat.h5.shards" / "shard-000001.h5",
                tmp_path / "a" / "cat.h5.shards" / "shard-000001.h5")
    store = open_store(path)
    store.read_images(0, 4)
    with pytest.raises(StoreDamaged, match=r"cat.h5.shards/shard-000001.h5 \(items 4..7\) "
                       r"belongs to another store"):
        store.read_images(4, 8)


def test_missing_shard_file_is_an_error_not_fill_values(tmp_path):
    path, _ = build(tmp_path)
    (tmp_path / "cat.h5.shards" / "shard-000001.h5").unlink()
    with pytest.raises(StoreDamaged, match=r"cat.h5 is damaged: cat.h5.shards/shard-000001.h5 "
                       r"\(items 4..7\) is missing"):
        open_store(path)


def test_reader_is_safe_past_the_open_file_limit(tmp_path, spawn_pool):
    spec = StoreSpec(image_shape=(1, 2, 2), columns={"id": "str"}, shard_size=1, backend="hdf5")
    path = tmp_path / "many.h5"
    images = np.arange(120 * 4, dtype=np.uint8).reshape(120, 1, 2, 2)
    ids = [f"o{i}" for i in range(120)]
    write_shards(create_store(path, spec, num_items=120), images, {"id": ids})
    finalize_store(path)
    whole, backwards, got_ids = spawn_pool.submit(read_with_fd_limit, str(path), 60).result()
    np.testing.assert_array_equal(whole, images)
    np.testing.assert_array_equal(backwards, images[::-1])
    assert got_ids.tolist() == ids
