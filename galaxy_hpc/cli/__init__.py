"""The `galaxy-hpc` command."""
