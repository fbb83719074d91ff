"""Stores of real deep-field cutouts with known duplicates, for the dedup tests.

The cutouts are 64 px tiles of the Hubble Deep Field image scikit-image ships (real HST
data: galaxies, stars and sky noise), a grid of distinct tiles; after them come copies
of some tiles, each made the way duplicates reach a training set: cut one pixel off,
re-encoded as JPEG, flipped, turned, copied with its id, copied under another id.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from support.stores import write_array_store

SIDE = 64
NUM_DISTINCT = 48


def _jpeg(image: np.ndarray, quality: int = 75) -> np.ndarray:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image.transpose(1, 2, 0)).save(buffer, "JPEG", quality=quality)
    return np.asarray(Image.open(io.BytesIO(buffer.getvalue()))).transpose(2, 0, 1)


def deep_field_case() -> tuple[np.ndarray, list[str], dict[int, int]]:
    """(images, ids, {copy index: original index}) of the tiles and their copies."""
    import skimage.data

    field = np.ascontiguousarray(skimage.data.hubble_deep_field().transpose(2, 0, 1))
    corners = [(r * SIDE, c * SIDE) for r in range(13) for c in range(15)
               if r * SIDE + SIDE + 1 <= field.shape[1] and c * SIDE + SIDE + 1 <= field.shape[2]]
    corners = corners[::len(corners) // NUM_DISTINCT][:NUM_DISTINCT]
    tiles = [field[:, r:r + SIDE, c:c + SIDE] for r, c in corners]
    ids = [f"hdf-{r}-{c}" for r, c in corners]
    copies = []  # (original, image, id)
    r, c = corners[3]
    copies.append((3, field[:, r + 1:r + 1 + SIDE, c:c + SIDE], "shifted-down"))
    r, c = corners[5]
    copies.append((5, field[:, r:r + SIDE, c + 1:c + 1 + SIDE], "shifted-right"))
    copies.append((7, _jpeg(tiles[7]), "jpeg"))
    copies.append((11, tiles[11][:, :, ::-1], "flipped"))
    copies.append((13, np.rot90(tiles[13][:, ::-1], 1, axes=(1, 2)), "flipped-turned"))
    copies.append((20, tiles[20], ids[20]))  # the same item again: equal item digests
    copies.append((25, tiles[25], "renamed"))  # the same image under another id
    duplicates = {}
    for original, image, name in copies:
        duplicates[len(tiles)] = original
        tiles.append(np.ascontiguousarray(image))
        ids.append(name)
    return np.stack(tiles).astype(np.uint8), ids, duplicates


def write_store(out: Path, images: np.ndarray, ids: list[str], shard_size: int = 16) -> Path:
    return write_array_store(out, images, {"id": ids}, shard_size=shard_size)


@pytest.fixture(scope="session")
def deep_field(tmp_path_factory) -> dict:
    images, ids, duplicates = deep_field_case()
    store = write_store(tmp_path_factory.mktemp("dedup") / "field.zarr", images, ids)
    return {"store": store, "ids": ids, "duplicates": duplicates, "num": len(images)}


@pytest.fixture(scope="session")
def synth_field(tmp_path_factory) -> dict:
    """GalSim galaxies of `galaxy-hpc synth` (centred, 64 px colour composites) with copies
    of four: rolled one pixel right (the wrapped column is sky), JPEG, flipped, turned."""
    from support.stores import write_synth_store

    root = tmp_path_factory.mktemp("dedup-synth")
    source = write_synth_store(root / "synth.zarr", num_galaxies=48, seed=11, shard_size=16,
                               captions=False)
    from hpc.store import open_store

    tiles = list(open_store(source).read_images())
    copies = [(2, np.roll(tiles[2], 1, axis=-1)), (9, _jpeg(tiles[9])),
              (17, tiles[17][:, ::-1, :]), (30, np.rot90(tiles[30], 1, axes=(1, 2)))]
    duplicates = {}
    for original, image in copies:
        duplicates[len(tiles)] = original
        tiles.append(np.ascontiguousarray(image))
    ids = [f"g{k}" for k in range(len(tiles))]
    store = write_store(root / "with_copies.zarr", np.stack(tiles), ids)
    return {"store": store, "duplicates": duplicates, "num": len(tiles)}
