"""Configs of latent diffusion from scratch: stage 1 (`kind: train_ldm_vae`) and stage 2
(`kind: train_ldm_unet`). Imports no torch: `galaxy-hpc config` reads these."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from galaxy_hpc.data.gz2 import GZ2_TREE, column_name
from galaxy_hpc.data.section import DataSection


def gz2_fraction_columns() -> list[str]:
    """The 37 GZ2 per-question vote fraction columns, in Kaggle order."""
    return [column_name(answer) for answer in GZ2_TREE.answers]


def _check_channels(name: str, channels: list[int], groups: int) -> None:
    if not channels or any(c < 1 for c in channels):
        raise ValueError(f"{name} must be a non-empty list of positive widths, got {channels}")
    if any(c % groups for c in channels):
        raise ValueError(f"every entry of {name} {channels} must be a multiple of "
                         f"norm_num_groups ({groups})")


# ---------------------------------------------------------------- stage 1: the autoencoder


@dataclass
class PerceptualSection:
    """An optional third loss term on (reconstruction, input). Nothing is downloaded:
    - none: off.
    - gradient: L1 between image gradients (finite differences) at `num_scales` scales
      (2x average pooling between them). A structure loss with no network, not a
      learned perceptual metric: it penalises blurred edges and lost arms/knots that a
      per-pixel loss tolerates.
    - vgg16: distance between unit-normalised VGG16 feature maps (relu1_2 ... relu5_3,
      the layers LPIPS uses, without LPIPS's learned per-channel weights), with the
      ImageNet weights read from `weights_path`, a local torchvision state dict
      (vgg16-397923af.pth); a missing file is an error. Bands other than 3 are fed one
      at a time as grey images.
    """

    kind: Literal["none", "gradient", "vgg16"] = "none"
    weight: float = 0.1
    num_scales: int = 3  # gradient: scales compared
    # vgg16: a local torchvision weights file, or ORG/NAME/FILE in the Hugging Face cache
    weights_path: str | None = None

    def __post_init__(self) -> None:
        if self.weight < 0:
            raise ValueError(f"perceptual weight must be >= 0, got {self.weight}")
        if self.num_scales < 1:
            raise ValueError(f"perceptual num_scales must be >= 1, got {self.num_scales}")
        if self.kind == "vgg16" and not self.weights_path:
            raise ValueError("perceptual kind vgg16 needs weights_path: a local torchvision "
                             "vgg16 state dict (nothing is downloaded); or use kind: gradient")


@dataclass
class VaeModelConfig:
    # Encoder/decoder widths, one per resolution: the image is downsampled
    # 2 ** (len(block_out_channels) - 1) times per side (3 entries: 4x, 4 entries: 8x).
    block_out_channels: list[int] = field(default_factory=lambda: [128, 256, 512])
    layers_per_block: int = 2
    latent_channels: int = 4
    norm_num_groups: int = 32
    mid_block_attention: bool = True
    # Fine-tune an existing AutoencoderKL folder (or Hugging Face id in the local cache)
    # instead of building one from the above (its channels must match the store).
    init_from: str | None = None
    reconstruction_loss: Literal["l1", "mse"] = "l1"
    # KL(q(z|x) || N(0, I)) summed over a latent and divided by the pixels of an image,
    # so that 1e-6 means what it means in LDM's configs (which sum both terms per image).
    kl_weight: float = 1.0e-6
    perceptual: PerceptualSection = field(default_factory=PerceptualSection)
    # Images encoded at export to measure the latents' std (and mean), written into the
    # VAE config as scaling_factor = 1/std and shift_factor = mean (LDM's rescaling).
    scaling_num_items: int = 512

    @property
    def downsample_factor(self) -> int:
        return 2 ** (len(self.block_out_channels) - 1)

    def __post_init__(self) -> None:
        if not self.init_from:
            _check_channels("block_out_channels", self.block_out_channels, self.norm_num_groups)
        for name in ("layers_per_block", "latent_channels", "norm_num_groups",
                     "scaling_num_items"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.kl_weight < 0:
            raise ValueError(f"kl_weight must be >= 0, got {self.kl_weight}")

    @staticmethod
    def default_data() -> DataSection:
        return DataSection(caption_column=None, condition_columns=[])


# ---------------------------------------------------------------- stage 2: the latent UNet


@dataclass
class ConditionSection:
    """How a row of condition columns becomes what the UNet attends to: an MLP maps the
    (normalised) vector to `num_tokens` tokens of the UNet's cross_attention_dim. With
    probability `dropout` a training example gets the learned null tokens instead, which
    is the unconditional model classifier-free guidance needs."""

    num_tokens: int = 4
    hidden_dim: int = 256
    dropout: float = 0.1
    # Also add the mean token to the timestep embedding (UNet class_embed_type
    # "projection"): a global path for brightness/size that cross-attention alone
    # learns slowly.
    global_embedding: bool = True

    def __post_init__(self) -> None:
        if self.num_tokens < 1 or self.hidden_dim < 1:
            raise ValueError("condition num_tokens and hidden_dim must be >= 1")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"condition dropout must be in [0, 1), got {self.dropout}")


@dataclass
class LatentUNetModelConfig:
    # Stage 1's output: the `vae` folder of a train_ldm_vae run (AutoencoderKL with its
    # scaling_factor measured on the data), or its Hugging Face id in the local cache.
    # Loaded frozen; nothing is downloaded.
    vae_path: str = ""
    block_out_channels: list[int] = field(default_factory=lambda: [128, 256, 512])
    # Per resolution: cross-attention to the condition tokens (true) or plain ResNet blocks.
    attention: list[bool] = field(default_factory=lambda: [False, True, True])
    layers_per_block: int = 2
    # Channels per attention head (diffusers' UNet config field `attention_head_dim` is,
    # for historical reasons, the number of heads: the family converts).
    head_channels: int = 32
    cross_attention_dim: int = 256  # width of the condition tokens
    norm_num_groups: int = 32
    condition: ConditionSection = field(default_factory=ConditionSection)
    # Noise schedule of training (DDPM, as LDM and SD: scaled_linear 0.00085 -> 0.012,
    # rescaled to a zero terminal SNR by default).
    num_train_timesteps: int = 1000
    beta_schedule: Literal["scaled_linear", "linear", "squaredcos_cap_v2"] = "scaled_linear"
    beta_start: float = 0.00085
    beta_end: float = 0.012
    # v_prediction: what a zero terminal SNR needs (below); epsilon needs zero_terminal_snr:
    # false, and then draws galaxies from pure noise the model was never trained on.
    prediction_type: Literal["epsilon", "v_prediction"] = "v_prediction"
    noise_offset: float = 0.0
    snr_gamma: float | None = None  # Min-SNR weighting, e.g. 5.0
    # Rescale the betas so that the last timestep is pure noise (Lin et al. 2024, "Common
    # diffusion noise schedules and sample steps are flawed"), with trailing timestep
    # spacing. scaled_linear's last step keeps sqrt(alpha_bar) = 0.07 of the image; a model
    # trained on it leans on that leak of each galaxy's own low frequencies, which sampling
    # from pure noise never has (the flux LDM's galaxies came out 0.2 px large and 9% faint
    # in the centre from pure noise; from the leak of the real image, as the data). Needs
    # prediction_type v_prediction (epsilon says nothing at zero signal).
    zero_terminal_snr: bool = True
    # Sample grids: one condition vector per grid column. null: picked from the store
    # (for the 37 GZ2 fractions: the most smooth-and-round, edge-on and spiral galaxies;
    # otherwise rows at quantiles of the first condition column).
    sample_conditions: list[list[float]] | None = None
    sample_steps: int = 25
    guidance_scale: float = 3.0

    def __post_init__(self) -> None:
        _check_channels("block_out_channels", self.block_out_channels, self.norm_num_groups)
        if len(self.attention) != len(self.block_out_channels):
            raise ValueError(f"attention needs one flag per entry of block_out_channels "
                             f"({len(self.block_out_channels)}), got {self.attention}")
        if not any(self.attention):
            raise ValueError("attention: at least one resolution must cross-attend to the "
                             "condition tokens")
        if self.head_channels < 1 or any(c % self.head_channels for c in self.block_out_channels):
            raise ValueError(f"every entry of block_out_channels {self.block_out_channels} "
                             f"must be a multiple of head_channels ({self.head_channels})")
        if self.cross_attention_dim < 1:
            raise ValueError(f"cross_attention_dim must be >= 1, got {self.cross_attention_dim}")
        if self.noise_offset < 0:
            raise ValueError(f"noise_offset must be >= 0, got {self.noise_offset}")
        if self.snr_gamma is not None and self.snr_gamma <= 0:
            raise ValueError(f"snr_gamma must be > 0 (or null), got {self.snr_gamma}")
        if self.zero_terminal_snr and self.prediction_type != "v_prediction":
            raise ValueError("zero_terminal_snr (true by default) needs prediction_type: "
                             "v_prediction (at the last timestep the noisy latent is pure "
                             "noise, so epsilon prediction is trivial there), got "
                             f"{self.prediction_type!r}; for the old scaled_linear schedule "
                             "set zero_terminal_snr: false")
        if self.sample_steps < 1 or self.guidance_scale < 1:
            raise ValueError("sample_steps must be >= 1 and guidance_scale >= 1")
        if self.sample_conditions is not None and not self.sample_conditions:
            raise ValueError("sample_conditions must be null or a non-empty list of vectors")

    @staticmethod
    def default_data() -> DataSection:
        return DataSection(caption_column=None, condition_columns=gz2_fraction_columns())

    def check_config(self, cfg: Any) -> None:
        """The whole training config, once built (galaxy_hpc/train/config.py)."""
        # A `data:` section in YAML builds a DataSection with its own (empty) default;
        # an empty list means the default conditions here, the 37 GZ2 fractions.
        if not cfg.data.condition_columns:
            cfg.data.condition_columns = gz2_fraction_columns()
        if cfg.data.caption_column is not None:
            raise ValueError("data.caption_column: the latent UNet conditions on numeric "
                             "columns (data.condition_columns); captions are not supported yet")
        num = len(cfg.data.condition_columns)
        vectors = self.sample_conditions or []
        if any(len(v) != num for v in vectors):
            raise ValueError(f"model.sample_conditions: every vector needs {num} values, one per "
                             "entry of data.condition_columns")
