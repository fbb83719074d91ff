"""Job functions the launch tests submit (importable by the job processes via PYTHONPATH)."""

import os


def square_with_rank(x: int) -> tuple[int, str]:
    return x * x, os.environ.get("SUBMITIT_LOCAL_GLOBALID", os.environ.get("SLURM_PROCID", "?"))
