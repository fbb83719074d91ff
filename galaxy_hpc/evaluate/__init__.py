"""Evaluation of generated galaxy catalogs: numbers people trust and pictures they can look at.

Every evaluation runs alone, under `mpiexec -n K` or `srun`, finds its rank itself, splits
the images over ranks, and keeps memory independent of the number of images wherever the
metric allows (what does not is bounded, and says so in its output):

- fid.py: FID (exact: count, sum and outer products in float64, one all-reduce), KID,
  Inception Score and precision/recall, with torch-fidelity's feature extractors
  (extractors.py; weights from local paths only) fed as they expect (inputs.py), the real
  store's statistics cached by checksum + extractor (cache.py);
- physics.py: flux, size, concentration, asymmetry, Gini/M20, ellipticity with statmorph
  (morphometry.py), real against generated: Wasserstein distance and histograms;
- morphology.py: vote fractions a VotePredictor sees in generated galaxies against the
  ones requested, per GZ2 question (r and MAE);
- conditioning.py: rank correlation of requested against measured quantities, with
  bootstrap intervals, and conditional fidelity per cell of the condition grid
  (galaxy_hpc.data.fidelity: generated vs real distributions against the real
  split-half floor);
- clipscore.py: CLIP score of captioned images against their captions (clip_local.py: a
  local transformers CLIP folder), per-image scores cached like FID's statistics;
- report/: an HTML page with PNGs beside it, from the JSON results in a run folder.

Results are dataclasses with `to_dict()` (what `--json` prints and `RUN_DIR/<name>.json`
holds) and `summary()` (the few lines a person reads).
"""
