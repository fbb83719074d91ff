"""The one registry line of the toy family (inside galaxy_hpc it is a line of MODELS in
galaxy_hpc/registry.py; a plug-in outside calls register_model)."""

from galaxy_hpc.registry import ModelSpec, register_model

register_model(ModelSpec("train_toy", "toy_family.config:ToyModelConfig",
                         "toy_family.family:ToyFamily", summary="a denoising autoencoder"))
