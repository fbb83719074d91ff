"""Duplicate groups: exact matches, then FAISS neighbours above a cosine threshold.

Cosine similarity is the inner product of L2-normalised vectors, searched exactly with
faiss.IndexFlatIP over the items as stored (or approximately, with inverted lists); each item is queried once per transform (the
8 flips and quarter turns with d4), so cos(a, T b) counts for every T. A pair at or above
the threshold joins two items, and groups are the connected parts of those joins (a chain
a~b~c is one group even when a and c alone would not pass: the CSV gives each removed
item's own similarity to the one kept). Items with equal item digests (image and every
column) or equal image bytes are joined first, as exact duplicates.

The rule for what stays: each group keeps its lowest store index (the first ingested
copy; the same answer on every run and any number of ranks). Every other member is
removed and names the kept item it duplicates.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

QUERY_CHUNK = 4096  # query vectors searched at a time (bounds the memory of the results)


class UnionFind:
    def __init__(self, size: int) -> None:
        self.parent = np.arange(size)

    def find(self, item: int) -> int:
        root = item
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[item] != root:  # path compression
            self.parent[item], item = root, self.parent[item]
        return int(root)

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:  # the smaller index becomes the root: the root is the kept item
            self.parent[max(ra, rb)] = min(ra, rb)


@dataclass
class DuplicatePlan:
    """What dedup decided: per item, kept or the index it duplicates, and why."""

    num_items: int
    duplicate_of: np.ndarray  # int64, -1 for kept items
    similarity: np.ndarray  # float64: cosine to the kept item (1.0 for exact), nan if kept
    reason: np.ndarray  # object: "", "exact item", "exact image", "near"
    groups: list[list[int]] = field(default_factory=list)  # members, kept (lowest) first

    @property
    def keep(self) -> np.ndarray:
        return self.duplicate_of < 0

    def counts(self) -> dict[str, int]:
        reasons = self.reason[~self.keep]
        return {"items": self.num_items, "kept": int(self.keep.sum()),
                "removed": int((~self.keep).sum()), "groups": len(self.groups),
                "exact_item": int((reasons == "exact item").sum()),
                "exact_image": int((reasons == "exact image").sum()),
                "near": int((reasons == "near").sum())}


def normalised(vectors: np.ndarray) -> np.ndarray:
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


def build_index(base: np.ndarray, kind: str = "flat", nprobe: int = 16) -> Any:
    """A FAISS inner-product index of the (normalised) rows of `base`: exact (flat), or
    inverted lists over ~4 sqrt(N) k-means cells (ivf; trained on the rows themselves)."""
    import faiss

    num, dim = base.shape
    cells = max(1, min(int(4 * np.sqrt(num)), num // 39))  # FAISS wants >= 39 rows a cell
    if kind == "flat" or cells < 2:
        index = faiss.IndexFlatIP(dim)
    else:
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, cells,
                                   faiss.METRIC_INNER_PRODUCT)
        index.train(base)
        index.nprobe = min(nprobe, cells)
    index.add(base)
    return index


def near_pairs(base: np.ndarray, queries: np.ndarray, offset: int, threshold: float,
               neighbours: int, *, index_kind: str = "flat", nprobe: int = 16
               ) -> tuple[np.ndarray, np.ndarray]:
    """(i, j), i < j, with max over transforms of cos >= threshold: the items
    offset + q of `queries` ((n, T, D), every transform of each) searched in an index of
    `base` ((N, D), every item as stored). Ranks each search their own slice of items."""
    num_items = len(base)
    if num_items < 2 or len(queries) == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    index = build_index(normalised(base), index_kind, nprobe)
    k = min(neighbours + 1, num_items)
    found_i, found_j = [], []
    for t in range(queries.shape[1]):
        for lo in range(0, len(queries), QUERY_CHUNK):
            chunk = normalised(queries[lo:lo + QUERY_CHUNK, t])
            sims, idx = index.search(chunk, k)
            rows = np.repeat(np.arange(offset + lo, offset + lo + len(chunk)), k).reshape(-1, k)
            hit = (sims >= threshold) & (idx >= 0) & (idx != rows)
            found_i.append(rows[hit])
            found_j.append(idx[hit])
    i, j = np.concatenate(found_i), np.concatenate(found_j)
    if len(i) == 0:
        return i, j
    pairs = np.unique(np.stack([np.minimum(i, j), np.maximum(i, j)], axis=1), axis=0)
    return pairs[:, 0], pairs[:, 1]


def _exact_groups(keys: np.ndarray) -> list[np.ndarray]:
    """Index arrays of items sharing a key (rows of a (N, K) uint8 array), size >= 2."""
    _, inverse, counts = np.unique(keys, axis=0, return_inverse=True, return_counts=True)
    inverse = inverse.reshape(-1)
    return [np.flatnonzero(inverse == g) for g in np.flatnonzero(counts > 1)]


def best_similarities(items: np.ndarray, kept: np.ndarray,
                      load: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """max over transforms of cos(T item, kept) for each pair; `load(sorted indices)`
    gives their (n, T, D) embeddings."""
    if len(items) == 0:
        return np.empty(0)
    needed = np.unique(np.concatenate([items, kept]))
    rows = {int(index): k for k, index in enumerate(needed)}
    vectors = normalised(load(needed))
    return np.array([float((vectors[rows[int(a)]] @ vectors[rows[int(b)], 0]).max())
                     for a, b in zip(items, kept)])


def plan_duplicates(num_items: int, pairs: tuple[np.ndarray, np.ndarray],
                    item_digests: np.ndarray, image_hashes: np.ndarray,
                    load: Callable[[np.ndarray], np.ndarray]) -> DuplicatePlan:
    """Groups from the exact keys and the near pairs; `load` as best_similarities."""
    joins = UnionFind(num_items)
    for keys in (item_digests, image_hashes):
        for members in _exact_groups(keys):
            for member in members[1:]:
                joins.union(int(members[0]), int(member))
    for a, b in zip(*pairs):
        joins.union(int(a), int(b))
    roots = np.array([joins.find(i) for i in range(num_items)], dtype=np.int64)
    duplicate_of = np.where(roots == np.arange(num_items), -1, roots).astype(np.int64)
    similarity = np.full(num_items, np.nan)
    reason = np.full(num_items, "", dtype=object)
    groups: dict[int, list[int]] = {}
    near = []
    for item in np.flatnonzero(duplicate_of >= 0):
        kept = int(duplicate_of[item])
        groups.setdefault(kept, [kept]).append(int(item))
        if (item_digests[item] == item_digests[kept]).all():
            reason[item], similarity[item] = "exact item", 1.0
        elif (image_hashes[item] == image_hashes[kept]).all():
            reason[item], similarity[item] = "exact image", 1.0
        else:
            reason[item] = "near"
            near.append(int(item))
    near_items = np.array(near, dtype=np.int64)
    similarity[near_items] = best_similarities(near_items, duplicate_of[near_items], load)
    ordered = sorted(groups.values(), key=lambda members: (-len(members), members[0]))
    return DuplicatePlan(num_items, duplicate_of, similarity, reason, ordered)
