"""A store of two kinds of galaxies whose captions say which kind each is, and the tiny
CLIP (support/tiny_clip.py) fitted to it.

`trained_clip` fits the tiny CLIP contrastively to that store for a few seconds, so that
an image's own caption scores higher than the other kind's: a model whose CLIP score has
something to measure (a random one's does not).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from support.stores import write_array_store
from support.tiny_clip import IMAGE_SIDE, tiny_clip

CAPTIONS = ("a smooth round elliptical galaxy", "a thin edge on disk galaxy")


def two_kinds_store(out: Path, num: int, seed: int, *, swap_captions: bool = False) -> Path:
    """uint8 RGB galaxies: even items round, odd items thin and tilted, with noise; the
    caption column says which (or, with swap_captions, the other kind)."""

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:IMAGE_SIDE, 0:IMAGE_SIDE] - (IMAGE_SIDE - 1) / 2
    images, captions = [], []
    for k in range(num):
        angle = rng.uniform(0, np.pi)
        u = xx * np.cos(angle) + yy * np.sin(angle)
        v = -xx * np.sin(angle) + yy * np.cos(angle)
        scale = rng.uniform(0.8, 1.2)
        a, b = (5.0 * scale, 5.0 * scale) if k % 2 == 0 else (9.0 * scale, 1.6 * scale)
        light = np.exp(-0.5 * ((u / a) ** 2 + (v / b) ** 2))
        colour = np.array([1.0, 0.85, 0.7])[:, None, None]
        pixels = 230 * light[None] * colour + rng.normal(0, 8, (3, IMAGE_SIDE, IMAGE_SIDE))
        images.append(np.clip(pixels, 0, 255).astype(np.uint8))
        captions.append(CAPTIONS[(k + swap_captions) % 2])
    return write_array_store(out, np.stack(images), {"caption": captions}, shard_size=16)


def trained_clip(out: Path, store_path: Path, *, steps: int = 100, seed: int = 0) -> Path:
    """The tiny CLIP fitted to the store's images and captions, then saved at `out`.

    CLIP's loss over a batch of pairs, with the batch's distinct captions as the texts
    (its own loss counts a repeated caption as a wrong answer for its twin)."""
    import torch

    from hpc.store import open_store

    store = open_store(store_path)
    images = torch.from_numpy(store.read_images())
    captions = [str(c) for c in store.read_column("caption")]
    texts = sorted(set(captions))
    target = torch.tensor([texts.index(c) for c in captions])
    model, processor = tiny_clip(out, texts, seed=seed)
    tokens = processor(text=texts, return_tensors="pt", padding=True)
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3)
    model.train()
    for _ in range(steps):
        pick = torch.randperm(len(images), generator=generator)[:16]
        pixels = processor(images=list(images[pick]), return_tensors="pt")["pixel_values"]
        image = model.get_image_features(pixel_values=pixels).pooler_output
        text = model.get_text_features(**tokens).pooler_output
        logits = model.logit_scale.exp() * torch.nn.functional.normalize(image, dim=-1) \
            @ torch.nn.functional.normalize(text, dim=-1).T
        loss = torch.nn.functional.cross_entropy(logits, target[pick])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return out
