"""Stable Diffusion's side of cached latents (galaxy_hpc/data/latents.py): who the frozen
parts are, and training batches made from the cache instead of from the encoders.

A fingerprint names a module by its content (its config without diffusers' private keys,
and every tensor of its state dict as float32 bytes), not by its path: the same VAE saved
elsewhere, or the tiny one rebuilt in memory from the same seed, has the same fingerprint;
a fine-tuned one does not. It costs one pass over the weights at start-up (SD-1.5's VAE
is 84 M parameters, 0.3 GB as float32; its text encoder 123 M).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np
import torch

from galaxy_hpc.data.latents import NUM_TRANSFORMS, LatentStore, TextCache, text_cache_path


def module_fingerprint(module: torch.nn.Module, config: Any = None) -> str:
    """'sha256:<hex>' of `config` (a diffusers/transformers config; default module.config)
    and the module's state dict, in key order, as float32."""
    config = module.config if config is None else config
    as_dict = config.to_dict() if hasattr(config, "to_dict") else dict(config)
    public = {k: v for k, v in as_dict.items()
              if not k.startswith("_") and k not in ("transformers_version", "torch_dtype")}
    hasher = hashlib.sha256(json.dumps(public, sort_keys=True, default=str).encode())
    for name, tensor in sorted(module.state_dict().items()):
        hasher.update(name.encode())
        hasher.update(tensor.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return "sha256:" + hasher.hexdigest()


def text_fingerprint(text_encoder: torch.nn.Module, tokenizer: Any) -> str:
    """The text encoder's fingerprint with its tokenizer's vocabulary and merges."""
    hasher = hashlib.sha256(module_fingerprint(text_encoder).encode())
    hasher.update(json.dumps(tokenizer.get_vocab(), sort_keys=True).encode())
    merges = sorted(" ".join(pair) for pair in getattr(tokenizer, "bpe_ranks", {}))
    hasher.update(json.dumps(merges).encode())
    return "sha256:" + hasher.hexdigest()


class CachedLatents:
    """Training batches from a latent store: for each item one of the 8 dihedral
    transforms and a sample of its latent distribution, both drawn from torch's global
    generator (the loop seeds it from the micro-step, so a resumed run draws the same),
    and, when the captions are fixed strings, the cached text encoder states."""

    def __init__(self, path: str, *, store: Any, vae: torch.nn.Module,
                 text_encoder: torch.nn.Module | None, tokenizer: Any) -> None:
        self.latents = LatentStore(path)
        self.latents.check_source(store, module_fingerprint(vae))
        self.text: TextCache | None = None
        cache = text_cache_path(path)
        if text_encoder is not None and cache.is_file():
            text = TextCache(cache)
            wanted = text_fingerprint(text_encoder, tokenizer)
            if text.fingerprint != wanted:
                raise ValueError(f"data.latents: {cache} holds another text encoder's states "
                                 f"({text.fingerprint}, this model's {wanted}); encode again "
                                 "with --model set to the model being trained")
            self.text = text

    def latents_for(self, index: torch.Tensor, device: torch.device) -> torch.Tensor:
        """Scaled latent samples (B, C, h, w) float32 of the items `index`."""
        indices = index.numpy() if isinstance(index, torch.Tensor) else np.asarray(index)
        transforms = torch.randint(0, NUM_TRANSFORMS, (len(indices),)).numpy()
        mean, logvar = self.latents.distributions(indices, transforms)
        mean = torch.from_numpy(mean).to(device)
        std = torch.from_numpy(logvar).to(device).mul_(0.5).exp_()
        noise = torch.randn(mean.shape).to(device)
        return (mean + std * noise) * self.latents.scaling_factor

    def hidden_states_for(self, captions: list[str], device: torch.device,
                          dtype: torch.dtype) -> torch.Tensor:
        assert self.text is not None
        return torch.from_numpy(self.text.lookup(captions)).to(device, dtype)
