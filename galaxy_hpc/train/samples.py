"""Sample grids: a PNG of generated images, written during and after training, and beside
it the JSON recipe that redraws it from the run's export with the ecosystem's own tools."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np


def grid_columns(count: int) -> int:
    """Tiles per row of a grid of `count` images: about square."""
    return math.ceil(math.sqrt(count))


def write_recipe(grid: Path, recipe: dict[str, Any]) -> Path:
    """`samples/step-N.json` beside `samples/step-N.png`: tile k of the grid (row-major,
    `grid_columns` a row) is image k of the recipe's draw."""
    path = Path(grid).with_suffix(".json")
    path.write_text(json.dumps(recipe, indent=1, sort_keys=True) + "\n")
    return path


def write_grid(images: np.ndarray, path: str | Path, *, columns: int | None = None,
               zoom: int = 1) -> Path:
    """Tile (N, 3, H, W) uint8 images into one PNG (rows of `columns`, default ~square)."""
    from PIL import Image

    images = np.asarray(images)
    if images.ndim != 4 or images.shape[1] not in (1, 3) or images.dtype != np.uint8:
        raise ValueError(f"expected uint8 images (N, 1|3, H, W), got {images.dtype} {images.shape}")
    count, channels, height, width = images.shape
    columns = columns or grid_columns(count)
    rows = math.ceil(count / columns)
    grid = np.zeros((rows * height, columns * width, 3), dtype=np.uint8)
    for k, image in enumerate(images):
        row, col = divmod(k, columns)
        tile = np.repeat(image, 3, axis=0) if channels == 1 else image
        grid[row * height:(row + 1) * height, col * width:(col + 1) * width] = tile.transpose(1, 2, 0)
    picture = Image.fromarray(grid)
    if zoom > 1:
        picture = picture.resize((grid.shape[1] * zoom, grid.shape[0] * zoom), Image.NEAREST)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    picture.save(path)
    return path
