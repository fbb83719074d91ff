"""Which config kind trains with which model family, as import strings.

Kept free of torch imports: the CLI and `galaxy-hpc config` read it to know the
kinds, and must start in well under a second.
"""

from __future__ import annotations

from hpc.config import register_kind

# config kind -> (config class, family class)
FAMILIES: dict[str, tuple[str, str]] = {
    "train_sd": ("galaxy_hpc.models.sd.config:SDTrainConfig",
                 "galaxy_hpc.models.sd.family:SDFamily"),
    "train_ldm_vae": ("galaxy_hpc.models.ldm.config:LDMVaeTrainConfig",
                      "galaxy_hpc.models.ldm.vae_family:LDMVaeFamily"),
    "train_ldm_unet": ("galaxy_hpc.models.ldm.config:LDMUNetTrainConfig",
                       "galaxy_hpc.models.ldm.unet_family:LDMUNetFamily"),
    "train_gan": ("galaxy_hpc.models.gan.config:GanTrainConfig",
                  "galaxy_hpc.models.gan.family:GanFamily"),
    "train_dino": ("galaxy_hpc.models.dino.config:DinoTrainConfig",
                   "galaxy_hpc.models.dino.family:DinoFamily"),
}
for _kind, (_config, _family) in FAMILIES.items():
    register_kind(_kind, _config)
