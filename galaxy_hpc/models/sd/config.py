"""Config of Stable Diffusion fine-tuning (`kind: train_sd`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Literal

from galaxy_hpc.data.section import DataSection
from galaxy_hpc.models import lora

DEFAULT_PROMPTS = [
    "sdss, spiral galaxy, obvious bulge prominence, tightly wound spiral arms, 2 spiral arms",
    "sdss, elliptical galaxy",
    "sdss, edge-on galaxy, with rounded edge-on bulge",
    "sdss, smooth, cigar shaped galaxy",
]


@dataclass
class LoraSection(lora.LoraSection):
    # Astro-Diffusion's choice: the attention projections of the UNet.
    target_modules: list[str] = field(default_factory=lambda: ["to_q", "to_k", "to_v", "to_out.0"])
    # When the text encoder is trained with LoRA too (train_text_encoder: true).
    text_encoder_target_modules: list[str] = field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "out_proj"])


@dataclass
class SDModelConfig:
    reads_cached_latents: ClassVar[bool] = True  # data.latents (galaxy-hpc encode)
    # A local folder in diffusers layout (unet/, vae/, text_encoder/, tokenizer/,
    # scheduler/), or a Hugging Face id (runwayml/stable-diffusion-v1-5) fetched into the
    # local cache beforehand with `huggingface-cli download`: nothing is downloaded here.
    pretrained_model_name_or_path: str = ""
    # Instead of a folder: an SD-1.5-shaped model with tiny widths built in memory (its
    # tokenizer learned from the store's captions), for CPU runs of every code path.
    tiny: bool = False
    method: Literal["full", "lora"] = "lora"
    train_text_encoder: bool = False  # GalaxySD trains it with the UNet
    prediction_type: Literal["epsilon", "v_prediction"] | None = None  # None: the scheduler's
    noise_offset: float = 0.0  # e.g. 0.05: lets the model learn very dark/bright images
    snr_gamma: float | None = None  # Min-SNR loss weighting (Hang et al. 2023), e.g. 5.0
    lora: LoraSection = field(default_factory=LoraSection)
    # GPU throughput: torch.compile the UNet (minutes of compilation, then faster steps)
    # and keep its activations channels-last (faster convolutions on tensor cores).
    compile: bool = False
    channels_last: bool = True
    # Sample grids during training (fixed prompts and seed, so grids compare across steps).
    sample_prompts: list[str] = field(default_factory=lambda: list(DEFAULT_PROMPTS))
    sample_steps: int = 25
    guidance_scale: float = 7.5

    def __post_init__(self) -> None:
        if self.tiny and self.pretrained_model_name_or_path:
            raise ValueError("set either tiny: true or pretrained_model_name_or_path, not both")
        if self.noise_offset < 0:
            raise ValueError(f"noise_offset must be >= 0, got {self.noise_offset}")
        if self.snr_gamma is not None and self.snr_gamma <= 0:
            raise ValueError(f"snr_gamma must be > 0 (or null), got {self.snr_gamma}")
        if not self.sample_prompts:
            raise ValueError("sample_prompts must not be empty")

    @staticmethod
    def default_data() -> DataSection:
        return DataSection(caption_column="caption", caption_dropout=0.1)

