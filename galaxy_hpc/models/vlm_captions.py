"""Captions from a vision-language model folder (transformers layout, e.g. Qwen2-VL as
Astro-Diffusion captions its training images with).

The folder is loaded with `local_files_only` (compute nodes have no network): the
model with AutoModelForImageTextToText, the prompt and images with the folder's
AutoProcessor and its chat template, one user turn holding the image and the prompt.
Generation is greedy, so a galaxy's caption depends only on its picture, the prompt,
the folder and `max_new_tokens`. Batches are padded on the left, as decoder-only models
need to continue every row from its last token.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

DEFAULT_PROMPT = ("Describe this galaxy image in one sentence for an astronomer: its shape "
                  "(smooth, elliptical, disk, edge-on), spiral arms, bar, bulge, and anything "
                  "unusual such as a merger, ring, tidal tail or nearby star.")


@dataclass(frozen=True)
class VlmCaptionConfig:
    prompt: str = DEFAULT_PROMPT
    max_new_tokens: int = 64

    def __post_init__(self) -> None:
        if not self.prompt.strip():
            raise ValueError("--prompt is empty: the model needs an instruction")
        if self.max_new_tokens < 1:
            raise ValueError(f"--max-new-tokens must be >= 1, got {self.max_new_tokens}")


class VlmCaptioner:
    """A VLM folder's model and processor, captioning uint8 RGB images."""

    def __init__(self, folder: Path, config: VlmCaptionConfig, device: Any = "cpu"):
        from transformers import AutoModelForImageTextToText, AutoProcessor

        if not folder.is_dir():
            raise FileNotFoundError(f"vision-language model folder {folder} does not exist")
        if not (folder / "config.json").is_file():
            raise ValueError(f"{folder} is not a transformers model folder: it has no "
                             "config.json")
        try:
            self.processor = AutoProcessor.from_pretrained(folder, local_files_only=True)
            self.model = AutoModelForImageTextToText.from_pretrained(
                folder, local_files_only=True).to(device).eval()
        except (OSError, ValueError, KeyError, TypeError) as error:
            reason = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
            raise ValueError(f"{folder} does not load as a vision-language model "
                             f"(AutoModelForImageTextToText + AutoProcessor): {reason}") from None
        if getattr(self.processor, "chat_template", None) is None:
            raise ValueError(f"{folder} has no chat template: the prompt cannot be laid out "
                             "for this model")
        self.processor.tokenizer.padding_side = "left"
        self.config = config
        self.device = device
        messages = [{"role": "user", "content": [{"type": "image"},
                                                 {"type": "text", "text": config.prompt}]}]
        self.text = self.processor.apply_chat_template(messages, add_generation_prompt=True)

    def captions(self, rgb: np.ndarray) -> list[str]:
        """(N, 3, H, W) uint8 -> N captions, generated greedily in one batch."""
        import torch
        from PIL import Image

        images = [Image.fromarray(np.ascontiguousarray(x.transpose(1, 2, 0))) for x in rgb]
        inputs = self.processor(images=images, text=[self.text] * len(images),
                                return_tensors="pt", padding=True).to(self.device)
        with torch.inference_mode():
            out = self.model.generate(**inputs, max_new_tokens=self.config.max_new_tokens,
                                      do_sample=False)
        new = out[:, inputs["input_ids"].shape[1]:]
        return [c.strip() for c in self.processor.batch_decode(new, skip_special_tokens=True)]
