"""`evaluate clipscore`: how well generated galaxies show the captions they were made from.

Every rank loads the CLIP folder (clip_local.py), takes its whole batches of the global
batch grid (passes.py: the same batches on 1 or 64 ranks, so the same numbers), turns the
images into uint8 RGB as FID does (inputs.py) and scores each against its caption. One
allgather brings the per-image scores to every rank (8 bytes an image); rank 0 writes them
to the cache (cache.py), keyed by the store's checksum, the CLIP folder's fingerprint, the
pixel map and the caption column, so a second run over the same catalog reads them back.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import numpy as np

from galaxy_hpc.data.nonfinite import NonFinitePixels, check_column
from galaxy_hpc.evaluate.cache import CacheKey, CacheOutcome, StatsCache
from galaxy_hpc.evaluate.clip_local import load_clip
from galaxy_hpc.evaluate.config import ClipScoreConfig, default_cache_dir, require
from galaxy_hpc.evaluate.extractors import fingerprint, pick_device
from galaxy_hpc.evaluate.inputs import extractor_input
from galaxy_hpc.evaluate.passes import progress, rank_batches, read_batches, shared_failure
from galaxy_hpc.evaluate.results import EvaluationResult, store_summary
from hpc.comm import Comm, job_comm, on_root
from hpc.dist import resolve_env
from hpc.store import Store, open_store


class ClipScoreResult(EvaluationResult):
    def summary(self) -> str:
        d, m = self.data, self.data["metrics"]
        cache = d["cache"]
        cached = {"hit": f"read from the cache ({cache['file']})",
                  "miss": f"computed, cached in {cache['file']}",
                  "off": "computed (cache off)"}[cache["status"]]
        return "\n".join([
            f"CLIP score {m['clip_score_mean']:.3f} +- {m['clip_score_std']:.3f} (std over "
            f"images; min {m['clip_score_min']:.3f}, max {m['clip_score_max']:.3f})",
            f"CLIP {d['clip']['folder']}; captions from column {d['caption_column']!r}",
            f"images: {d['num_generated']:,}; {d['input_description']}",
            f"ran on {d['num_ranks']} rank(s), {d['device']}, {d['seconds']:.1f} s; "
            f"per-image scores {cached}"])


def _captions(store: Store, column: str) -> np.ndarray:
    if column not in store.columns:
        raise ValueError(f"{store.path} has no {column!r} column (its columns: "
                         f"{', '.join(store.columns) or 'none'}): give caption_column")
    return store.read_column(column)


def run_clipscore(cfg: ClipScoreConfig, *, show_progress: bool = True,
                  comm: Comm | None = None) -> ClipScoreResult:
    """Collective: run on every rank; every rank returns the same result."""
    start = time.perf_counter()
    env = resolve_env(cuda_available=False)
    require(cfg, "generated", "weights")
    comm = comm or job_comm(env)
    store = open_store(cfg.generated)
    if len(store) < 1:
        raise ValueError(f"{store.path} holds no images")
    check_column(store, use="CLIP score")
    captions = _captions(store, cfg.caption_column)
    pixels = on_root(comm, lambda: extractor_input(store, store, stretch_file=cfg.stretch,
                                                   rgb_bands=cfg.rgb_bands))
    if pixels.stretch_source.startswith("estimated"):  # one store here, no real one
        pixels = dataclasses.replace(pixels, stretch_source="estimated from the store")
    clip_fingerprint = fingerprint(cfg.weights)
    key = CacheKey(str(store.path), store.checksum,
                   {"name": "clip-transformers", "weights_fingerprint": clip_fingerprint},
                   pixels.to_dict(), {"caption_column": cfg.caption_column,
                                      "batch_size": cfg.batch_size})
    cache = StatsCache(cfg.cache_dir or default_cache_dir()) if cfg.cache else None
    cached = None
    if cache is not None and comm.rank == 0:
        arrays = cache.load_arrays(key)
        if arrays is not None and arrays.get("scores", np.empty(0)).shape == (len(store),):
            cached = arrays["scores"]
    cached = comm.bcast(cached)
    device = pick_device(cfg.device, env.local_rank)
    if cached is None:
        scores = _score_pass(cfg, store, captions, pixels, load_clip(cfg.weights, device),
                             comm, show_progress)
    else:
        scores = cached
    result = None
    if comm.rank == 0:
        outcome = CacheOutcome("off")
        if cache is not None:
            outcome = (CacheOutcome("hit", str(cache.path_for(key))) if cached is not None
                       else cache.save_arrays(key, {"scores": scores}, len(store)))
        result = _result(cfg, store, scores, pixels, outcome, comm.size, device,
                         clip_fingerprint)
        result["seconds"] = time.perf_counter() - start
    return ClipScoreResult(comm.bcast(result))


def _score_pass(cfg: ClipScoreConfig, store: Store, captions: np.ndarray, pixels: Any,
                clip: Any, comm: Comm, show_progress: bool) -> np.ndarray:
    """Every image's score, on every rank (this rank's batches, then one allgather)."""
    bounds = rank_batches(len(store), cfg.batch_size, comm.rank, comm.size)
    bar = progress(sum(b - a for a, b in bounds), f"CLIP score (rank 0 of {comm.size})",
                   show_progress and comm.rank == 0)
    own: list[tuple[int, np.ndarray]] = []
    failure = None
    try:
        for first, images in read_batches(store, bounds, use="CLIP score"):
            texts = [str(c) for c in captions[first:first + len(images)]]
            own.append((first, clip.scores(pixels.to_uint8(images), texts).numpy()))
            bar.update(len(images))
    except NonFinitePixels as error:
        failure = error
    finally:
        bar.close()
    shared_failure(comm, failure)
    scores = np.full(len(store), np.nan)
    for part in comm.allgather(own):
        for first, values in part:
            scores[first:first + len(values)] = values
    assert not np.isnan(scores).any(), "every batch is some rank's"
    return scores


def _result(cfg: ClipScoreConfig, store: Store, scores: np.ndarray, pixels: Any,
            cache: CacheOutcome, num_ranks: int, device: Any,
            clip_fingerprint: str | None) -> dict[str, Any]:
    return {
        "evaluation": "clipscore",
        "metrics": {
            # torchmetrics clamps the mean at 0 (a CLIP score is not negative); std is of
            # the images' scores (ddof 0), not of the mean.
            "clip_score_mean": max(float(scores.mean()), 0.0),
            "clip_score_std": float(scores.std()),
            "clip_score_min": float(scores.min()), "clip_score_max": float(scores.max()),
        },
        "num_generated": len(store), "generated": store_summary(store),
        "caption_column": cfg.caption_column,
        "clip": {"folder": cfg.weights, "fingerprint": clip_fingerprint},
        "input": pixels.to_dict(), "input_description": pixels.describe(),
        "histogram": _histogram(scores),
        "cache": cache.to_dict(), "num_ranks": num_ranks, "device": str(device),
        "batch_size": cfg.batch_size,
    }


def _histogram(scores: np.ndarray, num_bins: int = 30) -> dict[str, list[float]]:
    counts, edges = np.histogram(scores, bins=num_bins)
    return {"counts": counts.astype(int).tolist(), "edges": edges.tolist()}
