"""The augmentation experiment: scores by hand, the split, and a whole run on synthetic
galaxies where the "generated" catalog supplies the class the real set lacks."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from galaxy_hpc.data.synth import draw_galaxies
from galaxy_hpc.data.synth.config import SynthConfig
from galaxy_hpc.evaluate.augmentation import stratified_holdout, store_labels
from galaxy_hpc.evaluate.classification import class_scores, confusion
from hpc.store import StoreSpec, create_store, finalize_store, open_store


def test_completeness_and_purity_by_hand():
    truth = np.array([0, 0, 0, 0, 1, 1, 2])
    predicted = np.array([0, 0, 1, 1, 1, 0, 1])
    matrix = confusion(truth, predicted, 3)
    assert matrix.tolist() == [[2, 2, 0], [1, 1, 0], [0, 1, 0]]
    scores = class_scores(matrix, ["a", "b", "c"])
    assert scores["accuracy"] == pytest.approx(3 / 7)
    assert scores["per_class"]["a"] == {"completeness": 0.5, "purity": pytest.approx(2 / 3),
                                        "support": 4}
    assert scores["per_class"]["b"]["purity"] == pytest.approx(1 / 4)
    c = scores["per_class"]["c"]
    assert c["completeness"] == 0.0 and np.isnan(c["purity"])  # never predicted: undefined
    assert scores["balanced_accuracy"] == pytest.approx((0.5 + 0.5 + 0.0) / 3)


def test_holdout_takes_a_share_of_every_class_and_never_all_of_one():
    labels = np.array(["a"] * 50 + ["b"] * 5 + ["c"] * 2 + ["d"])
    held = stratified_holdout(labels, 0.3, seed=4)
    assert (held[labels == "a"]).sum() == 15 and (held[labels == "b"]).sum() == 2
    assert (held[labels == "c"]).sum() == 1 and not held[labels == "d"].any()
    assert np.array_equal(held, stratified_holdout(labels, 0.3, seed=4))
    assert not np.array_equal(held, stratified_holdout(labels, 0.3, seed=5))


def write_subset(path: Path, seed: int, count: int, keep) -> Path:
    """Synthetic galaxies at 32 px, keeping those whose class `keep(name, k)` accepts."""
    images, columns = draw_galaxies(SynthConfig(size=32, output="uint8"), seed=seed, start=0,
                                    count=count)
    from galaxy_hpc.data.main_class import fractions_from_columns, main_classes

    names = main_classes(fractions_from_columns(columns, "synth"))
    seen: dict[str, int] = {}
    chosen = []
    for i, name in enumerate(names):
        seen[name] = seen.get(name, 0) + 1
        if keep(name, seen[name]):
            chosen.append(i)
    kept = {k: np.asarray(v)[chosen] for k, v in columns.items()
            if k.endswith("_fraction") or k == "caption"}
    spec = StoreSpec(image_shape=images.shape[1:], image_dtype="uint8", shard_size=64,
                     columns={k: ("str" if k == "caption" else "float64") for k in kept})
    writer = create_store(path, spec, num_items=len(chosen))
    for shard in range(writer.num_shards):
        lo, hi = writer.shard_bounds(shard)
        writer.write_shard(shard, images[chosen][lo:hi], {k: v[lo:hi] for k, v in kept.items()})
    finalize_store(path)
    return path


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    root = tmp_path_factory.mktemp("augmentation")
    real = write_subset(root / "real.zarr", 1, 500, lambda name, k: name != "edge_on" or k <= 16)
    generated = write_subset(root / "gen.zarr", 2, 500, lambda name, k: name == "edge_on")
    return real, generated


def test_generated_rare_class_raises_its_completeness(stores, galaxy_hpc, tmp_path):
    real, generated = stores
    config = tmp_path / "augmentation.yaml"
    out = tmp_path / "run"
    config.write_text(
        f"kind: augmentation\nreal_store: {real}\ngenerated_store: {generated}\n"
        f"output_dir: {out}\nnum_seeds: 1\ndevice: cpu\nholdout_fraction: 0.5\n"
        "classifier: {image_size: 32, width: 16, epochs: 12, batch_size: 32}\n")
    run_dir = tmp_path / "evaluations"  # --out: the run folder `galaxy-hpc report` reads
    run = subprocess.run([galaxy_hpc, "evaluate", "augmentation", str(config), "--json",
                          "--out", str(run_dir)], capture_output=True, text=True, timeout=600,
                         env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout)
    written = json.loads((out / "augmentation.json").read_text())
    assert written["counts"] == result["counts"] and written["config"]["num_seeds"] == 1
    copy = json.loads((run_dir / "augmentation.json").read_text())
    assert copy == written and copy["evaluation"] == "augmentation"  # one document, both places
    assert copy["generated"]["checksum"] == open_store(generated).checksum
    assert (out / "augmentation.png").stat().st_size > 5000
    assert result["label_source"] == "gz2"
    assert "edge_on" in result["rare_classes"]
    counts = result["counts"]
    real_labels = store_labels(open_store(real), "gz2", None, len(open_store(real)))
    assert counts["real_train"]["edge_on"] + counts["real_test"]["edge_on"] == 16
    assert sum(counts["real_train"].values()) + sum(counts["real_test"].values()) == \
        len(real_labels)
    assert set(k for k, v in counts["generated"].items() if v) == {"edge_on"}
    real_arm, aug_arm = (result["arms"][a]["mean"] for a in ("real", "real_plus_generated"))
    assert real_arm["per_class"]["edge_on"]["support"] == counts["real_test"]["edge_on"]
    # What the experiment is for: the class real data lacks is found far more often
    # (measured: completeness 0.0 -> 0.75 of 8 held-out edge-on disks, purity 0.08: the
    # generated set also shifts the classifier's prior, which the purity shows).
    gain = (aug_arm["per_class"]["edge_on"]["completeness"]
            - real_arm["per_class"]["edge_on"]["completeness"])
    assert gain > 0.3, (real_arm["per_class"]["edge_on"], aug_arm["per_class"]["edge_on"])
    from galaxy_hpc.evaluate.report import build_report

    assert "augmentation" in build_report(run_dir).sections
    report = build_report(out)
    assert "augmentation" in report.sections and "augmentation.png" in report.images
    page = Path(report.html).read_text()
    assert "Augmentation: a classifier on real vs real + generated" in page
    assert "edge_on (rare)" in page and (Path(report.html).parent / "augmentation.png").is_file()


def test_bad_configs_are_named(stores, tmp_path):
    from galaxy_hpc.evaluate.augmentation import run_augmentation
    from galaxy_hpc.evaluate.augmentation_config import AugmentationConfig

    real, generated = stores
    with pytest.raises(ValueError, match="real_store and generated_store"):
        AugmentationConfig(real_store=str(real))
    with pytest.raises(ValueError, match="no labels both stores have"):
        run_augmentation(AugmentationConfig(real_store=str(real), generated_store=str(generated),
                                            labels="column", label_column="klass",
                                            output_dir=str(tmp_path)))
