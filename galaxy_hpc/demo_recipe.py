"""The demo's generator recipe, and the untrained baseline it is measured against.

The demo must show galaxies within a few CPU minutes, so it trains the conditional GAN
(configs/train/gan.yaml, every setting that matters restated here so that the demo does
not move when that recipe is tuned) small: 32 px synthetic flux galaxies, narrow
networks, batches of 32 a rank at a high learning rate, a short EMA. A 32 px galaxy has 0.4
times the pixels of configs/train/gan_cpu.yaml's 50 px ones. Samples are blobs of the
right brightness after ~200 steps and rounder, smoother galaxies after 300 (at 1e-3 and
EMA 0.99, 400 steps gave much the same); what the recipe reaches, and in how long, is
recorded in docs/demo.md.
"""

from __future__ import annotations

from pathlib import Path

# Overrides of configs/train/gan.yaml (KEY=VALUE, as on the command line).
GAN_RECIPE: dict[str, object] = {
    "run.max_steps": 300,
    "run.micro_batch_size": 32,
    "run.seed": 0,
    "run.log_every": 50,
    "run.sample_every": 100,
    "run.num_samples": 36,
    "run.checkpoint_every": 100000,  # one checkpoint, at the end
    "data.condition_columns": "[redshift, log_stellar_mass]",
    "data.augment": "true",
    "data.num_workers": 0,
    "optim.lr": 2.0e-3,
    "optim.betas": "[0.5, 0.99]",
    "optim.warmup_steps": 0,
    "ema.enabled": "true",
    "ema.decay": 0.98,
    "zero.stage": 2,
    "zero.precision": "fp32",
    "model.latent_dim": 32,
    "model.condition_dim": 32,
    "model.mapping_layers": 2,
    "model.style_dim": 64,
    "model.generator_channels": "[64, 32, 16, 8]",
    "model.discriminator_channels": "[8, 16, 32, 64]",
    "model.norm_groups": 4,
    "model.spectral_norm": "false",
    "model.r1_gamma": 1.0,
    "model.r1_every": 4,
    "model.aux_weight": 1.0,
    "model.d_lr_ratio": 1.0,
    "model.consistency.every": 0,
    "model.consistency.report_num_samples": 256,
}


def untrained_copy(trained: Path, out: Path, *, seed: int) -> Path:
    """A generator folder with `trained`'s architecture, condition scaling and stretch and
    freshly initialised weights (torch's initialisation under `seed`, as a run starts),
    saved by the class that saves the trained one: the same files, read by the same
    loader, so a catalog of it differs from the trained one's by the weights alone."""
    import torch

    from galaxy_hpc.models.gan.generator import GalaxyGenerator, load_generator
    from galaxy_hpc.models.gan.networks import generator_from_spec

    spec = load_generator(trained).spec
    torch.manual_seed(seed)
    return GalaxyGenerator(generator_from_spec(spec), spec).save(out)
