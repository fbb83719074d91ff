"""Model families: Stable Diffusion 1.5 (full, LoRA), latent diffusion, conditional GAN, DINOv2.

Model code imports no distributed machinery (torch.distributed, deepspeed, mpi4py,
submitit); tests/test_layering.py checks it.
"""
