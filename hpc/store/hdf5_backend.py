"""HDF5 backend: one file per shard (several processes cannot write one HDF5 file at once
without parallel HDF5), tied together at finalize by a master file.

    X.h5                         master, written at finalize (atomic rename):
                                   images          virtual dataset over the shard files
                                   columns/<name>  real datasets (copied from the shards),
                                                   attrs `unit`, `description` if the spec has them
                                   item_digests    (N, 32) uint8 per-item sha256
                                   attrs: hpc_store (manifest JSON), hpc_store_shard_dir
    X.h5.shards/
      manifest.json              the manifest while the store is being written
      shard-000003.h5            images, columns/<name> of shard 3 (temp file + rename)
      shard-000003.done.json     completion record: item digests (atomic rename)

Virtual-dataset source paths are stored relative ("X.h5.shards/shard-000003.h5"); HDF5
resolves them against the master file's directory before the working directory, so the
pair can be moved together and opened from anywhere (tested). Our reader takes the folder
named after the master as it is now (a renamed or copied pair reads its own shards, never
the original's), and every shard file carries the store id of its manifest, checked when
it is opened; `relink` points the VDS of a renamed master at its folder. But HDF5 keeps every source
file of a VDS open once read, and a source it cannot open (missing, or past `ulimit -n`)
reads as fill values without any error. Hence: columns are real copies (reading the table
never opens the shards), float images fill with NaN, and our own reader bypasses the VDS,
reading shard files directly with a few open at a time and checking they all exist.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import google_crc32c
import h5py
import numpy as np

from hpc.store._fs import atomic_write_json, replacing
from hpc.store.backend import NotAStore, StoreBackend, StoreReader
from hpc.store.checksum import DIGEST_SIZE
from hpc.store.damage import chunk_checksums_enabled, damaged, short_error
from hpc.store.manifest import MANIFEST_KEY, Manifest
from hpc.store.spec import StoreSpec

DIGESTS = "item_digests"
SHARD_DIR_KEY = "hpc_store_shard_dir"  # the folder the master was written beside
STORE_ID_KEY = "hpc_store_id"  # attribute of every shard file: the manifest's store_id
STAMP_FILE = "verified.json"  # in the shard folder: the last `store verify`
_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
# Every file we open is either private to one writer (a temp file renamed when done) or
# immutable once renamed, so HDF5's flock buys nothing - and fails on many parallel file
# systems ("unable to lock file") - hence locking=False throughout.


def shard_file(shard: int) -> str:
    return f"shard-{shard:06d}.h5"


CRC_DATASET = "images_crc32c"  # (n,) uint32 per shard file: crc32c of each image's bytes


def _filters(spec: StoreSpec) -> dict:
    if spec.compression == "gzip":
        return {"compression": "gzip", "compression_opts": spec.compression_level}
    return {}


def image_crcs(images: np.ndarray) -> np.ndarray:
    """crc32c of each image's C-order bytes: what the reader checks every image against.

    Not HDF5's fletcher32 filter, which every h5py reader would check too: through the
    filter pipeline it cost ~15 us per 3x128x128 image here (0.87x of the training read
    rate), our crc32c ~3-10 us (cache hot or cold); plain h5py users check with
    `store verify`."""
    frozen = np.ascontiguousarray(images).view()
    frozen.flags.writeable = False  # google_crc32c reads read-only buffers without a copy
    return np.array([google_crc32c.value(image) for image in frozen], np.uint32)


def _h5_dtype(dtype: str):
    return h5py.string_dtype("utf-8") if dtype == "str" else np.dtype(dtype)


class Hdf5Backend(StoreBackend):
    name = "hdf5"
    RECORD_NAME = "shard-{shard:06d}.done.json"
    RECORD_PATTERN = re.compile(r"^shard-(\d+)\.done\.json$")

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        # Always the folder named after the master as it is called now: a renamed pair
        # finds its own folder, and a copied master never reads the original's shards.
        self.shard_dir = path.with_name(path.name + ".shards")
        self.written_beside: str | None = None  # the folder the VDS of a finalized master names
        if path.is_file():
            try:
                with h5py.File(path, "r", locking=False) as master:
                    self.written_beside = str(master.attrs.get(SHARD_DIR_KEY, self.shard_dir.name))
            except OSError:
                pass

    @staticmethod
    def detect(path: Path) -> bool:
        if path.is_file():
            with open(path, "rb") as handle:
                return handle.read(8) == _HDF5_SIGNATURE
        if not path.name:  # "." (`store info .`): a folder, never a master file's path
            return False
        return path.with_name(path.name + ".shards").joinpath("manifest.json").is_file()

    @property
    def folder(self) -> Path:
        return self.shard_dir

    @property
    def records_dir(self) -> Path:
        return self.shard_dir

    def paths(self) -> list[Path]:
        return [self.path, self.shard_dir]

    def record_name(self, shard: int) -> str:
        return f"{self.shard_dir.name}/{self.RECORD_NAME.format(shard=shard)}"

    def read_manifest(self) -> Manifest:
        if self.path.is_file():
            try:
                with h5py.File(self.path, "r", locking=False) as master:
                    raw = master.attrs.get(MANIFEST_KEY)
            except OSError as error:
                raise damaged(
                    self.path, self.path.name, None,
                    f"(the master file) cannot be read ({short_error(error)})",
                ) from None
            if raw is None:
                raise NotAStore(
                    f"{self.path}: an HDF5 file, but not an hpc.store store "
                    f"(no '{MANIFEST_KEY}' attribute)", path=self.path, what="hdf5",
                )
            return Manifest.from_dict(json.loads(raw))
        try:
            return Manifest.from_dict(json.loads((self.shard_dir / "manifest.json").read_text()))
        except FileNotFoundError:
            raise FileNotFoundError(
                f"{self.path}: not a store (neither the file nor {self.shard_dir.name}/ exists)"
            ) from None

    def _build(self, tmp: Path, manifest: Manifest) -> None:
        """The shard folder with the manifest: the master is written at finalize."""
        tmp.mkdir()
        atomic_write_json(tmp / "manifest.json", manifest.to_dict())

    def _write_data(
        self, manifest: Manifest, shard: int, images: np.ndarray, columns: dict[str, np.ndarray]
    ) -> None:
        spec = manifest.spec
        with replacing(self.shard_dir / shard_file(shard)) as tmp:
            with h5py.File(tmp, "w", locking=False) as handle:
                if manifest.store_id is not None:
                    handle.attrs[STORE_ID_KEY] = manifest.store_id
                handle.create_dataset(
                    "images", data=images, chunks=(1, *spec.image_shape), **_filters(spec)
                )
                if chunk_checksums_enabled():
                    handle.create_dataset(CRC_DATASET, data=image_crcs(images))
                group = handle.create_group("columns")
                for name, values in columns.items():
                    group.create_dataset(name, data=values, dtype=_h5_dtype(spec.columns[name]))

    def _write_record(self, manifest: Manifest, shard: int, digests: np.ndarray) -> None:
        start, stop = manifest.shard_bounds(shard)
        atomic_write_json(
            self.record_path(shard),
            {
                "shard": shard,
                "start": start,
                "stop": stop,
                "file": shard_file(shard),
                "item_sha256": [bytes(row).hex() for row in digests],
            },
        )

    def read_digests(self, manifest: Manifest, shard: int) -> np.ndarray:
        start, stop = manifest.shard_bounds(shard)
        record = json.loads(self.record_path(shard).read_text())
        hexes = record["item_sha256"]
        if len(hexes) != stop - start:
            raise ValueError(
                f"{self.shard_dir}: record of shard {shard} has {len(hexes)} digests, "
                f"expected {stop - start}; rewrite the shard"
            )
        out = np.frombuffer(bytes.fromhex("".join(hexes)), dtype=np.uint8)
        return out.reshape(-1, DIGEST_SIZE)

    def finalize(self, manifest: Manifest, digests: np.ndarray) -> None:
        spec, n = manifest.spec, manifest.num_items
        with replacing(self.path) as tmp, h5py.File(tmp, "w", locking=False) as master:
            self._write_images_vds(master, manifest)
            columns = master.create_group("columns")
            # Numeric columns and digests checksummed too (HDF5 cannot checksum the
            # heap that holds variable-length strings).
            summed = {"fletcher32": True} if n and chunk_checksums_enabled() else {}
            for name, dtype in spec.columns.items():
                dataset = columns.create_dataset(
                    name, data=self._gather_column(manifest, name), dtype=_h5_dtype(dtype),
                    **({} if dtype == "str" else summed),
                )
                dataset.attrs.update(spec.column_info.get(name, {}))
            master.create_dataset(
                DIGESTS, data=np.asarray(digests, dtype=np.uint8).reshape(n, DIGEST_SIZE),
                **summed,
            )
            master.attrs[MANIFEST_KEY] = json.dumps(manifest.to_dict())
            master.attrs[SHARD_DIR_KEY] = self.shard_dir.name

    def _write_images_vds(self, master: h5py.File, manifest: Manifest) -> None:
        spec, n = manifest.spec, manifest.num_items
        shape = (n, *spec.image_shape)
        if n == 0:
            master.create_dataset("images", shape=shape, dtype=spec.image_dtype)
            return
        layout = h5py.VirtualLayout(shape=shape, dtype=spec.image_dtype)
        for shard in range(manifest.num_shards):
            start, stop = manifest.shard_bounds(shard)
            source = f"{self.shard_dir.name}/{shard_file(shard)}"  # relative: see module docstring
            layout[start:stop] = h5py.VirtualSource(
                source, "images", shape=(stop - start, *spec.image_shape)
            )
        fill = np.nan if spec.image_dtype.startswith("float") else 0
        master.create_virtual_dataset("images", layout, fillvalue=fill)

    def _gather_column(self, manifest: Manifest, name: str) -> np.ndarray:
        dtype = manifest.spec.columns[name]
        parts = []
        for shard in range(manifest.num_shards):
            with h5py.File(self.shard_dir / shard_file(shard), "r", locking=False) as handle:
                dataset = handle["columns"][name]
                parts.append(dataset.asstr()[:] if dtype == "str" else dataset[:])
        if not parts:
            return np.empty(0, dtype=object if dtype == "str" else dtype)
        return np.concatenate(parts)

    def check_present(self, manifest: Manifest) -> None:
        """The shard folder and every shard file exist (a stat each); StoreDamaged if not.
        Sizes, store ids and contents are checked as each file is first read."""
        folder = self.shard_dir.name
        if not self.shard_dir.is_dir():
            old = self.written_beside
            if old and old != folder and (self.path.parent / old).is_dir():
                # A renamed or copied master alone: never read another folder's shards.
                raise damaged(
                    self.path, f"{folder}/", (0, manifest.num_items),
                    f"is missing ({self.path.name} was written beside {old}/)",
                    f"an HDF5 store is the master and its shard folder together: rename or "
                    f"copy {old}/ to {folder}/ along with the master",
                )
            raise damaged(self.path, f"{folder}/", (0, manifest.num_items), "is missing")
        lost = [
            shard for shard in range(manifest.num_shards)
            if not (self.shard_dir / shard_file(shard)).is_file()
        ]
        if lost:
            more = f" ({len(lost)} of {manifest.num_shards} shard files are missing)"
            raise damaged(self.path, f"{folder}/{shard_file(lost[0])}",
                          manifest.shard_bounds(lost[0]), "is missing" + more * (len(lost) > 1))

    def check_shards(self, manifest: Manifest, shards: list[int]) -> None:
        from hpc.store.hdf5_reader import open_checked_shard

        for shard in shards:
            open_checked_shard(self.path, self.shard_dir, manifest, shard).close()

    def stale_link(self) -> str | None:
        """The folder a renamed master's virtual dataset still names."""
        old = self.written_beside
        return old if old and old != self.shard_dir.name else None

    def relink(self, manifest: Manifest) -> bool:
        """Point the master's virtual `images` at the folder named after it now (after a
        rename, plain h5py would read the old folder or fill values). The master is
        rewritten aside and renamed into place. Returns whether anything changed."""
        if self.written_beside in (None, self.shard_dir.name):
            return False
        with replacing(self.path) as tmp:
            shutil.copyfile(self.path, tmp)
            with h5py.File(tmp, "r+", locking=False) as master:
                del master["images"]
                self._write_images_vds(master, manifest)
                master.attrs[SHARD_DIR_KEY] = self.shard_dir.name
        self.written_beside = self.shard_dir.name
        return True

    def read_stamp(self) -> dict[str, Any] | None:
        try:
            return json.loads((self.shard_dir / STAMP_FILE).read_text())
        except (FileNotFoundError, ValueError):
            return None

    def write_stamp(self, stamp: dict[str, Any]) -> None:
        atomic_write_json(self.shard_dir / STAMP_FILE, stamp)

    def reader(self, manifest: Manifest) -> StoreReader:
        from hpc.store.hdf5_reader import Hdf5Reader

        return Hdf5Reader(self.path, self.shard_dir, manifest)
