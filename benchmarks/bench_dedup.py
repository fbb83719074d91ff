"""Dedup benchmark: embeddings/s, FAISS index and search time at 100k items, and how well
the pixel fingerprint separates copies from distinct cutouts.

    .venv/bin/python benchmarks/bench_dedup.py [--num-items 100000] [--dim 1024]
        [--num-queries 1000] [--num-embed 2048] [--threads 1] [--json]

1. Separation (real images): 64 px tiles of the Hubble Deep Field that scikit-image ships;
   the largest cosine between distinct tiles (best of the 8 flips/turns) against the
   smallest between a tile and its copy shifted one pixel, JPEG-75 re-encoded, flipped.
   The default threshold (0.6) must fall between them.
2. Embeddings/s: `galaxy-hpc dedup`'s pixel extractor on uint8 64 px images in batches of
   64, with the 8 d4 transforms and without, one process (the per-rank rate; ranks split
   shards, so K ranks on K cores give ~K x).
3. FAISS at `--num-items` synthetic unit vectors of `--dim` numbers (1,024 is the pixel
   fingerprint's; 512 CLIP's) with 1% planted near duplicates (cosine ~0.8): the time to
   build a flat (exact) and an IVF index, and the search time of `--num-queries` queries
   (k = 17), extrapolated to the N x T queries a full run makes (search time is linear in
   the queries); recall of the planted pairs by IVF against flat.

Figures are printed (and with --json one JSON line). Runs on the CPU, with --threads
torch and FAISS threads (1 by default: the rate of one core, which ranks multiply).
"""

from __future__ import annotations

import argparse
import io
import json
import time

import numpy as np
import torch


def deep_field_tiles(side: int = 64):
    import skimage.data

    field = np.ascontiguousarray(skimage.data.hubble_deep_field().transpose(2, 0, 1))
    corners = [(r, c) for r in range(0, field.shape[1] - side - 1, side)
               for c in range(0, field.shape[2] - side - 1, side)]
    return field, corners


def _jpeg(image: np.ndarray) -> np.ndarray:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image.transpose(1, 2, 0)).save(buffer, "JPEG", quality=75)
    return np.asarray(Image.open(io.BytesIO(buffer.getvalue()))).transpose(2, 0, 1)


def separation() -> dict:
    from galaxy_hpc.curate.embedders import build_embedder
    from galaxy_hpc.curate.groups import normalised

    field, corners = deep_field_tiles()
    side = 64
    tiles = np.stack([field[:, r:r + side, c:c + side] for r, c in corners])
    embedder = build_embedder("pixels", weights=None, extractor_module=None,
                              device=torch.device("cpu"))

    def embed(images):
        return normalised(embedder.embed(torch.from_numpy(np.ascontiguousarray(images)), "d4"))

    base = embed(tiles)
    sims = np.max(np.einsum("itd,jd->ijt", base, base[:, 0]), axis=-1)
    np.fill_diagonal(sims, -1.0)
    copies = {
        "shift_1px": np.stack([field[:, r + 1:r + 1 + side, c:c + side] for r, c in corners]),
        "jpeg_75": np.stack([_jpeg(t) for t in tiles]),
        "flipped": tiles[:, :, :, ::-1],
    }
    worst = {name: float(np.min(np.max(np.einsum("itd,id->it", embed(images), base[:, 0]),
                                       axis=-1)))
             for name, images in copies.items()}
    return {"num_tiles": len(tiles), "distinct_max": float(sims.max()),
            "distinct_p999": float(np.quantile(sims[sims > -1], 0.999)),
            "copies_min": worst}


def embed_rate(num: int) -> dict:
    from galaxy_hpc.curate.embedders import build_embedder

    field, corners = deep_field_tiles()
    rng = np.random.default_rng(0)
    rows = rng.integers(0, field.shape[1] - 64, num)
    cols = rng.integers(0, field.shape[2] - 64, num)
    images = torch.from_numpy(np.stack([field[:, r:r + 64, c:c + 64] for r, c in zip(rows, cols)]))
    embedder = build_embedder("pixels", weights=None, extractor_module=None,
                              device=torch.device("cpu"))
    rates = {}
    for transforms in ("d4", "none"):
        embedder.embed(images[:64], transforms)  # warm-up
        start = time.perf_counter()
        for lo in range(0, num, 64):
            embedder.embed(images[lo:lo + 64], transforms)
        rates[transforms] = num / (time.perf_counter() - start)
    return {"num_images": num, "images_per_second": rates}


def faiss_times(num: int, dim: int, num_queries: int) -> dict:
    import faiss

    from galaxy_hpc.curate.groups import build_index, normalised

    rng = np.random.default_rng(1)
    base = rng.standard_normal((num, dim), dtype=np.float32)
    planted = rng.choice(num, num // 100, replace=False)
    sources = rng.choice(np.setdiff1d(np.arange(num), planted), len(planted), replace=False)
    base[planted] = base[sources] + 0.75 * rng.standard_normal((len(planted), dim),
                                                               dtype=np.float32)
    base = normalised(base)
    queries = base[planted[:num_queries]]
    out = {"num_items": num, "dim": dim, "num_queries": len(queries),
           "threads": faiss.omp_get_max_threads()}
    found = {}
    for kind in ("flat", "ivf"):
        start = time.perf_counter()
        index = build_index(base, kind, nprobe=16)
        built = time.perf_counter() - start
        start = time.perf_counter()
        sims, idx = index.search(queries, 17)
        searched = time.perf_counter() - start
        per_query = searched / len(queries)
        found[kind] = (idx == sources[:len(queries), None]).any(axis=1)
        out[kind] = {"build_seconds": built, "search_seconds": searched,
                     "queries_per_second": 1 / per_query,
                     "full_run_seconds_T1": built + per_query * num,
                     "full_run_seconds_T8": built + per_query * num * 8,
                     "planted_found": float(found[kind].mean())}
    cos = np.einsum("id,id->i", base[planted], base[sources])
    out["planted_cosine_median"] = float(np.median(cos))
    out["ivf_recall_vs_flat"] = float((found["ivf"] & found["flat"]).sum()
                                      / max(found["flat"].sum(), 1))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    parser.add_argument("--num-items", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=1024)
    parser.add_argument("--num-queries", type=int, default=1000)
    parser.add_argument("--num-embed", type=int, default=2048)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch and FAISS threads (default 1: the per-core rate; on a "
                        "loaded machine more threads than free cores run slower)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    import faiss

    torch.set_num_threads(args.threads)
    faiss.omp_set_num_threads(args.threads)
    figures = {"separation": separation(), "embedding": embed_rate(args.num_embed),
               "faiss": faiss_times(args.num_items, args.dim, args.num_queries)}
    s, e, f = figures["separation"], figures["embedding"], figures["faiss"]
    print(f"separation on {s['num_tiles']} deep-field tiles: distinct max {s['distinct_max']:.3f} "
          f"(99.9% {s['distinct_p999']:.3f}); copies min " + ", ".join(
              f"{k} {v:.3f}" for k, v in s["copies_min"].items()))
    print(f"pixel embeddings: {e['images_per_second']['d4']:,.0f} images/s with d4, "
          f"{e['images_per_second']['none']:,.0f} without (one process, "
          f"{torch.get_num_threads()} torch threads)")
    for kind in ("flat", "ivf"):
        k = f[kind]
        print(f"FAISS {kind} at {f['num_items']:,} x {f['dim']}: build {k['build_seconds']:.2f} s, "
              f"{k['queries_per_second']:,.0f} queries/s -> full run {k['full_run_seconds_T1']:,.0f} s "
              f"(transforms none) / {k['full_run_seconds_T8']:,.0f} s (d4); planted pairs "
              f"found {k['planted_found']:.1%}")
    print(f"planted cosine median {f['planted_cosine_median']:.3f}; IVF recall vs flat "
          f"{f['ivf_recall_vs_flat']:.1%}; FAISS threads {f['threads']}")
    if args.json:
        print(json.dumps(figures))


if __name__ == "__main__":
    main()
