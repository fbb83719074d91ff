"""galaxy-hpc: generative models of galaxy images, trained and sampled at scale."""

__version__ = "0.1.0"
