"""Stable Diffusion 1.5 fine-tuning on galaxy captions (GalaxySD, Astro-Diffusion)."""
