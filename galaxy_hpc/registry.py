"""Every model family and every config kind galaxy-hpc knows, as import strings.

A model family is one package under galaxy_hpc/models/ and one `ModelSpec` line in
MODELS below: its training config kind, the dataclass of its `model:` section, the
ModelFamily the training loop drives, and the generators a catalog job can load from
what it exports. Nothing else names a family: the training config of a kind is composed
from the shared sections and the model section (galaxy_hpc/train/config.py), the loop
finds the family here by the config's kind, and `generate` finds generators here by
`model.kind`. A plug-in family outside this package calls `register_model` instead.

Strings, so that listing kinds, checking a config on a login node or starting the CLI
imports neither torch nor diffusers; hpc.imports resolves them when used.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import hpc.launch.profiles  # noqa: F401  registers the hpc layer's own kinds: cluster
import hpc.selftest  # noqa: F401  and selftest
from hpc.config import kind_of, register_kind
from hpc.imports import check_target

TRAIN_CONFIG_MODULE = "galaxy_hpc.train.config"


@dataclass(frozen=True)
class GeneratorSpec:
    """A way `galaxy-hpc generate` loads a trained model: `model.kind: NAME`."""

    name: str
    loader: str  # "module:function": load(model, sampler, runtime, *, size) -> Generator
    # model.base names the base pipeline folder the model (an adapter) loads onto.
    needs_base: bool = False
    summary: str = ""


@dataclass(frozen=True)
class ModelSpec:
    """One model family: what trains it and what generates from it."""

    kind: str  # the training config kind, e.g. "train_sd" (`kind:` in configs/train/*.yaml)
    model_config: str  # "module:Class" of the config's `model:` section
    family: str  # "module:Class" of its galaxy_hpc.models.contract.ModelFamily
    generators: tuple[GeneratorSpec, ...] = ()
    summary: str = ""

    @property
    def config_class_name(self) -> str:
        """The composed training config's class (in galaxy_hpc.train.config)."""
        return "".join(part.title() for part in self.kind.split("_")) + "Config"


MODELS: dict[str, ModelSpec] = {}
GENERATORS: dict[str, GeneratorSpec] = {}


def register_model(spec: ModelSpec) -> ModelSpec:
    """Add a family (and its generators); its training config kind becomes loadable."""
    for target, what in ((spec.model_config, "model_config"), (spec.family, "family"),
                         *((g.loader, f"generator {g.name!r}") for g in spec.generators)):
        check_target(target, f"model {spec.kind!r}: {what}")
    taken = [g.name for g in spec.generators if g.name in GENERATORS
             and GENERATORS[g.name] != g]
    if spec.kind in MODELS and MODELS[spec.kind] != spec or taken:
        raise ValueError(f"model {spec.kind!r}: already registered "
                         f"({spec.kind if not taken else ', '.join(taken)})")
    MODELS[spec.kind] = spec
    for generator in spec.generators:
        GENERATORS[generator.name] = generator
    register_kind(spec.kind, f"{TRAIN_CONFIG_MODULE}:{spec.config_class_name}")
    return spec


def model_spec(kind: str) -> ModelSpec:
    if kind not in MODELS:
        raise ValueError(f"no model family trains kind {kind!r} (known: {', '.join(MODELS)})")
    return MODELS[kind]


def spec_for_config(cfg: Any) -> ModelSpec:
    """The family of a composed training config, by the kind it was registered under."""
    kind = kind_of(type(cfg))
    if kind is None or kind not in MODELS:
        raise ValueError(f"{type(cfg).__name__} is not a training config of a registered model "
                         f"family (kinds: {', '.join(MODELS)})")
    return MODELS[kind]


def generator_spec(name: str) -> GeneratorSpec:
    if name not in GENERATORS:
        raise ValueError(f"model.kind {name!r} is not a known generator; known: "
                         f"{', '.join(sorted(GENERATORS))}")
    return GENERATORS[name]


# --------------------------------------------------------------------------- the families

_M = "galaxy_hpc.models"
for _spec in [
    ModelSpec("train_sd", f"{_M}.sd.config:SDModelConfig", f"{_M}.sd.family:SDFamily",
              (GeneratorSpec("sd", f"{_M}.sd.generation:load_sd",
                             summary="a StableDiffusionPipeline folder (a full fine-tune's "
                             "pipeline/, or SD-1.5)"),
               GeneratorSpec("sd_lora", f"{_M}.sd.generation:load_sd_lora", needs_base=True,
                             summary="a LoRA folder (path) over its base pipeline (base)")),
              summary="Stable Diffusion 1.5 on captions: full fine-tune or LoRA"),
    ModelSpec("train_ldm_vae", f"{_M}.ldm.config:VaeModelConfig",
              f"{_M}.ldm.vae_family:LDMVaeFamily",
              summary="latent diffusion, stage 1: the autoencoder"),
    ModelSpec("train_ldm_unet", f"{_M}.ldm.config:LatentUNetModelConfig",
              f"{_M}.ldm.unet_family:LDMUNetFamily",
              (GeneratorSpec("ldm", f"{_M}.ldm.generation:load_ldm",
                             summary="a GalaxyLDMPipeline folder (conditions on numbers)"),),
              summary="latent diffusion, stage 2: the conditional UNet"),
    ModelSpec("train_gan", f"{_M}.gan.config:GanModelConfig", f"{_M}.gan.family:GanFamily",
              (GeneratorSpec("gan", f"{_M}.gan.generation:load_gan",
                             summary="the generator/ folder of a train_gan run"),),
              summary="conditional GAN on numeric conditions (redshift, stellar mass)"),
    ModelSpec("train_dino", f"{_M}.dino.config:DinoModelConfig", f"{_M}.dino.family:DinoFamily",
              summary="DINOv2 Galaxy Zoo vote-fraction regressor"),
]:
    register_model(_spec)


# --------------------------------------------------------------------------- job configs

# The galaxy jobs' config kinds (the hpc layer registers its own, imported above).
for _kind, _target in {
    "synth": "galaxy_hpc.data.synth.job:SynthJobConfig",
    "ingest": "galaxy_hpc.data.ingest.config:IngestConfig",
    "encode": "galaxy_hpc.encode.job:EncodeConfig",
    "dedup": "galaxy_hpc.curate.config:DedupConfig",
    "select": "galaxy_hpc.curate.config:SelectConfig",
    "evaluate": "galaxy_hpc.evaluate.job:EvaluateJobConfig",
    "generate": "galaxy_hpc.generate.config:GenerateConfig",
    "serve": "galaxy_hpc.serve.config:ServeConfig",
    "augmentation": "galaxy_hpc.evaluate.augmentation_config:AugmentationConfig",
    # `galaxy-hpc evaluate EVALUATION CONFIG`: each evaluation's config file names its kind.
    "fid": "galaxy_hpc.evaluate.config:FidConfig",
    "physics": "galaxy_hpc.evaluate.config:PhysicsConfig",
    "morphology": "galaxy_hpc.evaluate.config:MorphologyConfig",
    "morphology_fidelity": "galaxy_hpc.evaluate.config:MorphologyFidelityConfig",
    "conditioning": "galaxy_hpc.evaluate.config:ConditioningConfig",
    "clipscore": "galaxy_hpc.evaluate.config:ClipScoreConfig",
}.items():
    register_kind(_kind, _target)
