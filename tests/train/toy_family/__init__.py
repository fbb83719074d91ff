"""A model family that lives outside galaxy_hpc: a denoising autoencoder on store images.

It is what the guide's "adding a model family" shows, kept small: a config module, a
family module, and one registry line (`registration.py`). The test trains it with the
real loop and checks what it wrote (tests/train/test_family_registration.py).
"""
