"""`evaluate fid`: FID, KID, Inception Score and precision/recall of a generated store against
a real one, on any number of ranks, with torch-fidelity's numbers.

Every rank builds the extractor, takes its whole batches of each store (passes.py), turns
the images into what the extractor expects (inputs.py), and accumulates sums
(accumulate.py). One all-reduce combines the sums of both stores, one allgather the few
features kept for KID and precision/recall; rank 0 computes the metrics (metrics.py),
writes the real store's statistics to the cache (cache.py) and every rank returns the
same result. Memory per rank: the extractor, one batch, dim^2 float64 sums per store, and
the kept features (bounded by max_kept_features per store).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from galaxy_hpc.data.nonfinite import NonFinitePixels, check_column
from galaxy_hpc.evaluate.accumulate import StoreAccumulator, StoreStats
from galaxy_hpc.evaluate.cache import CacheKey, CacheOutcome, StatsCache
from galaxy_hpc.evaluate.config import FidConfig, default_cache_dir, require
from galaxy_hpc.evaluate.extractors import build_extractor, extract, pick_device
from galaxy_hpc.evaluate.inputs import ExtractorInput, extractor_input
from galaxy_hpc.evaluate.metrics import (
    fid_from_moments,
    inception_score,
    kernel_inception_distance,
    precision_recall,
)
from galaxy_hpc.evaluate.passes import (
    progress,
    rank_batches,
    read_batches,
    shared_failure,
)
from galaxy_hpc.evaluate.results import EvaluationResult, store_summary
from hpc.comm import Comm, job_comm, on_root
from hpc.dist import resolve_env
from hpc.store import Store, open_store


class FidResult(EvaluationResult):
    def summary(self) -> str:
        d, m = self.data, self.data["metrics"]
        parts = [f"FID {m['fid']:.4f}"]
        if "kid_mean" in m:
            parts.append(f"KID {m['kid_mean']:.5f} +- {m['kid_std']:.5f} "
                         f"({d['kid']['subsets']} subsets of {d['kid']['subset_size']})")
        if "isc_mean" in m:
            parts.append(f"IS {m['isc_mean']:.3f} +- {m['isc_std']:.3f} generated, "
                         f"{m['real_isc_mean']:.3f} real")
        if "precision" in m:
            parts.append(f"precision {m['precision']:.3f} recall {m['recall']:.3f}")
        lines = ["  ".join(parts),
                 f"extractor {d['extractor_description']}",
                 f"images: {d['num_real']:,} real, {d['num_generated']:,} generated; "
                 f"{d['input_description']}",
                 f"ran on {d['num_ranks']} rank(s), {d['device']}, {d['seconds']:.1f} s "
                 f"({d['features_per_second']:,.0f} images/s)",
                 f"real statistics: {_cache_line(d['cache'])}"]
        lines += d["notes"]
        lines += [f"skipped {metric}: {why}" for metric, why in d["skipped"].items()]
        return "\n".join(lines)


def _cache_line(cache: dict[str, Any]) -> str:
    if cache["status"] == "hit":
        return f"from the cache ({cache['file']})"
    if cache["status"] == "miss":
        stale = f"; removed {len(cache['removed_stale'])} stale entry(ies) of an earlier " \
            "version of the store" if cache["removed_stale"] else ""
        return f"computed, cached in {cache['file']}{stale}"
    return "computed (cache off)"


def _open_pair(cfg: FidConfig) -> tuple[Store, Store]:
    real, generated = open_store(cfg.real), open_store(cfg.generated)
    for store in (real, generated):
        if len(store) < 2:
            raise ValueError(f"{store.path} holds {len(store)} image(s): FID needs at least 2")
        check_column(store, use="FID")  # ingest counted them: refuse before any work
    return real, generated


def size_note(real: Store, generated: Store) -> str | None:
    """A line for the output when the two stores' images differ in size: the extractor
    resizes each to its own input, so the distance also measures the resolution gap."""
    sizes = [tuple(store.spec.image_shape[1:]) for store in (real, generated)]
    if sizes[0] == sizes[1]:
        return None
    (rh, rw), (gh, gw) = sizes
    return (f"image sizes differ: real {rh}x{rw} px, generated {gh}x{gw} px; the extractor "
            "resizes both to its input size, so the distances also measure the difference "
            "in resolution (make the catalog at the real size to compare like with like)")


def _feature_dims(module: torch.nn.Module, store: Store, device: torch.device,
                  pixels: ExtractorInput) -> dict[str, int]:
    probe = pixels.to_uint8(np.zeros((1, *store.spec.image_shape), store.spec.image_dtype))
    return {name: value.shape[1] for name, value in extract(module, probe, device).items()}


def _kid_subset_size(cfg: FidConfig, kept: list[int]) -> int:
    return min([cfg.kid_subset_size, *kept])


def run_fid(cfg: FidConfig, *, show_progress: bool = True, comm: Comm | None = None) -> FidResult:
    """Collective: run on every rank; every rank returns the same result."""
    start = time.perf_counter()
    env = resolve_env(cuda_available=False)
    require(cfg, "real", "generated")
    comm = comm or job_comm(env)
    real, generated = _open_pair(cfg)
    feats = cfg.features
    # One rank reads the stretch sample; the rest get the result (or its error).
    pixels = on_root(comm, lambda: extractor_input(real, generated, stretch_file=feats.stretch,
                                                   rgb_bands=feats.rgb_bands))
    device = pick_device(feats.device, env.local_rank)
    module, spec = build_extractor(feats.extractor, cfg.metrics, weights=feats.weights,
                                   extractor_module=feats.extractor_module, device=device)
    layers = spec.layers
    skipped = {m: f"extractor {spec.name} offers no feature layer for it"
               for m in cfg.metrics if m not in layers}
    if "isc" in layers and min(len(real), len(generated)) < cfg.isc_splits:
        skipped["isc"] = f"fewer images than isc_splits ({cfg.isc_splits})"
        layers = {m: v for m, v in layers.items() if m != "isc"}
    dims = _feature_dims(module, real, device, pixels)
    settings = {"layers": layers, "batch_size": feats.batch_size, "seed": cfg.seed,
                "max_kept_features": cfg.max_kept_features, "isc_splits": cfg.isc_splits}
    key = CacheKey(str(real.path), real.checksum, spec.to_dict(), pixels.to_dict(), settings)
    cache = StatsCache(cfg.cache_dir or default_cache_dir()) if cfg.cache else None
    cached = cache.load(key) if cache is not None and comm.rank == 0 else None
    real_cached = bool(comm.bcast(cached is not None))

    def accumulator(store: Store) -> StoreAccumulator:
        return StoreAccumulator(len(store), layers, dims, max_kept=cfg.max_kept_features,
                                isc_splits=cfg.isc_splits, seed=cfg.seed, device=device)

    todo = [(generated, accumulator(generated))]
    if not real_cached:
        todo.append((real, accumulator(real)))
    # The k-th store's runs of batches go to the ranks rotated by k: a rank that took one
    # batch more of the first store takes one fewer of the second (4,096 against 3,904
    # images on 2 ranks of 2 x 4,000 made the pass wait 2.4% longer).
    work = [(store, acc, rank_batches(len(store), feats.batch_size,
                                      (comm.rank + k) % comm.size, comm.size))
            for k, (store, acc) in enumerate(todo)]
    bar = progress(sum(b - a for _, _, bounds in work for a, b in bounds),
                   f"features ({spec.name}, rank 0 of {comm.size})",
                   show_progress and comm.rank == 0)
    comm.barrier()  # the pass is timed from when every rank is ready
    extract_start, cpu_start = time.perf_counter(), time.process_time()
    failure = None
    try:
        for store, acc, bounds in work:
            for first, images in read_batches(store, bounds, use="FID"):
                acc.add(first, extract(module, pixels.to_uint8(images), device))
                bar.update(len(images))
    except NonFinitePixels as error:
        failure = error
    finally:
        bar.close()  # cleared before an error's line, not left in front of it
    shared_failure(comm, failure)
    own_seconds, own_cpu = time.perf_counter() - extract_start, time.process_time() - cpu_start
    summed = comm.allreduce_sum(np.concatenate([acc.packed() for _, acc in todo]))
    gathered = comm.allgather(([acc.local_kept() for _, acc in todo], own_seconds, own_cpu))
    # The pass as a user waits for it: every rank's features, combined (rank 0's clock).
    pass_seconds = time.perf_counter() - extract_start
    combine_seconds = pass_seconds - own_seconds
    extract_seconds = max(g[1] for g in gathered)  # the slowest rank's extraction
    # CPU time of all ranks together: equal on 1 and K ranks when the split adds no work,
    # whatever else the machine runs (wall-clock scaling needs idle cores).
    extract_cpu_seconds = sum(g[2] for g in gathered)
    stats, offset = [], 0
    for k, (_, acc) in enumerate(todo):
        size = acc.packed_size()
        stats.append(acc.stats(summed[offset:offset + size], [g[0][k] for g in gathered]))
        offset += size
    num_extracted = sum(len(store) for store, _ in todo)
    result = None
    if comm.rank == 0:
        gen_stats = stats[0]
        real_stats = cached if real_cached else stats[1]
        outcome = CacheOutcome("off")
        if cache is not None:
            outcome = (CacheOutcome("hit", str(cache.path_for(key))) if real_cached
                       else cache.save(key, real_stats))
        result = _result(cfg, real, generated, real_stats, gen_stats, spec, pixels, layers,
                         skipped, outcome, comm.size, device)
        seconds = time.perf_counter() - start
        result.update(seconds=seconds, extract_seconds=extract_seconds,
                      combine_seconds=combine_seconds, pass_seconds=pass_seconds,
                      extract_cpu_seconds=extract_cpu_seconds, num_extracted=num_extracted,
                      features_per_second=num_extracted / max(pass_seconds, 1e-9))
    return FidResult(comm.bcast(result))


def _result(cfg: FidConfig, real: Store, generated: Store, real_stats: StoreStats,
            gen_stats: StoreStats, spec: Any, pixels: ExtractorInput, layers: dict[str, str],
            skipped: dict[str, str], cache: CacheOutcome, num_ranks: int,
            device: torch.device) -> dict[str, Any]:
    metrics: dict[str, float] = {"fid": fid_from_moments(real_stats.moments, gen_stats.moments)}
    notes = ["FID and IS use every image, through float64 sums combined over ranks."]
    sizes = size_note(real, generated)
    if sizes is not None:
        notes.insert(0, sizes)
    kid = None
    kept = [len(real_stats.kept_index), len(gen_stats.kept_index)]
    if "kid" in layers or "prc" in layers:
        notes.append(
            f"KID and precision/recall need the features themselves: kept {kept[0]:,} real and "
            f"{kept[1]:,} generated (at most {cfg.max_kept_features:,} per store; a larger store "
            f"contributes a fixed random subset, seed {cfg.seed})")
    if "kid" in layers:
        size = _kid_subset_size(cfg, kept)
        if size < 2:
            skipped["kid"] = "fewer than 2 kept features in a store"
        else:
            mean, std = kernel_inception_distance(
                gen_stats.kept[layers["kid"]], real_stats.kept[layers["kid"]],
                subsets=cfg.kid_subsets, subset_size=size, seed=cfg.seed)
            metrics.update(kid_mean=mean, kid_std=std)
            kid = {"subsets": cfg.kid_subsets, "subset_size": size, "layer": layers["kid"]}
            if size < cfg.kid_subset_size:
                notes.append(f"KID subset size lowered from {cfg.kid_subset_size} to {size} "
                             "(the smaller store's kept count)")
    if "isc" in layers:
        metrics["isc_mean"], metrics["isc_std"] = inception_score(gen_stats.isc)
        metrics["real_isc_mean"], metrics["real_isc_std"] = inception_score(real_stats.isc)
    if "prc" in layers:
        metrics.update(precision_recall(gen_stats.kept[layers["prc"]],
                                        real_stats.kept[layers["prc"]],
                                        neighborhood=cfg.prc_neighborhood))
    return {
        "evaluation": "fid",
        "metrics": metrics,
        "num_real": len(real), "num_generated": len(generated),
        "image_sizes": {"real": list(real.spec.image_shape[1:]),
                        "generated": list(generated.spec.image_shape[1:])},
        "real": store_summary(real), "generated": store_summary(generated),
        "extractor": spec.to_dict(), "extractor_description": spec.describe(),
        "input": pixels.to_dict(), "input_description": pixels.describe(),
        "kept": {"real": kept[0], "generated": kept[1], "bound": cfg.max_kept_features},
        "kid": kid, "isc": {"splits": cfg.isc_splits, "layer": layers.get("isc")},
        "cache": cache.to_dict(), "skipped": skipped, "notes": notes,
        "num_ranks": num_ranks, "device": str(device), "seed": cfg.seed,
    }
