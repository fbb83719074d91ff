"""Conditional GAN (galaxyCGAN's method): galaxies from catalog columns, by default
(redshift, log stellar mass), at the training store's size (`kind: train_gan`).

networks.py holds the generator (resize + convolution, FiLM-conditioned at every
resolution) and the projection discriminator with auxiliary regression; family.py how
both train as one module on the one loop; consistency.py the check that generated
galaxies brighten and grow with the requested mass; generator.py the exported
generator that catalog generation loads alone (`load_generator`).
"""
