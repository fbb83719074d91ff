"""Clean stores, built once per session; each test damages its own copy (damage_kit.py)."""

from __future__ import annotations

import itertools

import pytest
from damage_kit import build_store, copy_store

_copies = itertools.count()


@pytest.fixture(scope="session")
def clean_stores(tmp_path_factory):
    root = tmp_path_factory.mktemp("clean-stores")
    return {"zarr": build_store(root / "clean.zarr"), "hdf5": build_store(root / "clean.h5")}


@pytest.fixture
def fresh_store(clean_stores, tmp_path):
    """fresh_store(backend) -> a private copy of the clean store of that backend."""

    def make(backend: str):
        source = clean_stores[backend]
        return copy_store(source, tmp_path / f"copy{next(_copies)}{source.suffix}")

    return make
