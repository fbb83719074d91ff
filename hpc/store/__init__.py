"""Sharded array stores: images (N, C, H, W) + per-item columns + attributes + checksum.

Two backends behind one interface (backend.py: `StoreBackend`, `StoreReader`, and the
steps they share): Zarr v3 (default; one directory plain zarr opens) and HDF5 (one file
per shard plus a master file with a virtual `images` dataset that plain h5py opens). Every read checks the files it needs; damage is a `StoreDamaged` naming the
store, the file and its items (damage.py, zarr_reader.py, hdf5_reader.py, verify.py).
Disjoint whole shards can be written by different processes at once without locks;
barriers between the steps are the caller's. See writer.py for the protocol,
staging.py for ingest with unknown counts, README.md for layouts and measured rates.
"""

from hpc.store.backend import NotAStore
from hpc.store.checksum import item_digests, store_checksum
from hpc.store.damage import StoreDamaged
from hpc.store.manifest import Manifest
from hpc.store.reader import Store, open_store
from hpc.store.spec import (
    BACKENDS,
    COLUMN_DTYPES,
    IMAGE_DTYPES,
    StoreSpec,
    backend_for_path,
    default_compression,
)
from hpc.store.staging import Staging, compact_staging, open_staging, remove_staging, staging_path
from hpc.store.writer import StoreWriter, create_store, finalize_store, open_store_for_writing

__all__ = [
    "BACKENDS",
    "COLUMN_DTYPES",
    "IMAGE_DTYPES",
    "Manifest",
    "NotAStore",
    "Staging",
    "Store",
    "StoreDamaged",
    "StoreSpec",
    "StoreWriter",
    "backend_for_path",
    "compact_staging",
    "create_store",
    "default_compression",
    "finalize_store",
    "item_digests",
    "open_staging",
    "open_store",
    "open_store_for_writing",
    "remove_staging",
    "staging_path",
    "store_checksum",
]
