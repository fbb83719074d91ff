"""Latent diffusion from scratch (the GZ2 latent-diffusion sandbox's method).

Stage 1 (`kind: train_ldm_vae`, vae_family.py) trains an AutoencoderKL on a store;
stage 2 (`kind: train_ldm_unet`, unet_family.py) trains a UNet in its latent space,
conditioned on store columns (GZ2 vote fractions, redshift, mass, ...) through a
learned condition encoder (condition.py) with condition dropout for classifier-free
guidance. The result is a GalaxyLDMPipeline folder (pipeline.py).
"""
