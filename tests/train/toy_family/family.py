"""The toy family: forward(batch) -> denoising loss; export: safetensors + a JSON card."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from galaxy_hpc.models.contract import ModelFamily

WEIGHTS = "model.safetensors"
CARD = "toy.json"


def network(channels: int, width: int) -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Conv2d(channels, width, 3, padding=1), torch.nn.GELU(),
                               torch.nn.Conv2d(width, channels, 3, padding=1))


class Denoiser(torch.nn.Module):
    def __init__(self, channels: int, width: int, noise: float) -> None:
        super().__init__()
        self.net = network(channels, width)
        self.noise = noise

    def forward(self, batch: dict[str, Any]) -> torch.Tensor:
        clean = batch["pixel_values"]
        noisy = clean + self.noise * torch.randn_like(clean)
        return torch.nn.functional.mse_loss(self.net(noisy), clean)


class ToyFamily(ModelFamily):
    def build(self) -> torch.nn.Module:
        channels = self.data.image_shape[0]
        return Denoiser(channels, self.cfg.model.width, self.cfg.model.noise)

    @torch.no_grad()
    def sample(self, module: torch.nn.Module, num_images: int, seed: int) -> np.ndarray:
        generator = torch.Generator().manual_seed(seed)
        noise = torch.randn((num_images, *self.data.image_shape), generator=generator)
        out = module.net(noise.to(self.device)).float().clamp(-1, 1).cpu().numpy()
        return np.round((out + 1) * 127.5).astype(np.uint8)

    def export(self, state_dict: dict[str, torch.Tensor], output_dir: Path) -> Path:
        from safetensors.torch import save_file

        folder = Path(output_dir) / "toy"
        folder.mkdir(parents=True, exist_ok=True)
        save_file({k: v.float().contiguous() for k, v in state_dict.items()}, folder / WEIGHTS)
        card = {"image_shape": list(self.data.image_shape), "stretch": self.stretch.to_dict(),
                "store": str(self.store.path), "width": self.cfg.model.width}
        (folder / CARD).write_text(json.dumps(card) + "\n")
        return folder

    def evaluate_export(self, artifact: Path, output_dir: Path) -> dict[str, Any]:
        """Denoising error of the exported weights on the first store items, as a user
        would measure it: safetensors file into a fresh network."""
        from safetensors.torch import load_file

        weights = {k[len("net."):]: v for k, v in load_file(artifact / WEIGHTS).items()}
        net = network(self.data.image_shape[0], self.cfg.model.width)
        net.load_state_dict(weights)
        clean = torch.from_numpy(np.asarray(
            self.stretch.forward(self.store.read_images_at(np.arange(8))), dtype=np.float32))
        noisy = clean + self.cfg.model.noise * torch.randn(clean.shape,
                                                          generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            error = float(torch.nn.functional.mse_loss(net(noisy), clean))
        found = {"denoising_mse": error, "noisy_mse": float(((noisy - clean) ** 2).mean())}
        (Path(output_dir) / "toy_eval.json").write_text(json.dumps(found) + "\n")
        return found
