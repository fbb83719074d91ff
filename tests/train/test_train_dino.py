"""The DINOv2 vote-fraction regressor through the real loop and DeepSpeed, tiny.

Head stage then full stage (from the head stage's predictor) on 32 px synthetic
galaxies: the loss goes down, the exported folder loads through load_vote_predictor and
every question of its output sums to one, held-out metrics and the plot are written.
Interrupted and resumed across an epoch boundary, training reaches the same weights.
Two MPI ranks under ZeRO-3 train LoRA adapters on a store with vote counts (the
Dirichlet-multinomial loss). The two losses and the metrics are checked against hand
computations in process.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from support.cli_runs import last_json, log_rows, quiet_env
from support.cli_runs import train as run_train
from support.stores import write_synth_store

REPO = Path(__file__).resolve().parents[2]
HEAD_TINY = str(REPO / "configs" / "train" / "dino_head_tiny.yaml")
FULL_TINY = str(REPO / "configs" / "train" / "dino_full_tiny.yaml")
FROM_SCRATCH = ("model.init_from=null",
                "model.tiny={hidden_size: 32, num_layers: 2, num_heads: 2, patch_size: 8}")
ENV = quiet_env()
NUM_VOLUNTEERS = 44
# The full stage's assertions (weights move, finite losses, an export that loads) need a
# few steps past its 5 of warm-up, not a falling loss; a step of it costs over a second on
# 2 cores.
FULL_STEPS = 8


def train(galaxy_hpc, config, store, out, *overrides, launcher=()):
    return last_json(run_train(galaxy_hpc, config, store, out, "run.log_every=1", *overrides,
                               launcher=launcher, env=ENV))


@pytest.fixture(scope="module")
def store32(tmp_path_factory):
    out = tmp_path_factory.mktemp("dino-data") / "synth32.zarr"
    return write_synth_store(out, num_galaxies=160, seed=3, shard_size=32, size=32, output="uint8")


@pytest.fixture(scope="module")
def count_store(store32, tmp_path_factory):
    """store32's images and fractions plus the 37 `_count` columns of 44 volunteers: each
    question's fractions times the volunteers who reached it (the tree's route)."""
    from galaxy_hpc.data.gz2 import ANSWERS, QUESTIONS, column_name, question_reach
    from hpc.store import StoreSpec, create_store, finalize_store, open_store

    source = open_store(store32)
    names = [column_name(a) for a in ANSWERS]
    fractions = np.stack([source.read_column(c) for c in names], axis=1)
    reached = np.rint(question_reach(fractions) * NUM_VOLUNTEERS)
    counts = np.zeros_like(fractions)
    for q in QUESTIONS:
        counts[:, q.columns] = np.rint(fractions[:, q.columns] * reached[:, [q.number - 1]])
    columns = {"id": "str", **{c: "float64" for c in names},
               **{column_name(a, "count"): "int64" for a in ANSWERS}}
    out = tmp_path_factory.mktemp("dino-data") / "counts32.zarr"
    spec = StoreSpec(image_shape=source.spec.image_shape, image_dtype=source.spec.image_dtype,
                     columns=columns, shard_size=32)
    writer = create_store(out, spec, num_items=len(source))
    ids = source.read_column("id")
    for j in writer.pending_shards():
        a, b = writer.shard_bounds(j)
        values = {"id": ids[a:b], **{c: fractions[a:b, k] for k, c in enumerate(names)},
                  **{column_name(x, "count"): counts[a:b, k].astype(np.int64)
                     for k, x in enumerate(ANSWERS)}}
        writer.write_shard(j, source.read_images(a, b), values)
    finalize_store(out)
    return out


@pytest.fixture(scope="module")
def head_run(galaxy_hpc, store32, tmp_path_factory):
    out = tmp_path_factory.mktemp("dino") / "head"
    return out, train(galaxy_hpc, HEAD_TINY, store32, out, "run.max_steps=24")


@pytest.fixture(scope="module")
def full_run(galaxy_hpc, store32, head_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("dino") / "full"
    return out, train(galaxy_hpc, FULL_TINY, store32, out,
                      f"model.init_from={head_run[0] / 'predictor'}", f"run.max_steps={FULL_STEPS}")


# ---------------------------------------------------------------- through the loop


def test_head_stage_loss_goes_down_and_writes_metrics(head_run):
    out, result = head_run
    assert result["ok"] and result["step"] == 24 and result["artifact"] == str(out / "predictor")
    losses = [r["loss"] for r in log_rows(out)]
    assert np.mean(losses[-6:]) < 0.9 * np.mean(losses[:3]), losses
    manifest = json.loads((out / "predictor" / "predictor.json").read_text())
    assert manifest["kind"] == "dino" and manifest["stage"] == "head"
    assert manifest["loss"] == "cross_entropy" and manifest["image_size"] == 32
    metrics = json.loads((out / "predictor" / "metrics.json").read_text())
    assert {"r", "r2", "mae", "r_centred", "r2_centred", "main_class_accuracy",
            "kaggle_rmse"} <= set(metrics["overall"])
    assert len(metrics["questions"]) == 11 and "constant_baseline" in metrics
    assert 0 < metrics["split"]["num_heldout"] < 160
    assert (out / "eval" / "true_vs_predicted.png").stat().st_size > 10_000
    assert (out / "samples" / "step-00000024.png").is_file()


def test_full_stage_from_head_stage_trains_the_backbone(full_run, head_run):
    from safetensors.torch import load_file

    out, result = full_run
    assert result["ok"] and result["step"] == FULL_STEPS
    rows = log_rows(out)
    assert all(np.isfinite(r["loss"]) and 0 <= r["mae"] <= 1 for r in rows)
    before = load_file(head_run[0] / "predictor" / "backbone" / "model.safetensors")
    after = load_file(out / "predictor" / "backbone" / "model.safetensors")
    assert before.keys() == after.keys()
    assert any(not torch.equal(before[k], after[k]) for k in before)  # the full stage moved it
    manifest = json.loads((out / "predictor" / "predictor.json").read_text())
    assert manifest["stage"] == "full" and manifest["init_from"] == str(head_run[0] / "predictor")


def test_exported_predictor_loads_and_questions_sum_to_one(full_run, store32, synth_store):
    from galaxy_hpc.data.gz2 import QUESTIONS, fractions_to_kaggle
    from galaxy_hpc.models.store_predictions import predict_store
    from galaxy_hpc.models.vote_predictor import VotePredictor, load_vote_predictor
    from hpc.store import open_store

    predictor = load_vote_predictor(full_run[0] / "predictor")
    assert isinstance(predictor, VotePredictor) and predictor.image_size == 32
    x = torch.rand(5, 3, 32, 32) * 2 - 1
    fractions = predictor.predict_fractions(x)
    assert fractions.shape == (5, 37) and fractions.dtype == torch.float32
    for q in QUESTIONS:
        assert torch.allclose(fractions[:, q.columns].sum(1), torch.ones(5), atol=1e-5)
    assert np.allclose(predictor.predict_kaggle(x), fractions_to_kaggle(fractions.numpy()))
    # The held-out figures are those of the folder as loaded here.
    saved = np.load(full_run[0] / "eval" / "heldout_predictions.npz")
    again = predict_store(predictor, open_store(store32), indices=saved["index"])
    assert np.allclose(again, saved["predicted"], atol=1e-6)
    # A store of another side (64 px) is resized to the predictor's 32.
    other = predict_store(predictor, open_store(synth_store), start=0, stop=8)
    assert other.shape == (8, 37) and np.isfinite(other).all()


def test_resume_across_an_epoch_is_exact(galaxy_hpc, store32, tmp_path):
    """160 items, batches of 16: an epoch is 10 steps. Stopped at 6 and resumed to 14, the
    run reaches the same weights and losses as 14 steps straight through."""
    from safetensors.torch import load_file

    # A constant schedule: a cosine one depends on max_steps, which the split run changes.
    # Validation every 3 steps: a resumed run validates as the straight one did, and
    # still knows the best so far (saved with each checkpoint).
    common = (*FROM_SCRATCH, "run.checkpoint_every=6", "model.head.dropout=0.2",
              "optim.schedule=constant", "run.eval_every=3")
    train(galaxy_hpc, FULL_TINY, store32, tmp_path / "straight", "run.max_steps=14", *common)
    train(galaxy_hpc, FULL_TINY, store32, tmp_path / "split", "run.max_steps=6", *common)
    resumed = train(galaxy_hpc, FULL_TINY, store32, tmp_path / "split", "run.max_steps=14",
                    *common)
    assert resumed["resumed_from"] == 6
    for name in ("backbone/model.safetensors", "head.safetensors"):
        a = load_file(tmp_path / "straight" / "predictor" / name)
        b = load_file(tmp_path / "split" / "predictor" / name)
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), name
    straight, split = log_rows(tmp_path / "straight"), log_rows(tmp_path / "split")
    assert [r["loss"] for r in straight if "loss" in r] == \
        [r["loss"] for r in split if "loss" in r]
    assert [r["epoch"] for r in straight if "epoch" in r][-1] == 1  # crossed into epoch 1
    validated = [(r["step"], r["val_loss"], r["best_val_step"]) for r in straight
                 if "val_loss" in r]
    assert [step for step, _, _ in validated] == [3, 6, 9, 12]
    assert validated == [(r["step"], r["val_loss"], r["best_val_step"]) for r in split
                         if "val_loss" in r]
    assert (tmp_path / "split" / "checkpoints" / "best.json").read_text() == \
        (tmp_path / "straight" / "checkpoints" / "best.json").read_text()


@pytest.mark.mpi
def test_two_ranks_zero3_lora_with_dirichlet_multinomial(galaxy_hpc, mpiexec, count_store,
                                                         tmp_path):
    from galaxy_hpc.models.vote_predictor import load_vote_predictor

    out = tmp_path / "zero3"
    # Validation every 2 steps; a min_delta no loss can beat with patience 1 stops the
    # run at the second validation (step 4 of 6), the first one's checkpoint the best.
    result = train(galaxy_hpc, FULL_TINY, count_store, out, *FROM_SCRATCH, "model.stage=lora",
                   "zero.stage=3", "run.max_steps=6", "run.micro_batch_size=8",
                   "run.num_samples=4", "data.validation_fraction=0.2", "run.eval_every=2",
                   "run.early_stopping={patience: 1, min_delta: 1.0e9}",
                   "run.export_weights=best", launcher=(mpiexec, "-n", "2"))
    assert result["ok"] and result["step"] == 4
    assert result["validation"]["stopped_early"] and result["validation"]["best_step"] == 2
    assert result["exported_step"] == 2  # run.export_weights=best
    assert (out / "samples" / "best-step-00000002.png").is_file()
    marker = json.loads((out / "checkpoints" / "checkpoint-00000004" / "COMPLETE").read_text())
    assert marker["world_size"] == 2 and marker["zero_stage"] == 3
    manifest = json.loads((out / "predictor" / "predictor.json").read_text())
    assert manifest["loss"] == "dirichlet_multinomial" and manifest["stage"] == "lora"
    assert manifest["heldout"]["fraction"] == 0.2
    rows = log_rows(out)
    assert all(np.isfinite(r["loss"]) and r["loss"] > 0 for r in rows if "loss" in r)
    # Validation rows at the expected steps, each the mean over both ranks' shares of the
    # held-out items (under ZeRO-3 the same whole batches of 8 on each rank).
    from galaxy_hpc.data.split import Split

    held = len(Split.of(160, fraction=0.2, seed=0).heldout)
    validations = [r for r in rows if "val_loss" in r]
    assert [r["step"] for r in validations] == [2, 4]
    assert all(r["val_items"] == held // 16 * 16 and np.isfinite(r["val_loss"])
               for r in validations)
    assert validations[1]["best_val_step"] == 2
    assert validations[1]["best_val_loss"] == validations[0]["val_loss"]
    # The best checkpoint is kept, named, and loads (DeepSpeed's own consolidation of
    # the ZeRO-3 shards), holding the trained weights.
    best = json.loads((out / "checkpoints" / "best.json").read_text())
    assert best["checkpoint"] == "checkpoint-00000002"
    assert result["validation"]["best_checkpoint"] == str(out / "checkpoints" / best["checkpoint"])
    from deepspeed.utils.zero_to_fp32 import get_fp32_state_dict_from_zero_checkpoint

    state = get_fp32_state_dict_from_zero_checkpoint(str(out / "checkpoints"),
                                                     tag=best["checkpoint"])
    assert any("lora" in name for name in state) and any(k.startswith("head.") for k in state)
    assert all(torch.isfinite(v).all() for v in state.values())
    # The exported head is the best checkpoint's (step 2), not the last step's (4).
    from safetensors.torch import load_file

    head = load_file(out / "predictor" / "head.safetensors")
    at_best = {k[len("head."):]: v.float() for k, v in state.items() if k.startswith("head.")}
    last = get_fp32_state_dict_from_zero_checkpoint(str(out / "checkpoints"),
                                                    tag="checkpoint-00000004")
    assert head.keys() == at_best.keys()
    assert all(torch.equal(head[k], at_best[k]) for k in head)
    assert not all(torch.equal(head[k], last["head." + k].float()) for k in head)
    # LoRA adapters were merged: the backbone folder is a plain Dinov2Model.
    from transformers import Dinov2Model

    backbone = Dinov2Model.from_pretrained(out / "predictor" / "backbone")
    assert not any("lora" in name for name, _ in backbone.named_parameters())
    fractions = load_vote_predictor(out / "predictor").predict_fractions(
        torch.zeros(2, 3, 32, 32))
    assert fractions.shape == (2, 37) and torch.isfinite(fractions).all()


# ---------------------------------------------------------------- pieces, in process


def hand_dm_nll(alpha: np.ndarray, counts: np.ndarray) -> float:
    """-log P(counts | alpha) of one galaxy, question by question, with math.lgamma."""
    from galaxy_hpc.data.gz2 import QUESTIONS

    total = 0.0
    for q in QUESTIONS:
        a, k = alpha[q.columns], counts[q.columns]
        n, a0 = k.sum(), a.sum()
        log_p = math.lgamma(n + 1) - sum(math.lgamma(x + 1) for x in k)
        log_p += math.lgamma(a0) - math.lgamma(n + a0)
        log_p += sum(math.lgamma(x + y) - math.lgamma(y) for x, y in zip(k, a))
        total -= log_p
    return total


def test_dirichlet_multinomial_matches_hand_and_scipy():
    from scipy.stats import dirichlet_multinomial

    from galaxy_hpc.data.gz2 import QUESTIONS
    from galaxy_hpc.models.dino.tree import dirichlet_multinomial_nll

    rng = np.random.default_rng(0)
    logits = rng.normal(0, 1.5, (3, 37))
    counts = rng.integers(0, 9, (3, 37)).astype(np.float64)
    counts[1, QUESTIONS[7].columns] = 0  # question 8 unreached for galaxy 1
    ours = dirichlet_multinomial_nll(torch.tensor(logits), torch.tensor(counts)).double()
    hand = [hand_dm_nll(np.exp(logits[i]), counts[i]) for i in range(3)]
    assert np.allclose(ours.numpy(), hand, rtol=1e-5)
    q = QUESTIONS[4]  # one question of 4 answers (the rest unreached), against scipy
    one_logits, one_counts = torch.zeros(1, 37, dtype=torch.float64), torch.zeros(1, 37)
    one_logits[0, q.columns] = torch.tensor(logits[0, q.columns])
    one_counts[0, q.columns] = torch.tensor(counts[0, q.columns], dtype=torch.float32)
    alpha, k = np.exp(logits[0, q.columns]), counts[0, q.columns]
    assert float(dirichlet_multinomial_nll(one_logits, one_counts)[0]) == pytest.approx(
        -dirichlet_multinomial.logpmf(k, alpha, k.sum()), rel=1e-5)
    # An unreached question contributes nothing, whatever the prediction.
    zero = torch.zeros(1, 37)
    assert float(dirichlet_multinomial_nll(torch.randn(1, 37) * 3, zero)[0]) == pytest.approx(
        0.0, abs=1e-5)


def test_tree_cross_entropy_matches_hand():
    from galaxy_hpc.data.gz2 import QUESTIONS, question_reach
    from galaxy_hpc.models.dino.tree import tree_cross_entropy, tree_softmax

    rng = np.random.default_rng(1)
    logits = rng.normal(0, 2, (2, 37))
    fractions = np.zeros((2, 37))
    for q in QUESTIONS:
        width = q.columns.stop - q.columns.start
        fractions[:, q.columns] = rng.dirichlet(np.ones(width), size=2)
    fractions[0, QUESTIONS[10].columns] = 0  # nobody reached question 11
    reach = question_reach(fractions)
    ours = tree_cross_entropy(torch.tensor(logits), torch.tensor(fractions),
                              torch.tensor(reach))
    for i in range(2):
        hand = 0.0
        for q in QUESTIONS:
            z = logits[i, q.columns]
            log_p = z - np.log(np.exp(z).sum())
            hand -= reach[i, q.number - 1] * float((fractions[i, q.columns] * log_p).sum())
        assert float(ours[i]) == pytest.approx(hand, rel=1e-5)
    p = tree_softmax(torch.tensor(logits))
    for q in QUESTIONS:
        assert torch.allclose(p[:, q.columns].sum(1), torch.ones(2, dtype=p.dtype))


def test_metrics_on_hand_made_fractions():
    from galaxy_hpc.models.dino.metrics import mean_fractions, scores, vote_metrics

    assert scores([1, 2, 3], [2, 4, 6])["r"] == pytest.approx(1.0)
    s = scores([0.0, 1.0, 2.0, 3.0], [0.0, 1.0, 2.0, 5.0])
    assert s["mae"] == pytest.approx(0.5) and s["r2"] == pytest.approx(1 - 4 / 5)
    assert scores([1, 2, 3], [2, 2, 2])["r"] == 0.0  # a constant tells nothing apart
    rng = np.random.default_rng(2)
    smooth = rng.uniform(0, 1, 200)
    true = np.zeros((200, 37))
    true[:, 0], true[:, 1] = smooth, 1 - smooth  # Q1 only (star 0); Q2 etc. unreached
    true[:, 13], true[:, 14] = 0.1, 0.9  # Q6 asked of everyone
    true[:, 15] = 1.0  # Q7: all "completely round"
    perfect = vote_metrics(true, true)
    q1 = perfect["questions"]["q01_smooth_or_features"]
    assert q1["r"] == pytest.approx(1.0) and q1["mae"] == 0 and q1["accuracy"] == 1.0
    assert q1["num_galaxies"] == 200
    assert perfect["questions"]["q02_edgeon"]["num_galaxies"] == 0  # never reached
    # Predicting the average fractions: high pooled r, centred r of 0 (why both).
    average = vote_metrics(true, np.broadcast_to(mean_fractions(true), true.shape))
    assert average["overall"]["r"] > 0.8 and average["overall"]["r_centred"] == 0.0
    assert average["overall"]["r2_centred"] == pytest.approx(0.0, abs=1e-9)
    # Within-answer pooling by hand: Q1's answers smooth and features (star is always 0).
    noisy = true.copy()
    noisy[:, 0] = np.clip(smooth + rng.normal(0, 0.1, 200), 0, 1)
    noisy[:, 1] = 1 - noisy[:, 0]
    t, p = true[:, :3], noisy[:, :3]
    dt, dp = t - t.mean(0), p - p.mean(0)
    q1 = vote_metrics(true, noisy)["questions"]["q01_smooth_or_features"]
    assert q1["r"] == pytest.approx((dt * dp).sum() / np.sqrt((dt ** 2).sum() * (dp ** 2).sum()))
    assert q1["r2"] == pytest.approx(1 - ((t - p) ** 2).sum() / (dt ** 2).sum())
    assert average["questions"]["q01_smooth_or_features"]["mae"] == pytest.approx(
        np.abs(smooth - smooth.mean()).mean() * 2 / 3)


def dino_family(cfg):
    """The family as the loop makes it: handed what the dataset found in the store, and
    the held-out split."""
    from galaxy_hpc.data.dataset import StoreDataset
    from galaxy_hpc.data.split import Split
    from galaxy_hpc.models.contract import DataFacts
    from galaxy_hpc.models.dino.family import DinoFamily

    dataset = StoreDataset(cfg.data.store, shuffle=False)
    split = Split.of(len(dataset.store), fraction=cfg.data.validation_fraction,
                     seed=cfg.data.validation_seed)
    facts = DataFacts.of(dataset, cfg.data, split)
    return DinoFamily(cfg, data=facts, device=torch.device("cpu"), dtype=torch.float32)


def test_heldout_split_is_the_shared_one(store32):
    from galaxy_hpc.data.split import heldout_mask
    from galaxy_hpc.train.config import TrainDinoConfig
    from hpc.config import load_config

    cfg = load_config(HEAD_TINY, [f"data.store={store32}"])
    assert isinstance(cfg, TrainDinoConfig) and cfg.data.validation_fraction == 0.1
    family = dino_family(cfg)
    torch.manual_seed(0)
    module = family.build()
    assert np.array_equal(family.heldout, heldout_mask(160, fraction=0.1, seed=0))
    kept = np.flatnonzero(~family.heldout)[:5]
    batch = family.prepare_batch({"index": torch.from_numpy(kept),
                                  "pixel_values": torch.zeros(5, 3, 32, 32)})
    assert batch["features"].shape == (5, 64) and batch["weight"].tolist() == [1.0] * 5
    loss, parts = module(batch)
    assert torch.isfinite(loss) and set(parts) == {"mae"}
    # The default validation loss is the training loss of the same batch.
    module.eval()
    with torch.no_grad():
        again, terms = family.validation_loss(module, batch)
    assert torch.equal(again, module(batch)[0]) and set(terms) == {"mae"}
    with pytest.raises(ValueError, match="data.validation_fraction"):
        load_config(HEAD_TINY, [f"data.store={store32}", "data.validation_fraction=0"])


def test_configs_refuse_mistakes_and_sbatch_script(store32):
    from hpc.config import ConfigError, load_config

    with pytest.raises(ConfigError, match="backbone and tiny"):
        load_config(HEAD_TINY, ["model.backbone=/some/dinov2-base"])
    with pytest.raises(ConfigError, match="target_suffix"):
        load_config(HEAD_TINY, ["model.target_suffix=count"])
    with pytest.raises(ConfigError, match="condition_columns"):
        load_config(HEAD_TINY, ["data.condition_columns=[redshift]"])
    cfg = load_config(HEAD_TINY, [f"data.store={store32}", "model.tiny=null"])
    with pytest.raises(ValueError, match="exactly one source"):
        dino_family(cfg).build()
    cfg = load_config(HEAD_TINY, [f"data.store={store32}", "model.loss=dirichlet_multinomial"])
    with pytest.raises(ValueError, match="needs vote counts"):
        dino_family(cfg).build()
    cfg = load_config(HEAD_TINY, [f"data.store={store32}", "model.tiny=null",
                                  f"model.backbone={store32}"])
    with pytest.raises(ValueError, match="not a transformers model folder"):
        dino_family(cfg).build()
    script = REPO / "slurm" / "train_dino.sbatch"
    assert subprocess.run(["bash", "-n", str(script)], check=False).returncode == 0
    assert os.access(script, os.X_OK) and "ghpc_srun train" in script.read_text()
