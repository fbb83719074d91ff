"""galaxyCGAN: NPY images + NPY ids + a property CSV whose id is a non-unique key."""

from __future__ import annotations

import numpy as np
import pytest
from ingest_helpers import blob, ingest, reasons, write_csv

IDS = [101, 102, 103, 102, 105, 106]  # the second 102 is a duplicate; 106 has no row
HEADER = ["COSMOS_id", "HSC_id", "photo_z", "log_mass", "survey"]
ROWS = [  # HSC_id 102 three times, 103 twice, 999 has no image
    [1, 101, 0.10, 10.1, "cosmos"],
    [2, 102, 0.20, 9.5, "cosmos"],
    [3, 102, 0.25, "", "cosmos"],  # empty mass: never the max
    [4, 103, 0.30, 10.3, "cosmos"],
    [5, 102, 0.22, 9.9, "cosmos"],
    [6, 999, 0.90, 11.0, "cosmos"],
    [7, 103, 0.35, 10.2, "cosmos"],
    [8, 105, 0.50, 10.5, "cosmos"],
]


def cgan_data(tmp_path, dtype=np.float32):
    images = np.stack([np.stack([blob(50, 50, flux=100.0 * (i + 1))] * 3) for i in range(6)])
    if dtype == np.uint8:
        images = images / images.max() * 255
    images = images.astype(dtype)
    np.save(tmp_path / "images.small.npy", images)
    np.save(tmp_path / "HSC_ids.npy", np.array(IDS, dtype=np.int64))
    write_csv(tmp_path / "all_objects.csv", HEADER, ROWS)
    return images


def npy_options(tmp_path, **extra):
    return {"ids": str(tmp_path / "HSC_ids.npy"), "table": str(tmp_path / "all_objects.csv"),
            **extra}


@pytest.mark.parametrize("backend", ["zarr", "hdf5"])
def test_first_row_per_id_is_kept_and_drops_are_counted(tmp_path, backend):
    images = cgan_data(tmp_path)
    summary, store, rejects = ingest(
        tmp_path, tmp_path / "images.small.npy", backend=backend, size=50,
        npy=npy_options(tmp_path, rename={"photo_z": "redshift"}))
    assert summary.kind == "npy" and summary.num_ingested == 4
    assert list(store.read_column("id")) == ["101", "102", "103", "105"]
    assert reasons(rejects) == {"images.small.npy[3]": "duplicate_id",
                                "images.small.npy[5]": "no_table_row"}
    np.testing.assert_allclose(store.read_column("redshift"), [0.10, 0.20, 0.30, 0.50])
    np.testing.assert_allclose(store.read_column("log_mass"), [10.1, 9.5, 10.3, 10.5])
    assert list(store.read_column("COSMOS_id")) == [1, 2, 4, 8]
    assert store.spec.columns["COSMOS_id"] == "int64" and "survey" not in store.columns
    assert summary.notes["table_rows"] == 8 and summary.notes["table_rows_dropped"] == 3
    assert summary.notes["table_rows_unused"] == 1  # id 999
    assert store.read_column("source")[3] == f"{tmp_path / 'images.small.npy'}[4]"
    np.testing.assert_array_equal(store.read_images(), images[[0, 1, 2, 4]])  # 50 px: as is
    assert store.spec.image_dtype == "float32"


@pytest.mark.parametrize("prefer, cosmos", [("last", [1, 5, 7, 8]),
                                            ("max:log_mass", [1, 5, 4, 8]),
                                            ("min:photo_z", [1, 2, 4, 8])])
def test_other_rules_pick_other_rows(tmp_path, prefer, cosmos):
    cgan_data(tmp_path)
    summary, store, _ = ingest(tmp_path, tmp_path / "images.small.npy", size=25,
                               npy=npy_options(tmp_path, prefer=prefer,
                                               columns=["COSMOS_id", "survey"]))
    assert list(store.read_column("COSMOS_id")) == cosmos
    assert set(store.read_column("survey")) == {"cosmos"}  # named columns may be text
    assert summary.notes["one_row_per_id"] == f"prefer={prefer} on HSC_id"
    flux = store.read_images().astype(np.float64).sum(axis=(2, 3))[:, 0]
    np.testing.assert_allclose(flux, [100, 200, 300, 500], rtol=1e-5)  # total flux kept


def test_uint8_arrays_become_rgb_and_ids_default_to_positions(tmp_path):
    cgan_data(tmp_path, dtype=np.uint8)
    summary, store, rejects = ingest(tmp_path, tmp_path / "images.small.npy", size=32)
    assert summary.num_ingested == 6 and rejects == []
    assert store.spec.image_dtype == "uint8" and store.spec.image_shape == (3, 32, 32)
    assert list(store.read_column("id")) == ["0", "1", "2", "3", "4", "5"]


def test_bad_table_options_say_what_to_change(tmp_path):
    cgan_data(tmp_path)
    with pytest.raises(ValueError, match="no numeric column 'mass'"):
        ingest(tmp_path, tmp_path / "images.small.npy",
               npy=npy_options(tmp_path, prefer="max:mass"))
    with pytest.raises(ValueError, match="no id column 'objid'"):
        ingest(tmp_path, tmp_path / "images.small.npy",
               npy=npy_options(tmp_path, id_column="objid"))
    with pytest.raises(ValueError, match="npy.prefer must be"):
        ingest(tmp_path, tmp_path / "images.small.npy", npy=npy_options(tmp_path, prefer="best"))
