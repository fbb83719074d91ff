"""StoreDataset meets NaN or infinite pixels: a store whose nonfinite_pixels column counts
any is refused when the dataset is made; in any other float store the batch that reads
one stops with the store and its items named (the stretch here is given, so no sample
of the store is read first)."""

from __future__ import annotations

import numpy as np
import pytest

from galaxy_hpc.data.dataset import StoreDataset
from galaxy_hpc.data.nonfinite import NonFinitePixels, bad_items, count
from galaxy_hpc.data.stretch import AsinhStretch
from hpc.store import StoreSpec, create_store, finalize_store

STRETCH = AsinhStretch(softening=[0.1], lower=[0.0], upper=[1.0])


def float_store(path, images, column=None):
    columns = {"id": np.array([f"obj{i}" for i in range(len(images))], dtype=object)}
    types = {"id": "str"}
    if column is not None:
        columns["nonfinite_pixels"], types["nonfinite_pixels"] = column, "int64"
    spec = StoreSpec(image_shape=images.shape[1:], image_dtype="float32", columns=types,
                     shard_size=4)
    writer = create_store(path, spec, num_items=len(images))
    for shard in range(-(-len(images) // 4)):
        writer.write_shard(shard, images[4 * shard:4 * shard + 4],
                           {k: v[4 * shard:4 * shard + 4] for k, v in columns.items()})
    finalize_store(path)
    return path


def test_a_batch_with_nonfinite_pixels_names_store_and_items(tmp_path):
    images = np.random.default_rng(0).random((12, 1, 8, 8), dtype=np.float32)
    images[6, 0, 1, 1] = np.inf
    images[9, 0, 2, 2] = np.nan
    store = float_store(tmp_path / "s.zarr", images)
    dataset = StoreDataset(store, batch_size=4, shuffle=False, stretch=STRETCH)
    batches = dataset.batches()
    assert next(batches)["index"].tolist() == [0, 1, 2, 3]  # clean batches go through
    with pytest.raises(NonFinitePixels) as caught:
        next(batches)
    assert str(caught.value) == (f"{store}: item 6 (id obj6) holds NaN or infinite pixels; "
                                 "training needs finite pixels: replace or drop those items "
                                 "in the store")


def test_a_counted_store_is_refused_when_the_dataset_is_made(tmp_path):
    images = np.zeros((4, 1, 8, 8), dtype=np.float32)
    store = float_store(tmp_path / "s.zarr", images, column=np.array([0, 2, 0, 5]))
    with pytest.raises(NonFinitePixels, match=r"items 1 \(id obj1\), 3 \(id obj3\) hold NaN"):
        StoreDataset(store, stretch=STRETCH)


def test_counting_and_finding():
    image = np.ones((2, 4, 4), dtype=np.float32)
    assert count(image) == 0 and bad_items([image, image]) == []
    holed = image.copy()
    holed[0, 0, 0], holed[1, 3, 3] = np.nan, -np.inf
    assert count(holed) == 2 and bad_items([image, holed, image]) == [1]
    big = np.full((1, 4, 4), 3e38, dtype=np.float32)  # its sum overflows; it is finite
    assert bad_items([big]) == [] and count(np.zeros((3, 3), np.uint8)) == 0
