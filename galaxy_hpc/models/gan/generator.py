"""The trained generator alone: what catalog generation loads.

    from galaxy_hpc.models.gan.generator import load_generator
    gen = load_generator("runs/gan/generator", device="cuda")
    gen.condition_names                   # ["redshift", "log_stellar_mass"]
    images = gen.generate(np.array([[0.05, 10.2], [0.12, 11.0]]), seeds=[17, 18])
    images.shape, images.dtype            # (2, C, H, W) float32, in the store's units

A folder holds `generator.safetensors` (the generator's float32 weights, nothing of the
discriminator) and `generator.json` (architecture, condition names with the training
store's mean and std, image shape and dtype, the store's stretch). Loading needs torch,
safetensors and this package; no training code, config or store.

Determinism. Object i's noise is `randn(latent_dim)` and then its pixel noise
`randn(1 + C, H, W)`, both from one CPU torch.Generator seeded with seeds[i] and
nothing else (`noise_for_seeds`), so it does not depend on the batch, the rank or the
device. The network normalises each image alone (GroupNorm, no batch statistics), and
`generate` always runs fixed-shape batches of `batch_size` (the last one padded), so that
the kernels, whose rounding can depend on the batch shape, are the same for every
batch: on a given device and torch build, a galaxy's bytes depend only on its condition
and seed, however a catalog is split.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from galaxy_hpc.models.gan.networks import ConditionScaler, Generator, generator_from_spec
from hpc.files import follow_umask, loading_from, read_json

WEIGHTS = "generator.safetensors"
CONFIG = "generator.json"
FORMAT = "galaxy-hpc-gan-generator"


def noise_for_seeds(seeds: Sequence[int], latent_dim: int,
                    pixel_shape: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """(latent (N, latent_dim), pixel noise (N, *pixel_shape)), float32 on the CPU: row i
    from seeds[i] alone."""
    latents, pixels = [], []
    for seed in seeds:
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) \
                or not 0 <= int(seed) < 2**63:
            raise ValueError(f"seeds must be integers in [0, 2**63), got {seed!r}")
        stream = torch.Generator().manual_seed(int(seed))
        latents.append(torch.randn(latent_dim, generator=stream))
        pixels.append(torch.randn(*pixel_shape, generator=stream))
    if not latents:
        return torch.zeros(0, latent_dim), torch.zeros(0, *pixel_shape)
    return torch.stack(latents), torch.stack(pixels)


class GalaxyGenerator:
    """A trained conditional generator with what it needs to speak in catalog units."""

    def __init__(self, network: Generator, spec: dict[str, Any],
                 device: str | torch.device = "cpu") -> None:
        from galaxy_hpc.data.stretch import stretch_from_dict

        self.spec = dict(spec)
        self.device = torch.device(device)
        self.network = network.to(self.device, torch.float32).eval().requires_grad_(False)
        self.scaler = ConditionScaler(spec["condition_mean"], spec["condition_std"])
        self.stretch = stretch_from_dict(spec["stretch"])

    @property
    def condition_names(self) -> list[str]:
        return list(self.spec["condition_names"])

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(int(v) for v in self.spec["image_shape"])

    @property
    def image_dtype(self) -> str:
        """The training store's dtype: "float32" (flux) or "uint8" (RGB; `generate` still
        returns float32 values in 0-255, to be rounded by whoever writes them)."""
        return str(self.spec["image_dtype"])

    @property
    def latent_dim(self) -> int:
        return int(self.spec["latent_dim"])

    def _conditions(self, conditions: Any) -> np.ndarray:
        values = np.asarray(conditions, dtype=np.float64)
        names = self.condition_names
        if values.ndim != 2 or values.shape[1] != len(names):
            raise ValueError(f"conditions must be an (N, {len(names)}) array of {names}, got "
                             f"shape {values.shape}")
        bad = ~np.isfinite(values)
        if bad.any():
            row, col = (int(v) for v in np.argwhere(bad)[0])
            raise ValueError(f"conditions[{row}, {col}] ({names[col]}) is {values[row, col]}: "
                             f"{int(bad.sum())} value(s) are not finite; every galaxy needs "
                             "all its conditions")
        return values

    @torch.no_grad()
    def generate_stretched(self, conditions: Any, seeds: Sequence[int], *,
                           batch_size: int = 64) -> np.ndarray:
        """(N, C, H, W) float32 in the model's (stretched) space."""
        values = self._conditions(conditions)
        seeds = list(seeds)
        if len(seeds) != len(values):
            raise ValueError(f"need one seed per galaxy: {len(values)} conditions, "
                             f"{len(seeds)} seeds")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        raw = torch.from_numpy(values.astype(np.float32))
        out = np.empty((len(values), *self.image_shape), dtype=np.float32)
        for start in range(0, len(values), batch_size):
            stop = min(start + batch_size, len(values))
            pad = batch_size - (stop - start)
            z, maps = noise_for_seeds(seeds[start:stop], self.latent_dim,
                                      self.network.pixel_noise_shape)
            c = raw[start:stop]
            if pad:  # fixed-shape batches: repeat the last row, drop its copies after
                z, maps, c = (torch.cat([t, t[-1:].expand(pad, *t.shape[1:])])
                              for t in (z, maps, c))
            images = self.network(z.to(self.device), self.scaler.normalise(c.to(self.device)),
                                  maps.to(self.device))
            out[start:stop] = images[:stop - start].float().cpu().numpy()
        return out

    def generate(self, conditions: Any, seeds: Sequence[int], *,
                 batch_size: int = 64) -> np.ndarray:
        """(N, C, H, W) float32 in the training store's units (flux for float stores,
        0-255 for uint8 ones) from raw catalog `conditions` (N, K) in the order of
        `condition_names`, and one integer seed per galaxy."""
        stretched = self.generate_stretched(conditions, seeds, batch_size=batch_size)
        return np.asarray(self.stretch.inverse(stretched), dtype=np.float32)

    def save(self, folder: str | Path) -> Path:
        from safetensors.torch import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().float().cpu().contiguous()
                 for k, v in self.network.state_dict().items()}
        save_file(state, str(folder / WEIGHTS), metadata={"format": FORMAT})
        (folder / CONFIG).write_text(json.dumps({"format": FORMAT, **self.spec}, indent=2) + "\n")
        follow_umask(folder)
        return folder


def load_generator(folder: str | Path, device: str | torch.device = "cpu") -> GalaxyGenerator:
    """The generator saved by a train_gan run (`<output_dir>/generator`)."""
    from safetensors.torch import load_file

    folder = Path(folder)
    if not (folder / CONFIG).is_file() or not (folder / WEIGHTS).is_file():
        raise ValueError(f"{folder} is not a GAN generator folder: it needs {CONFIG} and "
                         f"{WEIGHTS} (the generator/ folder of a train_gan run)")
    spec = read_json(folder / CONFIG, "the generator's architecture")
    if spec.pop("format", None) != FORMAT:
        raise ValueError(f"{folder / CONFIG} is not a {FORMAT} file")
    try:
        network = generator_from_spec(spec)
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(f"{folder / CONFIG} does not describe a generator this version can "
                         f"build: {type(error).__name__}: {error}") from error
    with loading_from(f"the GAN generator {folder} cannot be loaded", folder / WEIGHTS):
        weights = load_file(str(folder / WEIGHTS))
    try:
        network.load_state_dict(weights, strict=True)
    except RuntimeError as error:  # torch's missing, unexpected or mis-shaped weights
        raise ValueError(f"{folder / WEIGHTS} does not fit the architecture {folder / CONFIG} "
                         f"describes (one of the two was changed or copied from another "
                         f"run): {str(error).strip().splitlines()[-1].strip()}") from error
    return GalaxyGenerator(network, spec, device)
