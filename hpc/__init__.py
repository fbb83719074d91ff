"""Cluster machinery for galaxy-hpc: configs, distributed set-up, launchers, MPI, stores.

Nothing in this package knows what a galaxy is; the domain lives in `galaxy_hpc`.
"""

import os as _os


def _prefer_ofi_with_the_mpich_wheel() -> None:
    """With PyPI's mpich (laptops, CI, the local test cluster), use its OFI netmod.

    The wheel's default netmod, UCX, exchanges long binary addresses through PMI at start-up;
    under Slurm's pmi2 plugin (22.05) those requests came through corrupted in 2 of 15
    two-node `srun --mpi=pmi2` launches measured here ("mpi/pmi2: value not properly
    terminated", then a UCX assertion or a hang), and each launch took ~10 s. With OFI:
    0 of 15, ~2 s each. A site MPI (cray-mpich, built with GHPC_SYSTEM_MPI=1) is not the
    wheel and is left alone, as is a netmod the user chose.
    """
    if "MPIR_CVAR_CH4_NETMOD" in _os.environ:
        return
    from importlib import metadata

    try:
        metadata.version("mpich")
    except metadata.PackageNotFoundError:
        return
    _os.environ["MPIR_CVAR_CH4_NETMOD"] = "ofi"


_prefer_ofi_with_the_mpich_wheel()
