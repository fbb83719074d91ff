"""Does stage 1 of the LDM keep the morphology a vote regressor reads? Measured before
stage 2 is trained, since no conditioning can put back what the VAE drops.

For the real galaxies a trained vote predictor's training held out (its predictor.json
heldout rule on the store it trained on), the predictor reads GZ2 vote fractions off

- the real images (the floor: the predictor's own error), and
- the VAE's reconstructions of them: posterior mean, decoded, mapped back to the store's
  pixels (rounded to uint8 for a uint8 store, as a generated catalog stores them),

and compares each with the true fractions, counted as `evaluate morphology-fidelity`
counts them (per-question renormalised fractions, a question counting where at least
`--min-reach` of the volunteers reached it, MAE pooled over its (galaxy, answer) pairs).
Printed per source: Q1 (smooth_or_features) MAE, the MAE of the smooth answer alone
(every galaxy reaches Q1; the figure of the first diagnosis there), Pearson r of the
predicted against the true smooth fraction, the mean predicted smooth fraction where the true one is < 0.3 and
> 0.7, the MAE pooled over all questions; and the VAE's L1 in [-1, 1] model space on
these galaxies. A stage 1 good enough for issue 19 has reconstructions read about as well
as the real images (docs/evaluate.md, "Morphology fidelity").

    PYTHONPATH=$PWD python benchmarks/ldm_vae_morphology.py runs/mf/vae/vae \
        runs/mf/dino/predictor --store runs/mf/synth32.zarr [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from galaxy_hpc.data.gz2 import QUESTIONS
from galaxy_hpc.data.stretch import stretch_from_dict
from galaxy_hpc.evaluate.config import MorphologyFidelityConfig
from galaxy_hpc.evaluate.morphology import predict_fractions
from galaxy_hpc.evaluate.morphology_fidelity import (batch_sums, floor_galaxies, fractions,
                                                     pooled_mae)
from galaxy_hpc.models.ldm.images import VAE_INFO
from galaxy_hpc.models.vote_predictor import load_vote_predictor
from hpc.store import open_store

SMOOTH = QUESTIONS[0].columns.start  # the "smooth" answer of Q1 (Kaggle Class1.1)


@torch.no_grad()
def reconstruct(vae: Any, images: np.ndarray, stretch: Any, store_dtype: str,
                batch_size: int) -> tuple[np.ndarray, float]:
    """(store-space reconstructions, L1 in model space) of store images."""
    out, l1 = [], 0.0
    for lo in range(0, len(images), batch_size):
        x = torch.from_numpy(np.asarray(stretch.forward(images[lo:lo + batch_size]),
                                        dtype=np.float32))
        decoded = vae.decode(vae.encode(x).latent_dist.mode()).sample.float()
        l1 += float((decoded - x).abs().sum())
        back = np.asarray(stretch.inverse(decoded.numpy()))
        out.append(np.rint(back).astype(np.uint8) if store_dtype == "uint8"
                   else back.astype(store_dtype))
    return np.concatenate(out), l1 / images.size


def scores(truth: np.ndarray, predicted: np.ndarray, min_reach: float) -> dict[str, float]:
    sums = batch_sums(truth, predicted, min_reach=min_reach, num_bins=1)
    q1 = QUESTIONS[0].columns
    smooth_true, smooth_pred = truth[:, SMOOTH], predicted[:, SMOOTH]
    return {"q1_mae": pooled_mae(sums, q1)[0],
            "smooth_mae": float(np.abs(smooth_true - smooth_pred).mean()),
            "q1_r": float(np.corrcoef(smooth_true, smooth_pred)[0, 1]),
            "smooth_read_true_lt_0.3": float(smooth_pred[smooth_true < 0.3].mean()),
            "smooth_read_true_gt_0.7": float(smooth_pred[smooth_true > 0.7].mean()),
            "pooled_mae": pooled_mae(sums, slice(None))[0],
            "question_mae": {str(q.number): pooled_mae(sums, q.columns)[0] for q in QUESTIONS}}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("vae", help="an AutoencoderKL folder (a train_ldm_vae run's vae/)")
    parser.add_argument("predictor", help="a vote predictor folder (a train_dino predictor/)")
    parser.add_argument("--store", required=True, help="the predictor's training store")
    parser.add_argument("--min-reach", type=float, default=0.5)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args(argv)

    from diffusers import AutoencoderKL

    torch.manual_seed(0)
    start = time.perf_counter()
    store = open_store(args.store)
    cfg = MorphologyFidelityConfig(predictor=args.predictor, real=args.store,
                                   floor_galaxies="heldout", min_reach=args.min_reach)
    indices, described, _ = floor_galaxies(cfg, store)
    predictor = load_vote_predictor(args.predictor)
    vae = AutoencoderKL.from_pretrained(args.vae).eval()
    vae_stretch = stretch_from_dict(json.loads((Path(args.vae) / VAE_INFO).read_text())["stretch"])

    images = store.read_images_at(indices)
    truth = fractions(store, cfg.vote_suffix, indices)
    rebuilt, l1 = reconstruct(vae, images, vae_stretch, store.spec.image_dtype, args.batch_size)
    result: dict[str, Any] = {"vae": args.vae, "predictor": args.predictor,
                              "galaxies": described, "num_galaxies": int(len(indices)),
                              "vae_l1": l1}
    for name, pixels in (("real", images), ("reconstructed", rebuilt)):
        predicted = np.concatenate([predict_fractions(predictor, pixels[lo:lo + args.batch_size],
                                                      predictor.stretch)
                                    for lo in range(0, len(pixels), args.batch_size)])
        result[name] = scores(truth, predicted, args.min_reach)
    result["seconds"] = time.perf_counter() - start

    print(f"{args.vae}: {described}; VAE L1 (model space, posterior mean) {l1:.4f}")
    print(f"{'read off':<14} {'Q1 MAE':>7} {'smooth MAE':>10} {'Q1 r':>6} {'smooth<0.3':>10} "
          f"{'smooth>0.7':>10} {'pooled MAE':>10}")
    for name in ("real", "reconstructed"):
        s = result[name]
        print(f"{name:<14} {s['q1_mae']:>7.3f} {s['smooth_mae']:>10.3f} {s['q1_r']:>+6.2f} "
              f"{s['smooth_read_true_lt_0.3']:>10.2f} {s['smooth_read_true_gt_0.7']:>10.2f} "
              f"{s['pooled_mae']:>10.3f}")
    print("per question (MAE, counted as the evaluation counts):")
    for name in ("real", "reconstructed"):
        shown = " ".join(f"Q{n} {'-' if v is None else f'{v:.3f}'}"
                         for n, v in result[name]["question_mae"].items())
        print(f"  {name:<14} {shown}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
