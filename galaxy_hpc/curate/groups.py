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
from typing import Any

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


def near_pairs(embeddings: np.ndarray, threshold: float, neighbours: int, *,
               index_kind: str = "flat", nprobe: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """(i, j) with i < j and max over transforms of cos >= threshold, from a FAISS
    inner-product index of the identity embeddings; embeddings are (N, T, D)."""
    num_items, num_transforms, _ = embeddings.shape
    if num_items < 2:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    index = build_index(normalised(embeddings[:, 0]), index_kind, nprobe)
    k = min(neighbours + 1, num_items)
    found_i, found_j = [], []
    for t in range(num_transforms):
        for lo in range(0, num_items, QUERY_CHUNK):
            queries = normalised(embeddings[lo:lo + QUERY_CHUNK, t])
            sims, idx = index.search(queries, k)
            rows = np.repeat(np.arange(lo, lo + len(queries)), k).reshape(-1, k)
            hit = (sims >= threshold) & (idx >= 0) & (idx != rows)
            found_i.append(rows[hit])
            found_j.append(idx[hit])
    i, j = np.concatenate(found_i), np.concatenate(found_j)
    pairs = np.unique(np.stack([np.minimum(i, j), np.maximum(i, j)], axis=1), axis=0)
    return pairs[:, 0], pairs[:, 1]


def _exact_groups(keys: np.ndarray) -> list[np.ndarray]:
    """Index arrays of items sharing a key (rows of a (N, K) uint8 array), size >= 2."""
    _, inverse, counts = np.unique(keys, axis=0, return_inverse=True, return_counts=True)
    inverse = inverse.reshape(-1)
    return [np.flatnonzero(inverse == g) for g in np.flatnonzero(counts > 1)]


def best_similarity(embeddings: np.ndarray, item: int, kept: int) -> float:
    """max over the item's transforms of cos(T item, kept)."""
    query = normalised(embeddings[item])
    return float((query @ normalised(embeddings[kept, 0])).max())


def plan_duplicates(embeddings: np.ndarray, item_digests: np.ndarray,
                    image_hashes: np.ndarray, *, threshold: float, neighbours: int,
                    index_kind: str = "flat", nprobe: int = 16) -> DuplicatePlan:
    num_items = len(embeddings)
    joins = UnionFind(num_items)
    for keys in (item_digests, image_hashes):
        for members in _exact_groups(keys):
            for member in members[1:]:
                joins.union(int(members[0]), int(member))
    for a, b in zip(*near_pairs(embeddings, threshold, neighbours, index_kind=index_kind,
                                nprobe=nprobe)):
        joins.union(int(a), int(b))
    roots = np.array([joins.find(i) for i in range(num_items)])
    duplicate_of = np.where(roots == np.arange(num_items), -1, roots).astype(np.int64)
    similarity = np.full(num_items, np.nan)
    reason = np.full(num_items, "", dtype=object)
    groups: dict[int, list[int]] = {}
    for item in np.flatnonzero(duplicate_of >= 0):
        kept = int(duplicate_of[item])
        groups.setdefault(kept, [kept]).append(int(item))
        if (item_digests[item] == item_digests[kept]).all():
            reason[item], similarity[item] = "exact item", 1.0
        elif (image_hashes[item] == image_hashes[kept]).all():
            reason[item], similarity[item] = "exact image", 1.0
        else:
            reason[item] = "near"
            similarity[item] = best_similarity(embeddings, int(item), kept)
    ordered = sorted(groups.values(), key=lambda members: (-len(members), members[0]))
    return DuplicatePlan(num_items, duplicate_of, similarity, reason, ordered)

