"""Real vs generated image grids, one pair per class, as PNG files.

A galaxy's class is its main GZ2 class (galaxy_hpc.data.main_class: smooth, disk,
spiral, edge_on, artifact, by majority down the tree) when the store has the 37
vote-fraction columns, else the value of a `class` or `label` column, else the class its
caption names, else every galaxy is in one class "all". The augmentation experiment
uses the same classes. Images are shown the way the
feature extractor saw them (inputs.py: uint8 RGB unchanged, flux through the real
store's stretch), so the pictures and the FID describe the same pixels.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from galaxy_hpc.data.gz2 import ANSWERS, column_name
from galaxy_hpc.data.main_class import CLASS_COLUMNS, caption_classes, main_classes
from galaxy_hpc.evaluate.inputs import ExtractorInput, extractor_input
from galaxy_hpc.evaluate.passes import spaced_indices
from hpc.store import Store


def classes(store: Store) -> np.ndarray:
    """(N,) class name of every galaxy (see the module docstring)."""
    names = [column_name(answer) for answer in ANSWERS]
    if all(name in store.spec.columns for name in names):
        return main_classes(np.stack([store.read_column(name) for name in names], axis=1))
    for name in CLASS_COLUMNS:
        if store.spec.columns.get(name) == "str":
            # object first: numpy's StringDType (what stores return) cannot cast to str
            return np.array([str(v) for v in np.asarray(store.read_column(name), dtype=object)],
                            dtype=object)
    if store.spec.columns.get("caption") == "str":
        return caption_classes(store.read_column("caption"))
    return np.full(len(store), "all", dtype=object)


def _tile(images: np.ndarray, columns: int, scale: int) -> Image.Image:
    """(N, 3, H, W) uint8 -> one image of `columns` columns, a 2-pixel grey gap between."""
    n, _, h, w = images.shape
    columns = max(1, min(columns, n))
    rows = max(1, -(-n // columns))
    gap = 2
    sheet = np.full((rows * (h + gap) + gap, columns * (w + gap) + gap, 3), 64, np.uint8)
    for k in range(n):
        r, c = divmod(k, columns)
        y, x = gap + r * (h + gap), gap + c * (w + gap)
        sheet[y:y + h, x:x + w] = images[k].transpose(1, 2, 0)
    picture = Image.fromarray(sheet)
    return picture.resize((picture.width * scale, picture.height * scale), Image.NEAREST)


def pixel_map(real: Store, generated: Store, rgb_bands: list[int] | None = None
              ) -> tuple[ExtractorInput, ExtractorInput]:
    """The map for each store: the shared one when they compare, else each its own.
    `rgb_bands`: the bands the FID showed as R, G, B (its result records them)."""
    try:
        shared = extractor_input(real, generated, rgb_bands=rgb_bands)
        return shared, shared
    except ValueError:
        return extractor_input(real, real), extractor_input(generated, generated)


def write_grids(real: Store, generated: Store, folder: Path, *, per_class: int = 8,
                columns: int = 8, max_classes: int = 6, baseline: Store | None = None,
                rgb_bands: list[int] | None = None) -> list[dict[str, object]]:
    """One real and one generated PNG per class (the most common classes first), and one
    of the `baseline` store (e.g. the same model untrained) when given, drawn through the
    generated store's map so that the two models' pictures compare pixel for pixel."""
    maps = dict(zip(("real", "generated"), pixel_map(real, generated, rgb_bands)))
    sides = [("real", real)] + ([("baseline", baseline)] if baseline is not None else []) \
        + [("generated", generated)]
    if baseline is not None:
        maps["baseline"] = pixel_map(real, baseline, rgb_bands)[1]
    labels = {side: classes(store) for side, store in sides}
    names, counts = np.unique(np.concatenate(list(labels.values())), return_counts=True)
    order = [str(n) for n in names[np.argsort(-counts, kind="stable")]][:max_classes]
    scale = max(1, 128 // max(store.spec.image_shape[-1] for _, store in sides))
    grids = []
    for k, name in enumerate(order):
        entry: dict[str, object] = {"class": name}
        for side, store in sides:
            members = np.flatnonzero(labels[side] == name)
            entry[f"num_{side}"] = int(len(members))
            if not len(members):
                entry[side] = None
                continue
            picked = members[spaced_indices(len(members), per_class)]
            images = maps[side].to_uint8(store.read_images_at(picked)).numpy()
            file = f"grid-{k}-{side}.png"
            _tile(images, columns, scale).save(folder / file)
            entry[side] = file
        grids.append(entry)
    return grids
