"""Does adding generated galaxies help a classifier? galaxyCGAN's DAGAN test, GalaxySD's
downstream test.

The same small classifier (galaxy_hpc.models.classifier) is trained twice per seed:
on the real training galaxies only, and on those plus the generated catalog; both are
scored on the same held-out real galaxies. Both arms take the same number of optimizer
steps (`classifier.epochs` passes over the real training set), so a gain comes from the
data, not from more training. Classes are galaxy_hpc.data.main_class's (or a column's);
a class is rare when it is less than `rare_fraction` of the real training set, and the
report calls those out, since that is where augmentation is meant to help.

Images of both stores go through the real store's stretch (as every model sees them),
then are resized to `classifier.image_size` (antialiased) and held in memory as float16:
50,000 galaxies at 64 px take 1.2 GB. The experiment is one process (a classifier this
small trains in minutes on a GPU); run it on a GPU node for real catalogs.

Outputs in `output_dir`: augmentation.json (every score of every seed, means and spreads,
counts per class, the rare classes, both stores and the config) and augmentation.png
(completeness and purity per class, both arms). The JSON is the result as every
evaluation writes it (`"evaluation": "augmentation"`, the stores' summaries), so the
copy `--out RUN_DIR` writes is the same document and `galaxy-hpc report` reads either.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from galaxy_hpc.data.augment import NUM_DRAWS, GalaxyAugment
from galaxy_hpc.data.main_class import (
    MAIN_CLASSES,
    caption_classes,
    fractions_from_columns,
    main_classes,
)
from galaxy_hpc.data.stretch import stretch_for_store
from galaxy_hpc.evaluate.augmentation_config import AugmentationConfig
from galaxy_hpc.evaluate.classification import class_scores, confusion
from galaxy_hpc.evaluate.results import store_summary, write_result
from galaxy_hpc.models.classifier import GalaxyClassifier
from hpc.store import Store, open_store

ARMS = ("real", "real_plus_generated")
_GZ2_PROBE = "t01_smooth_or_features_a01_smooth_fraction"


@dataclass
class AugmentationResult:
    output_dir: str
    label_source: str
    classes: list[str]
    rare_classes: list[str]
    counts: dict[str, dict[str, int]]  # real_train / real_test / generated -> class -> n
    arms: dict[str, dict[str, Any]]  # arm -> {"seeds": [scores...], "mean": ..., "std": ...}
    steps: int
    seconds: float
    real: dict[str, Any] | None = None  # results.store_summary of each store
    generated: dict[str, Any] | None = None
    config: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"evaluation": "augmentation", **asdict(self)}

    def summary(self) -> str:
        real, aug = (self.arms[a]["mean"] for a in ARMS)
        lines = [f"augmentation experiment: {len(self.classes)} classes ({self.label_source} "
                 f"labels), {sum(self.counts['real_train'].values())} real training, "
                 f"{sum(self.counts['generated'].values())} generated, "
                 f"{sum(self.counts['real_test'].values())} held-out real galaxies; "
                 f"{len(self.arms['real']['seeds'])} seed(s), {self.steps} steps per arm",
                 f"{'class':<12}{'train':>7}{'gen':>7}{'test':>6}   completeness real -> +gen"
                 f"   purity real -> +gen"]
        for name in self.classes:
            r, a = real["per_class"][name], aug["per_class"][name]
            rare = "  (rare)" if name in self.rare_classes else ""
            lines.append(
                f"{name:<12}{self.counts['real_train'].get(name, 0):>7}"
                f"{self.counts['generated'].get(name, 0):>7}"
                f"{self.counts['real_test'].get(name, 0):>6}   "
                f"{r['completeness']:>8.3f} -> {a['completeness']:.3f}       "
                f"{r['purity']:>6.3f} -> {a['purity']:.3f}{rare}")
        lines.append(f"accuracy {real['accuracy']:.3f} -> {aug['accuracy']:.3f}; balanced "
                     f"accuracy {real['balanced_accuracy']:.3f} -> "
                     f"{aug['balanced_accuracy']:.3f}; written to {self.output_dir}")
        return "\n".join(lines)


def label_source(cfg: AugmentationConfig, real: Store, generated: Store) -> str:
    """The label source both stores support, in the order `auto` tries them."""
    wanted = [cfg.labels] if cfg.labels != "auto" else (
        (["column"] if cfg.label_column else []) + ["gz2", "caption"])
    needs = {"column": cfg.label_column, "gz2": _GZ2_PROBE, "caption": "caption"}
    for source in wanted:
        if all(needs[source] in store.columns for store in (real, generated)):
            return source
    raise ValueError(
        f"no labels both stores have (tried {', '.join(wanted)}): {real.path} has "
        f"{_short(real.columns)}; {generated.path} has {_short(generated.columns)}")


def _short(columns: list[str]) -> str:
    return ", ".join(columns[:8]) + (f" and {len(columns) - 8} more" if len(columns) > 8 else "")


def store_labels(store: Store, source: str, column: str | None, limit: int) -> np.ndarray:
    if source == "column":
        return np.array([str(v) for v in store.read_column(column)[:limit]], dtype=object)
    if source == "gz2":
        table = {name: store.read_column(name)[:limit] for name in store.columns
                 if name.endswith("_fraction")}
        return main_classes(fractions_from_columns(table, str(store.path)))
    return caption_classes(store.read_column("caption")[:limit])


def load_pixels(store: Store, stretch: Any, size: int, limit: int) -> torch.Tensor:
    """The first `limit` images of a store, stretched to [-1, 1] and resized: float16."""
    out = torch.empty((limit, store.spec.image_shape[0], size, size), dtype=torch.float16)
    done = 0
    for shard in range(store.num_shards):
        lo, hi = store.shard_bounds(shard)
        hi = min(hi, limit)
        if lo >= hi:
            break
        x = torch.as_tensor(np.asarray(stretch.forward(store.read_images(lo, hi)),
                                       dtype=np.float32))
        if x.shape[-1] != size or x.shape[-2] != size:
            x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True,
                              align_corners=False)
        out[lo:hi] = x.to(torch.float16)
        done = hi
    if done != limit:
        raise ValueError(f"{store.path}: read {done} of {limit} images")
    return out


def stratified_holdout(labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """A boolean mask of held-out items: `fraction` of each class (at least one of a class
    with two or more members, never all of it), picked by `seed`."""
    rng = np.random.default_rng([seed, 7])
    held = np.zeros(len(labels), dtype=bool)
    for name in sorted(set(labels.tolist())):
        members = np.flatnonzero(labels == name)
        if len(members) < 2:
            continue
        count = min(max(1, round(fraction * len(members))), len(members) - 1)
        held[rng.permutation(members)[:count]] = True
    return held


def _device(choice: str) -> torch.device:
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if choice == "cuda" and not torch.cuda.is_available():
        raise ValueError("device: cuda, but no GPU is visible")
    return torch.device(choice)


def train_classifier(images: torch.Tensor, targets: np.ndarray, num_classes: int, steps: int,
                     cfg: AugmentationConfig, seed: int, device: torch.device,
                     progress: str | None = None) -> GalaxyClassifier:
    """`steps` AdamW steps with a cosine schedule on random batches (a fresh permutation
    of the training set per pass), rotations and flips drawn from `seed`."""
    from tqdm import tqdm

    c = cfg.classifier
    torch.manual_seed(seed)
    model = GalaxyClassifier(images.shape[1], num_classes, c.width).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=c.lr, weight_decay=c.weight_decay)
    warmup = max(1, steps // 20)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(
        (s + 1) / warmup, 0.5 * (1 + math.cos(math.pi * min(s / steps, 1.0)))))
    rng = np.random.default_rng([seed, 11])
    augment = GalaxyAugment() if c.augment else None
    y_all = torch.as_tensor(targets, dtype=torch.long)
    order, position = rng.permutation(len(images)), 0
    model.train()
    for _ in tqdm(range(steps), desc=progress, disable=progress is None, leave=False):
        if position + c.batch_size > len(order):
            order, position = rng.permutation(len(images)), 0
        take = torch.as_tensor(order[position:position + c.batch_size])
        position += c.batch_size
        x = images[take].float()
        if augment is not None:
            x = augment.apply(x, augment.params(rng.random((len(take), NUM_DRAWS))))
        loss = F.cross_entropy(model(x.to(device)), y_all[take].to(device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
    return model.eval()


@torch.no_grad()
def predict(model: GalaxyClassifier, images: torch.Tensor, device: torch.device,
            batch_size: int = 256) -> np.ndarray:
    out = [model(images[i:i + batch_size].float().to(device)).argmax(dim=1).cpu()
           for i in range(0, len(images), batch_size)]
    return torch.cat(out).numpy()


def _counts(labels: np.ndarray, classes: list[str]) -> dict[str, int]:
    return {name: int((labels == name).sum()) for name in classes}


def _aggregate(runs: list[dict]) -> tuple[dict, dict]:
    """Mean and standard deviation over seeds of every score (NaN-aware)."""
    def stat(fn, key, name=None):
        values = [r[key] if name is None else r["per_class"][name][key] for r in runs]
        with np.errstate(all="ignore"):
            return float(fn(values)) if not all(np.isnan(values)) else float("nan")

    names = list(runs[0]["per_class"])
    mean = {k: stat(np.nanmean, k) for k in ("accuracy", "balanced_accuracy")}
    std = {k: stat(np.nanstd, k) for k in ("accuracy", "balanced_accuracy")}
    mean["per_class"] = {n: {k: stat(np.nanmean, k, n) for k in ("completeness", "purity")}
                         | {"support": runs[0]["per_class"][n]["support"]} for n in names}
    std["per_class"] = {n: {k: stat(np.nanstd, k, n) for k in ("completeness", "purity")}
                        for n in names}
    return mean, std


def run_augmentation(cfg: AugmentationConfig, *, show_progress: bool = True
                     ) -> AugmentationResult:
    start = time.perf_counter()
    real, generated = open_store(cfg.real_store), open_store(cfg.generated_store)
    if real.spec.image_shape[0] != generated.spec.image_shape[0]:
        raise ValueError(f"{generated.path} has {generated.spec.image_shape[0]} bands, "
                         f"{real.path} has {real.spec.image_shape[0]}")
    if real.spec.image_dtype != generated.spec.image_dtype:
        raise ValueError(f"{generated.path} holds {generated.spec.image_dtype} images and "
                         f"{real.path} {real.spec.image_dtype}: one stretch cannot serve both")
    source = label_source(cfg, real, generated)
    num_real = min(len(real), cfg.max_real or len(real))
    num_gen = min(len(generated), cfg.max_generated or len(generated))
    real_labels = store_labels(real, source, cfg.label_column, num_real)
    gen_labels = store_labels(generated, source, cfg.label_column, num_gen)
    present = set(real_labels.tolist())
    classes = ([c for c in MAIN_CLASSES if c in present] if source != "column"
               else sorted(present))
    if len(classes) < 2:
        raise ValueError(f"{real.path}: only {len(classes)} class ({', '.join(classes)}) "
                         f"among {num_real} galaxies; the experiment needs two or more")
    index = {name: k for k, name in enumerate(classes)}
    stretch = stretch_for_store(real)
    size = cfg.classifier.image_size
    real_pixels = load_pixels(real, stretch, size, num_real)
    known = np.array([label in index for label in gen_labels], dtype=bool)
    gen_pixels = load_pixels(generated, stretch, size, num_gen)[torch.as_tensor(known)]
    gen_labels = gen_labels[known]

    held = stratified_holdout(real_labels, cfg.holdout_fraction, cfg.seed)
    train_x, test_x = real_pixels[torch.as_tensor(~held)], real_pixels[torch.as_tensor(held)]
    train_y = np.array([index[v] for v in real_labels[~held]])
    test_y = np.array([index[v] for v in real_labels[held]])
    gen_y = np.array([index[v] for v in gen_labels], dtype=np.int64)
    rare = [name for name in classes
            if (real_labels[~held] == name).sum() < cfg.rare_fraction * len(train_y)]
    steps = max(1, math.ceil(cfg.classifier.epochs * len(train_y) / cfg.classifier.batch_size))
    device = _device(cfg.device)
    arms_data = {"real": (train_x, train_y),
                 "real_plus_generated": (torch.cat([train_x, gen_pixels]),
                                         np.concatenate([train_y, gen_y]))}
    runs: dict[str, list[dict]] = {arm: [] for arm in ARMS}
    for s in range(cfg.num_seeds):
        for arm in ARMS:
            x, y = arms_data[arm]
            model = train_classifier(x, y, len(classes), steps, cfg, cfg.seed + s, device,
                                     f"seed {s} {arm}" if show_progress else None)
            matrix = confusion(test_y, predict(model, test_x, device), len(classes))
            scores = class_scores(matrix, classes)
            scores["confusion"] = matrix.tolist()
            runs[arm].append(scores)
    arms = {}
    for arm in ARMS:
        mean, std = _aggregate(runs[arm])
        arms[arm] = {"seeds": runs[arm], "mean": mean, "std": std}
    result = AugmentationResult(
        str(cfg.output_dir), source, classes, rare,
        {"real_train": _counts(real_labels[~held], classes),
         "real_test": _counts(real_labels[held], classes),
         "generated": _counts(gen_labels, classes)},
        arms, steps, time.perf_counter() - start, store_summary(real),
        store_summary(generated), asdict(cfg))
    out = Path(cfg.output_dir)
    write_result(out, "augmentation", result.to_dict())
    plot_scores(result, out / "augmentation.png")
    return result


def result_from_dict(data: dict[str, Any]) -> AugmentationResult:
    """The result as augmentation.json holds it (for the report); files written before the
    stores and config were recorded have none."""
    return AugmentationResult(**{f: data[f] for f in AugmentationResult.__dataclass_fields__
                                 if f in data or f not in ("real", "generated", "config")})


def plot_scores(result: AugmentationResult, path: Path) -> Path:
    """Completeness and purity per class, real vs real + generated, mean +- spread."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharey=True)
    x = np.arange(len(result.classes))
    for ax, key in zip(axes, ("completeness", "purity")):
        for k, (arm, label) in enumerate(zip(ARMS, ("real only", "real + generated"))):
            # float arrays: a score JSON holds as null (NaN, e.g. no support) becomes NaN
            mean = np.asarray([result.arms[arm]["mean"]["per_class"][c][key]
                               for c in result.classes], dtype=float)
            std = np.asarray([result.arms[arm]["std"]["per_class"][c][key]
                              for c in result.classes], dtype=float)
            ax.bar(x + (k - 0.5) * 0.38, np.nan_to_num(mean), 0.38, yerr=np.nan_to_num(std),
                   label=label, capsize=2)
        ax.set_xticks(x, [c + (" *" if c in result.rare_classes else "")
                          for c in result.classes], rotation=20)
        ax.set_title(key)
        ax.set_ylim(0, 1.05)
    axes[0].legend(loc="lower left", fontsize=8)
    fig.suptitle("held-out real galaxies (* rare class)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
