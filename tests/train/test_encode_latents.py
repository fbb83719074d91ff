"""`galaxy-hpc encode` and SD training from cached latents (data.latents).

The latent store holds what diffusers' VAE makes of each exactly transformed image (checked
by a script that imports diffusers and zarr, never galaxy_hpc); the same bytes on 1 and 2
MPI ranks; a rerun encodes only unfinished shards; training draws from it reproducibly,
takes the cached caption states, refuses another VAE's or another store's latents, and a
2-step LoRA run completes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from galaxy_hpc.encode.job import EncodeConfig, run_encode

REPO = Path(__file__).resolve().parents[2]
CONFIG = str(REPO / "configs" / "train" / "sd_lora_tiny.yaml")
PLAIN = REPO / "tests" / "third_party" / "latents_match_vae.py"


def tiny_folder(store, path, seed=0):
    from galaxy_hpc.models.sd.components import write_tiny_sd
    from hpc.store import open_store

    captions = list(open_store(store).read_column("caption"))
    return write_tiny_sd(path, captions=captions, image_size=64, seed=seed)


@pytest.fixture(scope="module")
def model(synth_store, tmp_path_factory):
    return tiny_folder(synth_store, tmp_path_factory.mktemp("encode") / "tiny-sd")


@pytest.fixture(scope="module")
def encoded(synth_store, model):
    """The synth store encoded in this process on one thread (as the MPI ranks run)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        out = model.parent / "latents.zarr"
        summary = run_encode(EncodeConfig(store=str(synth_store), model=str(model), out=str(out)),
                             progress=False)
    finally:
        torch.set_num_threads(threads)
    return out, summary


def sd_config(store, model, latents, *overrides):
    from hpc.config import load_config

    import galaxy_hpc.registry  # noqa: F401  (the train_sd kind)

    return load_config(CONFIG, [f"data.store={store}", "model.tiny=false",
                                f"model.pretrained_model_name_or_path={model}",
                                f"data.latents={latents}", "data.augment=false", *overrides])


def family(cfg):
    from galaxy_hpc.models.contract import DataFacts
    from galaxy_hpc.models.sd.family import SDFamily
    from hpc.store import open_store

    facts = DataFacts(store=open_store(cfg.data.store), stretch=None, caption_column="caption",
                      condition_columns=())
    sd = SDFamily(cfg, data=facts, device=torch.device("cpu"), dtype=torch.float32)
    sd.build()
    return sd


def test_cached_distributions_are_what_diffusers_vae_makes(synth_store, model, encoded):
    out, summary = encoded
    assert summary.num_items == 96 and summary.shards_encoded == [0, 1, 2]
    assert summary.text_captions is not None and summary.text_captions >= 2
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run([sys.executable, str(PLAIN), str(synth_store), str(out), str(model),
                           "0", "95"], capture_output=True, text=True, timeout=300,
                          env=env, cwd=REPO / "tests" / "third_party")
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["max_mean_diff"] < 1e-4 and report["max_logvar_diff"] < 1e-4, report
    from hpc.store import open_store

    attrs = open_store(out).attrs["encode"]
    assert attrs["scaling_factor"] == report["scaling_factor"]
    assert attrs["source"]["checksum"] == open_store(synth_store).checksum


def test_a_rerun_encodes_only_unfinished_shards(synth_store, model, encoded, tmp_path):
    from galaxy_hpc.encode.job import _load, _prepare
    from galaxy_hpc.models.sd.latent_cache import module_fingerprint
    from hpc.store import open_store, open_store_for_writing

    full, summary = encoded
    cfg = EncodeConfig(store=str(synth_store), model=str(model), out=str(tmp_path / "l.zarr"),
                       text=False)
    parts = _load(cfg)
    source = open_store(synth_store)
    _prepare(cfg, source, parts, module_fingerprint(parts.vae))  # a job killed after shard 1
    open_store_for_writing(cfg.out).write_shard(1, open_store(full).read_images(32, 64))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        resumed = run_encode(cfg, progress=False)
    finally:
        torch.set_num_threads(threads)
    assert resumed.shards_encoded == [0, 2] and resumed.checksum == summary.checksum
    assert "resumed: encoded shards 0, 2 (2 of 3" in resumed.line()
    assert run_encode(cfg, progress=False).already_complete
    with pytest.raises(ValueError, match="batch_size"):  # other settings: refused, listed
        run_encode(EncodeConfig(store=cfg.store, model=cfg.model, out=cfg.out, batch_size=5))


@pytest.mark.mpi
def test_two_ranks_write_the_same_bytes(galaxy_hpc, mpiexec, synth_store, model, encoded,
                                        tmp_path):
    out = tmp_path / "two.zarr"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([mpiexec, "-n", "2", galaxy_hpc, "encode", str(synth_store),
                           "--model", str(model), "--out", str(out), "--json"],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout)
    assert summary["num_ranks"] == 2 and summary["checksum"] == encoded[1].checksum


def test_training_batches_come_from_the_cache(synth_store, model, encoded):
    from hpc.store import open_store

    sd = family(sd_config(synth_store, model, encoded[0], "data.shuffle_caption_tags=false"))
    assert sd.cached is not None and sd.cached.text is not None
    captions = list(open_store(synth_store).read_column("caption")[:4]) + [""]
    # What the loop's dataset gives from cached latents: no pixel_values.
    batch = {"index": torch.tensor([0, 1, 2, 3, 4]), "caption": captions}
    draws = []
    for seed in (7, 7, 8):  # the loop seeds torch from the micro-step: a resume redraws
        torch.manual_seed(seed)
        draws.append(sd.prepare_batch(batch))
    assert torch.equal(draws[0]["latents"], draws[1]["latents"])
    assert not torch.equal(draws[0]["latents"], draws[2]["latents"])
    assert draws[0]["latents"].shape == (5, 4, 8, 8)
    with torch.no_grad():
        wanted = sd.parts.text_encoder(sd.tokenize(captions))[0]
    torch.testing.assert_close(draws[0]["encoder_hidden_states"], wanted, atol=1e-5, rtol=1e-5)
    # Shuffled tags make new captions each step: encoded per step, the cache left aside.
    assert family(sd_config(synth_store, model, encoded[0])).cached.text is None


def test_latents_of_another_vae_or_store_are_refused(synth_store, model, encoded, tmp_path):
    other = tiny_folder(synth_store, tmp_path / "other-sd", seed=1)
    with pytest.raises(ValueError, match=r"encoded with the VAE of .*tiny-sd"):
        family(sd_config(synth_store, other, encoded[0]))
    from galaxy_hpc.data.synth.job import SynthJobConfig, run_synth

    store = tmp_path / "other.zarr"
    run_synth(SynthJobConfig(out=str(store), num_galaxies=96, seed=12, shard_size=32),
              progress=False)
    with pytest.raises(ValueError, match="not from data.store"):
        family(sd_config(store, model, encoded[0]))
    with pytest.raises(ValueError, match="any angle"):
        sd_config(synth_store, model, encoded[0], "data.augment=true")


def test_lora_trains_from_latents(galaxy_hpc, synth_store, model, encoded, tmp_path):
    out = tmp_path / "run"
    done = subprocess.run(
        [galaxy_hpc, "train", CONFIG, "--json", f"data.store={synth_store}",
         f"run.output_dir={out}", "run.max_steps=2", "run.log_every=1", "model.tiny=false",
         f"model.pretrained_model_name_or_path={model}", f"data.latents={encoded[0]}",
         "data.augment=false", "data.shuffle_caption_tags=false"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)
    assert result["ok"] and result["step"] == 2 and np.isfinite(result["loss"])
    assert (out / "lora" / "pytorch_lora_weights.safetensors").is_file()
