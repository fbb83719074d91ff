"""`galaxy-hpc encode`: a training store's VAE latent distributions, for training from cached
latents (layout and reasons in galaxy_hpc/data/latents.py; the job in job.py)."""
