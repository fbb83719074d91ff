"""Launching jobs: cluster profiles, and the submitit executors and sbatch scripts from them."""

from hpc.launch.profiles import ClusterProfile, available_profiles, load_profile
from hpc.launch.sbatch_script import BatchJob, render_sbatch_script
from hpc.launch.slurm_options import sbatch_options, submitit_parameters
from hpc.launch.submit import (
    Resubmittable,
    SubmittedJob,
    final_state,
    make_executor,
    submit,
    submit_array,
    wait,
)

__all__ = [
    "BatchJob", "ClusterProfile", "Resubmittable", "SubmittedJob", "available_profiles",
    "final_state", "load_profile", "make_executor", "render_sbatch_script", "sbatch_options",
    "submit", "submit_array", "submitit_parameters", "wait",
]
