"""Model families: Stable Diffusion 1.5 (full, LoRA), latent diffusion, conditional GAN, DINOv2.

Each family is a package here (its `model:` config, its ModelFamily, its generator) and
one ModelSpec line in galaxy_hpc/registry.py. The contracts they fulfil are in
contract.py. Model code imports no distributed machinery (torch.distributed, deepspeed,
mpi4py, submitit) and none of the jobs that drive it (the trainer, the catalog job, the
CLI); tests/test_layering.py checks both.
"""
