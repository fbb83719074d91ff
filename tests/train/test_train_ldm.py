"""Latent diffusion from scratch through the real loop and DeepSpeed.

Stage 1 (AutoencoderKL) trains on a synthetic store, its loss goes down and the
exported VAE reconstructs better than a fresh one, with a scaling factor that gives
unit-variance latents; a float32 flux store (4 bands) trains too. Stage 2 (the
conditional latent UNet) trains on stage 1's output in 1 process (37 GZ2 vote
fractions) and on 2 MPI ranks under ZeRO-3 (flux store, [redshift, log_stellar_mass]).
The pipeline folder loads in a fresh process and guidance changes what it draws.
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
from support.cli_runs import last_json, log_rows, quiet_env
from support.cli_runs import train as run_train
from support.stores import write_synth_store

REPO = Path(__file__).resolve().parents[2]
VAE_TINY = str(REPO / "configs" / "train" / "ldm_vae_tiny.yaml")
UNET_TINY = str(REPO / "configs" / "train" / "ldm_unet_tiny.yaml")


ENV = quiet_env()


def train(galaxy_hpc, config, store, out, *overrides, launcher=()):
    return last_json(run_train(galaxy_hpc, config, store, out, "run.log_every=1", *overrides,
                               launcher=launcher, env=ENV))


def losses(out):
    return [row["loss"] for row in log_rows(out)]


@pytest.fixture(scope="module")
def flux_store(tmp_path_factory):
    out = tmp_path_factory.mktemp("ldm-flux") / "flux64.zarr"
    return write_synth_store(out, num_galaxies=48, seed=5, shard_size=16, output="float32",
                             bands=("g", "r", "i", "z"))


@pytest.fixture(scope="module")
def stage1(galaxy_hpc, synth_store, tmp_path_factory):
    out = tmp_path_factory.mktemp("ldm") / "vae"
    result = train(galaxy_hpc, VAE_TINY, synth_store, out, "run.max_steps=30")
    return out, result


@pytest.fixture(scope="module")
def stage2(galaxy_hpc, synth_store, stage1, tmp_path_factory):
    out = tmp_path_factory.mktemp("ldm") / "unet"
    result = train(galaxy_hpc, UNET_TINY, synth_store, out, f"model.vae_path={stage1[0] / 'vae'}",
                   "run.max_steps=24")
    return out, result


@pytest.fixture(scope="module")
def flux_stage1(galaxy_hpc, flux_store, tmp_path_factory):
    out = tmp_path_factory.mktemp("ldm") / "vae-flux"
    result = train(galaxy_hpc, VAE_TINY, flux_store, out, "run.max_steps=8",
                   "run.micro_batch_size=4", "model.scaling_num_items=32")
    return out, result


def stretched(store, count=32):
    from galaxy_hpc.data.dataset import StoreDataset
    from galaxy_hpc.models.ldm.images import spread_indices, stretched_images

    dataset = StoreDataset(store, shuffle=False)  # the stretch the training loop applied
    return stretched_images(dataset.store, dataset.stretch,
                            spread_indices(len(dataset.store), count))


@torch.no_grad()
def reconstruction_mse(vae, images):
    x = torch.from_numpy(images)
    return float((vae.decode(vae.encode(x).latent_dist.mode()).sample - x).pow(2).mean())


# ---------------------------------------------------------------- stage 1


def test_stage1_loss_goes_down_and_exports_a_vae(stage1):
    out, result = stage1
    assert result["ok"] and result["step"] == 30 and result["artifact"] == str(out / "vae")
    values = losses(out)
    first, last = np.mean(values[:4]), np.mean(values[-8:])
    assert last < 0.6 * first, (first, last)
    assert (out / "vae" / "config.json").is_file()
    assert (out / "samples" / "step-00000030.png").is_file()


def test_stage1_vae_reconstructs_better_than_init_with_unit_latents(stage1, synth_store):
    from diffusers import AutoencoderKL

    folder = stage1[0] / "vae"
    trained = AutoencoderKL.from_pretrained(folder).eval()
    torch.manual_seed(0)
    fresh = AutoencoderKL.from_config(trained.config).eval()
    images = stretched(synth_store)
    after, before = reconstruction_mse(trained, images), reconstruction_mse(fresh, images)
    assert after < 0.3 * before, (before, after)
    info = json.loads((folder / "galaxy_hpc_vae.json").read_text())
    assert info["stretch"] == {"kind": "uint8"} and info["reconstruction_mse"] < 0.3 * before
    # LDM's rescaling: (z - shift) * scale has unit variance on the data.
    with torch.no_grad():
        z = trained.encode(torch.from_numpy(images)).latent_dist.sample()
    unit = (z - trained.config.shift_factor) * trained.config.scaling_factor
    assert abs(float(unit.std()) - 1.0) < 0.15 and abs(float(unit.mean())) < 0.15


def test_stage1_trains_on_a_float_flux_store(flux_stage1, flux_store):
    from diffusers import AutoencoderKL

    out, result = flux_stage1
    assert result["ok"] and np.isfinite(losses(out)).all()
    vae = AutoencoderKL.from_pretrained(out / "vae")
    assert vae.config.in_channels == vae.config.out_channels == 4  # g, r, i, z
    info = json.loads((out / "vae" / "galaxy_hpc_vae.json").read_text())
    assert info["stretch"]["kind"] == "asinh" and len(info["stretch"]["softening"]) == 4
    assert info["image_dtype"] == "float32" and info["latent_std"] > 0


# ---------------------------------------------------------------- stage 2


def test_stage2_trains_on_stage1_output(stage2):
    out, result = stage2
    assert result["ok"] and result["step"] == 24 and result["artifact"] == str(out / "pipeline")
    values = losses(out)
    # v-prediction on a zero terminal SNR (the defaults): the target at high noise is the
    # latent itself, which 24 steps learn only in part (epsilon reached ~0.6x here).
    assert np.mean(values[-8:]) < 0.8 * np.mean(values[:3]), values
    saved = (out / "config.yaml").read_text()
    assert "zero_terminal_snr: true" in saved and "prediction_type: v_prediction" in saved
    assert "t11_arms_number_a37_cant_tell_fraction" in saved  # the 37 GZ2 columns by default
    index = json.loads((out / "pipeline" / "model_index.json").read_text())
    assert index["_class_name"] == "GalaxyLDMPipeline"
    assert index["condition_encoder"] == ["galaxy_hpc.models.ldm.condition", "ConditionEncoder"]
    assert index["stretch"] == {"kind": "uint8"}


FRESH_PROCESS = """
import json, sys
import numpy as np, torch
from galaxy_hpc.models.ldm.pipeline import GalaxyLDMPipeline
pipe = GalaxyLDMPipeline.from_pretrained(sys.argv[1])
pipe.set_progress_bar_config(disable=True)
votes = np.random.default_rng(0).uniform(0, 1, (3, 37)).astype(np.float32)
run = lambda scale: pipe(conditions=votes, num_inference_steps=4, guidance_scale=scale,
                         generator=torch.Generator().manual_seed(0))
one, three = run(1.0), run(3.0)
try:
    pipe(conditions=votes[:, :5], num_inference_steps=1)
    refused = False
except ValueError:
    refused = True
print(json.dumps({
    "encoder": type(pipe.condition_encoder).__module__,
    "images": list(one.images.shape), "stretched": list(one.stretched.shape),
    "store_range": [float(one.store_values.min()), float(one.store_values.max())],
    "finite": bool(np.isfinite(one.stretched).all() and np.isfinite(three.stretched).all()),
    "guidance_change": float(np.abs(one.stretched - three.stretched).mean()),
    "repeat_change": float(np.abs(one.stretched - run(1.0).stretched).max()),
    "refused_wrong_width": refused}))
"""


def test_pipeline_loads_in_a_fresh_process_and_guidance_matters(stage2):
    folder = stage2[0] / "pipeline"
    done = subprocess.run([sys.executable, "-c", FRESH_PROCESS, str(folder)], check=False,
                          capture_output=True, text=True, timeout=300, cwd=folder.parent, env=ENV)
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found["encoder"] == "galaxy_hpc.models.ldm.condition"
    assert found["images"] == [3, 64, 64, 3] and found["stretched"] == [3, 3, 64, 64]
    assert found["finite"] and 0.0 <= found["store_range"][0] <= found["store_range"][1] <= 255.0
    assert found["repeat_change"] == 0.0  # same generator, same images
    assert found["guidance_change"] > 1e-4  # scale 3 vs 1: different images
    assert found["refused_wrong_width"]


# What diffusers alone reads from an exported scheduler folder: the noise schedule every
# sampler starts from.
SCHEDULE_PROCESS = """
import json, sys
from diffusers import DDPMScheduler, DPMSolverMultistepScheduler
folder = sys.argv[1]
loaded = DPMSolverMultistepScheduler.from_pretrained(folder)
loaded.set_timesteps(20)
train = DDPMScheduler.from_config(loaded.config)
train.set_timesteps(50)
print(json.dumps({
    "prediction_type": loaded.config.prediction_type,
    "first_timestep": int(loaded.timesteps[0]), "ddpm_first_timestep": int(train.timesteps[0]),
    "terminal_signal": float(train.alphas_cumprod[-1]) ** 0.5,
    "galaxy_hpc_imported": "galaxy_hpc" in sys.modules}))
"""


@pytest.mark.mpi
def test_stage2_two_ranks_zero3_on_flux_with_redshift_and_mass(galaxy_hpc, mpiexec, flux_store,
                                                               flux_stage1, tmp_path):
    """Also trained with a zero terminal SNR schedule (v-prediction): the exported
    scheduler keeps it, so every sampler starts from the pure noise the model was taught
    at its last timestep."""
    from galaxy_hpc.data.stretch import stretch_from_dict
    from galaxy_hpc.models.ldm.pipeline import GalaxyLDMPipeline
    from galaxy_hpc.generate.config import SamplerSection
    from galaxy_hpc.models.samplers import SAMPLERS, build_scheduler

    out = tmp_path / "zero3"
    vae = flux_stage1[0] / "vae"
    result = train(galaxy_hpc, UNET_TINY, flux_store, out, f"model.vae_path={vae}",
                   "data.condition_columns=[redshift,log_stellar_mass]", "zero.stage=3",
                   "ema.enabled=true", "run.max_steps=4", "run.micro_batch_size=4",
                   "run.num_samples=3", "data.validation_fraction=0.25", "run.eval_every=2",
                   "model.prediction_type=v_prediction", "model.zero_terminal_snr=true",
                   launcher=(mpiexec, "-n", "2"))
    assert result["ok"] and result["step"] == 4
    validations = [r for r in log_rows(out) if "val_loss" in r]  # of the EMA weights
    assert [r["step"] for r in validations] == [2, 4]
    assert all(np.isfinite(r["val_loss"]) and r["val_items"] > 0 for r in validations)
    assert result["validation"]["best_step"] in (2, 4)
    marker = json.loads((out / "checkpoints" / "checkpoint-00000004" / "COMPLETE").read_text())
    assert marker["world_size"] == 2 and marker["zero_stage"] == 3
    pipe = GalaxyLDMPipeline.from_pretrained(out / "pipeline")
    pipe.set_progress_bar_config(disable=True)
    assert pipe.condition_names == ["redshift", "log_stellar_mass"]
    made = pipe(conditions=[[0.05, 10.5], [0.2, 11.2]], num_inference_steps=2,
                generator=torch.Generator().manual_seed(1))
    assert made.images.shape == (2, 64, 64, 4) and made.stretched.shape == (2, 4, 64, 64)
    stretch = stretch_from_dict(json.loads((flux_stage1[0] / "vae" / "galaxy_hpc_vae.json")
                                           .read_text())["stretch"])
    assert np.allclose(made.store_values, stretch.inverse(made.stretched), rtol=1e-5, atol=1e-7)
    assert np.isfinite(made.stretched).all()

    done = subprocess.run([sys.executable, "-c", SCHEDULE_PROCESS, str(out / "pipeline" /
                                                                      "scheduler")],
                          check=False, capture_output=True, text=True, timeout=120, env=ENV)
    assert done.returncode == 0, done.stderr[-3000:]
    schedule = json.loads(done.stdout.strip().splitlines()[-1])
    assert not schedule["galaxy_hpc_imported"]
    assert schedule["prediction_type"] == "v_prediction"
    assert schedule["first_timestep"] == schedule["ddpm_first_timestep"] == 999  # trailing
    assert schedule["terminal_signal"] == 0.0  # scaled_linear alone leaves 0.068
    for name in SAMPLERS:  # generate / serve / sample build theirs from the same config
        sampler = build_scheduler(SamplerSection(name=name), pipe.scheduler.config)
        sampler.set_timesteps(10)
        assert int(sampler.timesteps[0]) == 999, name
        assert float(sampler.alphas_cumprod[-1]) < 1e-6, name


# ---------------------------------------------------------------- pieces, in process


def test_condition_encoder_null_tokens_and_normalisation():
    from galaxy_hpc.models.ldm.condition import ConditionEncoder

    torch.manual_seed(0)
    encoder = ConditionEncoder(num_conditions=2, num_tokens=3, embed_dim=8, hidden_dim=16,
                               mean=[0.1, 10.0], std=[0.05, 0.5])
    x = torch.tensor([[0.1, 10.0], [0.2, 11.0], [float("nan"), 10.0]])
    drop = torch.tensor([False, True, False])
    tokens = encoder(x, drop=drop)
    assert tokens.shape == (3, 3, 8) and torch.isfinite(tokens).all()
    null = encoder.norm(encoder.null_tokens)
    assert torch.allclose(tokens[1], null) and not torch.allclose(tokens[0], null)
    assert torch.allclose(tokens[2], tokens[0])  # NaN -> the column mean, like row 0
    with pytest.raises(ValueError, match=r"\(N, 2\)"):
        encoder(torch.zeros(3, 5))


def _tiny_unet_and_encoder():
    from diffusers import UNet2DConditionModel

    from galaxy_hpc.models.ldm.condition import ConditionEncoder

    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        sample_size=4, in_channels=4, out_channels=4, block_out_channels=(8, 16),
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), layers_per_block=1,
        norm_num_groups=4, cross_attention_dim=8, attention_head_dim=(2, 2),
        class_embed_type="projection", projection_class_embeddings_input_dim=8)
    encoder = ConditionEncoder(num_conditions=2, num_tokens=3, embed_dim=8, hidden_dim=16,
                               mean=[0.5, 0.5], std=[0.2, 0.2])
    return unet, encoder


def _capture_context(unet):
    seen = []
    unet.register_forward_pre_hook(
        lambda _, args, kwargs: seen.append((kwargs["encoder_hidden_states"].clone(),
                                             kwargs["class_labels"].clone())),
        with_kwargs=True)
    return seen


def test_guidance_uses_the_null_tokens_that_condition_dropout_trains():
    """Classifier-free guidance is only as good as its unconditional half: sampling must
    feed the UNet exactly what a dropped example fed it in training (the encoder's
    normalised null tokens, in cross-attention and as the class embedding), and the
    conditional half what an undropped example fed it."""
    from diffusers import AutoencoderKL, DDPMScheduler

    from galaxy_hpc.models.ldm.pipeline import GalaxyLDMPipeline
    from galaxy_hpc.models.ldm.unet_family import LatentUNetTrainModule

    unet, encoder = _tiny_unet_and_encoder()
    scheduler = DDPMScheduler(num_train_timesteps=50)
    conditions = torch.tensor([[0.1, 0.9], [0.9, 0.1]])
    seen = _capture_context(unet)
    for dropout in (1.0, 0.0):  # every example dropped, then none
        module = LatentUNetTrainModule(unet, encoder, scheduler, condition_dropout=dropout,
                                       prediction_type="epsilon", noise_offset=0.0,
                                       snr_gamma=None)
        module({"latents": torch.randn(2, 4, 4, 4), "conditions": conditions})
    (trained_null, trained_null_class), (trained_cond, trained_cond_class) = seen
    vae = AutoencoderKL(in_channels=3, out_channels=3, block_out_channels=(4,),
                        norm_num_groups=4, latent_channels=4, layers_per_block=1)
    pipe = GalaxyLDMPipeline(vae=vae, unet=unet, condition_encoder=encoder,
                             scheduler=scheduler)
    pipe.set_progress_bar_config(disable=True)
    seen.clear()
    pipe(conditions.numpy(), num_inference_steps=2, guidance_scale=3.0,
         generator=torch.Generator().manual_seed(0))
    tokens, class_labels = seen[0]
    assert tokens.shape == (4, 3, 8)  # [unconditional, conditional] halves
    assert torch.allclose(tokens[:2], trained_null, atol=1e-6)
    assert torch.allclose(tokens[2:], trained_cond, atol=1e-6)
    assert torch.allclose(class_labels[:2], trained_null_class, atol=1e-6)
    assert torch.allclose(class_labels[2:], trained_cond_class, atol=1e-6)
    assert not torch.allclose(trained_cond[0], trained_cond[1])  # conditions differ
    seen.clear()
    pipe(conditions.numpy(), num_inference_steps=2, guidance_scale=1.0,
         generator=torch.Generator().manual_seed(0))
    assert seen[0][0].shape == (2, 3, 8)  # scale 1: the conditional pass alone
    assert torch.allclose(seen[0][0], trained_cond, atol=1e-6)


def test_zero_terminal_snr_is_the_default_and_needs_v_prediction():
    from galaxy_hpc.models.ldm.config import LatentUNetModelConfig

    with pytest.raises(ValueError, match="zero_terminal_snr .true by default. needs prediction_type"):
        LatentUNetModelConfig(prediction_type="epsilon")
    default = LatentUNetModelConfig()  # trained from scratch: nothing to stay compatible with
    assert default.zero_terminal_snr and default.prediction_type == "v_prediction"
    assert not LatentUNetModelConfig(prediction_type="epsilon",
                                     zero_terminal_snr=False).zero_terminal_snr


def test_prototype_conditions_pick_gz2_classes_from_the_store(synth_store):
    from galaxy_hpc.models.ldm.condition import prototype_conditions
    from galaxy_hpc.models.ldm.config import gz2_fraction_columns
    from hpc.store import open_store

    columns = gz2_fraction_columns()
    store = open_store(synth_store)
    values = np.stack([store.read_column(c) for c in columns], axis=1)
    labels, rows = prototype_conditions(columns, values)
    assert labels == ["smooth, round", "edge-on disk", "spiral"] and rows.shape == (3, 37)
    assert rows[0, 0] > 0.5 and rows[1, 3] > 0.5 and rows[2, 7] > 0.5  # a01, a04, a08
    labels, rows = prototype_conditions(["redshift"], np.array([[0.3], [0.1], [0.2]]))
    assert rows[:, 0].tolist() == pytest.approx([0.1, 0.2, 0.3])


def test_perceptual_terms(tmp_path):
    from torchvision.models.vgg import cfgs, make_layers

    from galaxy_hpc.models.ldm.perceptual import GradientLoss, VGGFeatureLoss

    x = torch.rand(2, 3, 32, 32) * 2 - 1
    blurred = torch.nn.functional.avg_pool2d(x, 3, stride=1, padding=1)
    gradient = GradientLoss(3)
    assert float(gradient(x, x)) == 0.0 and float(gradient(blurred, x)) > 0.05
    # A locally saved torchvision-layout file (random weights here: nothing is downloaded).
    features = make_layers(cfgs["D"])
    torch.save({f"features.{k}": v for k, v in features.state_dict().items()}, tmp_path / "vgg.pth")
    vgg = VGGFeatureLoss(tmp_path / "vgg.pth")
    assert float(vgg(x, x)) == 0.0 and float(vgg(blurred, x)) > 0
    four = torch.rand(1, 4, 32, 32) * 2 - 1
    assert float(vgg(four.flip(-1), four)) > 0  # other band counts: band by band
    with pytest.raises(ValueError, match="nothing is downloaded"):
        VGGFeatureLoss(tmp_path / "missing.pth")


@pytest.mark.parametrize("prediction_type, snr_gamma, offset", [
    ("epsilon", None, 0.0), ("v_prediction", 5.0, 0.05), ("epsilon", 5.0, 0.0)])
def test_shared_diffusion_loss_is_the_sd_family_loss(prediction_type, snr_gamma, offset):
    from types import SimpleNamespace

    from diffusers import DDPMScheduler

    from galaxy_hpc.models.diffusion_loss import diffusion_loss
    from galaxy_hpc.models.sd.family import SDTrainModule

    class Denoiser(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(4, 4, 3, padding=1)

        def forward(self, x, t, context):
            return SimpleNamespace(sample=self.conv(x) * (1 + t.view(-1, 1, 1, 1) / 1000))

    torch.manual_seed(0)
    net, scheduler = Denoiser(), DDPMScheduler(beta_schedule="scaled_linear", beta_start=0.00085,
                                                beta_end=0.012)
    latents, context = torch.randn(3, 4, 8, 8), torch.zeros(3, 1, 4)
    sd = SDTrainModule(net, None, scheduler, prediction_type=prediction_type,
                       noise_offset=offset, snr_gamma=snr_gamma)
    torch.manual_seed(7)
    expected = sd({"latents": latents, "encoder_hidden_states": context})
    torch.manual_seed(7)
    ours = diffusion_loss(lambda x, t: net(x, t, context).sample, latents,
                          scheduler.alphas_cumprod, prediction_type=prediction_type,
                          noise_offset=offset, snr_gamma=snr_gamma)
    assert torch.equal(ours, expected)


def test_configs_and_sbatch_script():
    from galaxy_hpc.train.config import TrainLdmUnetConfig
    from hpc.config import ConfigError, load_config

    cfg = load_config(UNET_TINY)
    assert isinstance(cfg, TrainLdmUnetConfig) and len(cfg.data.condition_columns) == 37
    with pytest.raises(ConfigError, match="sample_conditions"):
        load_config(UNET_TINY, ["model.sample_conditions=[[0.1, 0.2]]"])
    with pytest.raises(ConfigError, match="head_channels"):
        load_config(UNET_TINY, ["model.head_channels=7"])
    script = REPO / "slurm" / "train_ldm.sbatch"
    assert subprocess.run(["bash", "-n", str(script)], check=False).returncode == 0
    assert os.access(script, os.X_OK) and "ghpc_srun train" in script.read_text()


def test_stage1_logs_its_loss_terms(stage1):
    rows = [json.loads(line) for line in (stage1[0] / "train_log.jsonl").read_text().splitlines()]
    assert rows and all({"reconstruction", "kl_per_pixel"} <= set(row) for row in rows)
    assert all(row["reconstruction"] <= row["loss"] + 1e-6 for row in rows)  # a term of the loss
