"""Launching jobs: cluster profiles and submitit executors."""

from hpc.launch.profiles import ClusterProfile, available_profiles, load_profile
from hpc.launch.submit import (
    Resubmittable,
    SubmittedJob,
    final_state,
    make_executor,
    sbatch_script,
    submit,
    submit_array,
    wait,
)

__all__ = [
    "ClusterProfile", "Resubmittable", "SubmittedJob", "available_profiles", "final_state", "load_profile",
    "make_executor", "sbatch_script", "submit", "submit_array", "wait",
]
