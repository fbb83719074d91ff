"""A CLIP model from a local transformers folder: image and text embeddings, and CLIP score.

The folder is what `CLIPModel.save_pretrained` and `CLIPProcessor.save_pretrained` write
(openai/clip-vit-base-patch32 after `huggingface-cli download` on a login node, or a tiny
one built from a config in the tests); nothing is downloaded.

CLIP score follows torchmetrics' CLIPScore (Hessel et al. 2021 with weight 100): per image
100 * cos(image embedding, caption embedding), images and captions through the folder's
CLIPProcessor; the reported mean is clamped at 0 as torchmetrics clamps it. torchmetrics
1.9 itself cannot run here: with transformers 5, `get_image_features` returns an output
object whose `pooler_output` holds the projection, where torchmetrics expects a tensor.
Captions longer than the text model's positions are truncated by the tokenizer (keeping
the end-of-text token CLIP pools at).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

# transformers 5 writes the processor's settings to processor_config.json, 4.x to
# preprocessor_config.json: either will do.
PROCESSOR_FILES = ("processor_config.json", "preprocessor_config.json")


@dataclass
class LocalClip:
    """A CLIPModel in eval mode on `device` with its processor."""

    model: Any
    processor: Any
    device: torch.device
    folder: str

    @property
    def max_text_length(self) -> int:
        return int(self.model.config.text_config.max_position_embeddings)

    def image_embeddings(self, images: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) uint8 -> (N, D) float32 projected image embeddings (not normalised)."""
        pixels = self.processor(images=list(images), return_tensors="pt")["pixel_values"]
        with torch.no_grad():
            out = self.model.get_image_features(pixel_values=pixels.to(self.device))
        return _projected(out).to(torch.float32)

    def text_embeddings(self, captions: list[str]) -> torch.Tensor:
        tokens = self.processor(text=list(captions), return_tensors="pt", padding=True,
                                truncation=True, max_length=self.max_text_length)
        with torch.no_grad():
            out = self.model.get_text_features(
                input_ids=tokens["input_ids"].to(self.device),
                attention_mask=tokens["attention_mask"].to(self.device))
        return _projected(out).to(torch.float32)

    def scores(self, images: torch.Tensor, captions: list[str]) -> torch.Tensor:
        """100 * cos(image_i, caption_i) for each pair, float64 on the CPU."""
        if len(images) != len(captions):
            raise ValueError(f"{len(images)} images but {len(captions)} captions")
        image = torch.nn.functional.normalize(self.image_embeddings(images), dim=-1)
        text = torch.nn.functional.normalize(self.text_embeddings(captions), dim=-1)
        return (100.0 * (image * text).sum(dim=-1)).double().cpu()


def _projected(out: Any) -> torch.Tensor:
    """transformers 5 returns an output whose pooler_output is the projection; 4.x a tensor."""
    return out if isinstance(out, torch.Tensor) else out.pooler_output


def load_clip(folder: str, device: torch.device) -> LocalClip:
    """ValueError/FileNotFoundError naming the folder when it is not a CLIP folder."""
    path = Path(folder)
    if not path.is_dir():
        raise FileNotFoundError(f"CLIP folder {folder} does not exist (a folder that "
                                "CLIPModel/CLIPProcessor.save_pretrained wrote)")
    missing = [] if (path / "config.json").is_file() else ["config.json"]
    if not any((path / name).is_file() for name in PROCESSOR_FILES):
        missing.append(" or ".join(PROCESSOR_FILES))
    if missing:
        raise ValueError(f"{folder} is not a CLIP folder: it has no {', '.join(missing)} "
                         "(save the model and its CLIPProcessor there with save_pretrained)")
    from transformers import CLIPModel, CLIPProcessor
    from transformers.utils import logging

    logging.set_verbosity_error()  # the token-id notes of every rank
    logging.disable_progress_bar()  # and its loading bars
    try:
        model = CLIPModel.from_pretrained(str(path), local_files_only=True)
        processor = CLIPProcessor.from_pretrained(str(path), local_files_only=True)
    except (OSError, ValueError) as error:
        raise ValueError(f"{folder}: CLIP model or processor does not load: "
                         f"{str(error).splitlines()[0]}") from None
    model.requires_grad_(False)
    model.eval()
    model.to(device)
    return LocalClip(model, processor, device, str(path))
