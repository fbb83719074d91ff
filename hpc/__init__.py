"""Cluster machinery for galaxy-hpc: configs, distributed set-up, launchers, MPI, stores.

Nothing in this package knows what a galaxy is; the domain lives in `galaxy_hpc`.
"""
