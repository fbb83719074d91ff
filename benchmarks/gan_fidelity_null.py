"""What a perfect generator reads on the GAN's fidelity target (model.fidelity): how often
every judged cell comes out at W1 <= 1.5 x the split-half floor when nothing is wrong.

Two measurements, both with the statistics the run uses (galaxy_hpc.data.fidelity):

- null: cells of `--cell-size` Gaussian values, the "generated" draws from the same
  distribution as the "real" cell; `--trials` verdicts of 16 cells each (8 cells x 2
  quantities, as for a redshift x log M* grid of 3 x 3 with one sparse corner), with 1
  and with 4 draws per row (model.fidelity.draws_per_row);
- oracle (with --real and --pool): the generator replaced by fresh synthetic galaxies,
  for each judged store row the unused galaxy of another synth store (another seed)
  nearest in (redshift, log M*) in units of the real store's std, drawn without
  replacement; judged exactly as the exported generator is (fidelity.judge). With
  `--augment any` each oracle galaxy is first rotated by a random angle as training's
  `data.rotation: any` rotates it (galaxy_hpc.data.augment.rotate, in linear flux): the
  galaxies of a generator that learned the augmented training set perfectly. What that
  reads is what the augmentation itself costs on the target (`right_angles` moves pixels
  without changing them, so it reads as no augmentation).

    galaxy-hpc synth --n 4000 --size 32 --float --no-captions --out runs/gan/synth32f.zarr
    galaxy-hpc synth --n 24000 --size 32 --float --no-captions --seed 7 --out runs/gan/pool32f.zarr
    python benchmarks/gan_fidelity_null.py --real runs/gan/synth32f.zarr \
        --pool runs/gan/pool32f.zarr [--augment any]
"""

from __future__ import annotations

import argparse

import numpy as np
from scipy.stats import wasserstein_distance

from galaxy_hpc.data.fidelity import split_half_distances

NAMES = ["redshift", "log_stellar_mass"]


def null(trials: int, cell_size: int, cells: int, draws: int, seed: int) -> np.ndarray:
    """Max W1/floor over `cells` same-distribution cells, per trial."""
    rng = np.random.default_rng(seed)
    worst = np.empty(trials)
    for t in range(trials):
        ratios = []
        for _ in range(cells):
            real, gen = rng.normal(size=cell_size), rng.normal(size=(draws, cell_size))
            floor = split_half_distances(real, cell_size, num_splits=50, rng=rng).mean()
            ratios.append(np.mean([wasserstein_distance(g, real) for g in gen]) / floor)
        worst[t] = max(ratios)
    return worst


def oracle(real_path: str, pool_path: str, draws: int, augment: str = "none") -> None:
    import torch

    from galaxy_hpc.data.augment import rotate
    from galaxy_hpc.models.gan import consistency, fidelity
    from galaxy_hpc.models.gan.config import FidelitySection
    from hpc.store import open_store

    store, pool = open_store(real_path), open_store(pool_path)
    rows, cond = consistency.evaluation_conditions(store, NAMES, 2000)
    every = np.stack([store.read_column(n) for n in NAMES], 1).astype(float)
    offered = np.stack([pool.read_column(n) for n in NAMES], 1).astype(float)
    mean, std = every.mean(0), every.std(0)
    distance = np.sqrt(((((cond - mean) / std)[:, None] - ((offered - mean) / std)[None]) ** 2)
                       .sum(-1))
    used = np.zeros(len(offered), bool)
    picks = []
    for k in range(draws):
        pick = np.empty(len(cond), int)
        for i in np.argsort(distance.min(1)):
            j = int(np.where(used, np.inf, distance[i]).argmin())
            pick[i], used[j] = j, True
        picks.append(pick)
        print(f"oracle draw {k}: condition distance median "
              f"{np.median(distance[np.arange(len(cond)), pick]):.3f} std")
    real = store.read_images_at(rows)
    fakes = np.stack([pool.read_images_at(p) for p in picks])
    if augment == "any":
        angles = np.random.default_rng(0).uniform(0.0, 360.0, fakes.shape[:2])
        fakes = np.stack([rotate(torch.from_numpy(np.ascontiguousarray(f)), a).numpy()
                          for f, a in zip(fakes, angles)])
        print("oracle galaxies rotated by random angles (data.rotation: any)")
    for label, generated in [(f"draw {k} alone", fakes[k]) for k in range(draws)] + [
            (f"{draws} draws", fakes)]:
        verdict = fidelity.judge(generated, real, cond, NAMES, FidelitySection(),
                                 requested="log_stellar_mass", by="redshift", num_bins=3)
        print(f"oracle, {label}:")
        print("\n".join(fidelity.summary_lines(verdict)[3:]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=300)
    parser.add_argument("--cell-size", type=int, default=222)  # 2,000 rows / 9 cells
    parser.add_argument("--real")
    parser.add_argument("--pool")
    parser.add_argument("--augment", choices=("none", "any"), default="none",
                        help="rotate the oracle's galaxies as data.rotation does")
    args = parser.parse_args()
    for draws in (1, 4):
        worst = null(args.trials, args.cell_size, 16, draws, seed=draws)
        print(f"null, {draws} draw(s) per row: all 16 cells <= 1.5 in "
              f"{(worst <= 1.5).mean():.0%} of {args.trials} trials (median max "
              f"W1/floor {np.median(worst):.2f})")
    if args.real and args.pool:
        oracle(args.real, args.pool, draws=4, augment=args.augment)


if __name__ == "__main__":
    main()
