# Shared by every sbatch script in slurm/: source it, then call ghpc_srun.
#
#   source "${GALAXY_HPC_HOME:-$SLURM_SUBMIT_DIR}/slurm/common.sh"
#   ghpc_srun JOB "$@"          # JOB: a galaxy-hpc subcommand; "$@": CONFIG [key=value ...]
#
# What it does, so that a user edits only the #SBATCH lines:
# - finds galaxy-hpc: on PATH already (a module or an activated env), else the
#   .venv of the checkout (GALAXY_HPC_HOME, else the directory sbatch was run from);
# - exports the job's rendezvous (MASTER_ADDR, MASTER_PORT derived from the job
#   id, the same rule every task applies) and OMP_NUM_THREADS;
# - starts one task per GPU when the allocation has GPUs, otherwise one per
#   allocated task, with srun; one failing task ends the step (no hung ranks);
# - sends ranks > 0 to per-rank log files in logs/<job name>-<job id>/.
# Set GHPC_SRUN_MPI (e.g. pmi2, cray_shasta) to pass --mpi= to srun; unset,
# the cluster's MpiDefault applies.

set -euo pipefail

ghpc_die() { echo "galaxy-hpc sbatch: error: $*" >&2; exit 1; }

[[ -n "${SLURM_JOB_ID:-}" ]] || ghpc_die "run this script with sbatch, not bash"

GALAXY_HPC_HOME="${GALAXY_HPC_HOME:-${SLURM_SUBMIT_DIR:-$PWD}}"
export GALAXY_HPC_HOME

if ! command -v galaxy-hpc >/dev/null 2>&1; then
    if [[ -f "$GALAXY_HPC_HOME/.venv/bin/activate" ]]; then
        # shellcheck disable=SC1091
        source "$GALAXY_HPC_HOME/.venv/bin/activate"
    else
        ghpc_die "galaxy-hpc is not on PATH and $GALAXY_HPC_HOME/.venv does not exist: run 'make install' in the checkout, or set GALAXY_HPC_HOME"
    fi
fi

eval "$(galaxy-hpc env --export)"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-${SLURM_CPUS_PER_TASK:-1}}"
export GHPC_RANK_LOG_DIR="${GHPC_RANK_LOG_DIR:-logs/${SLURM_JOB_NAME:-job}-${SLURM_JOB_ID}}"

ghpc_srun() {
    local job="$1"; shift
    local -a srun_args=(--kill-on-bad-exit=1)
    local gpus="${SLURM_GPUS_ON_NODE:-0}"
    if [[ "$gpus" =~ ^[0-9]+$ ]] && (( gpus > 0 )); then
        # One rank per GPU; each rank picks its device from its local rank, and
        # all GPUs of the node stay visible so NCCL can use NVLink between them.
        srun_args+=(--ntasks-per-node="$gpus" --gpu-bind=none)
    fi
    [[ -n "${GHPC_SRUN_MPI:-}" ]] && srun_args+=(--mpi="$GHPC_SRUN_MPI")
    echo "galaxy-hpc: job ${SLURM_JOB_ID} on ${SLURM_JOB_NUM_NODES:-1} node(s) [${SLURM_JOB_NODELIST}], master ${MASTER_ADDR}:${MASTER_PORT}"
    echo "galaxy-hpc: srun ${srun_args[*]} galaxy-hpc $job $*"
    srun "${srun_args[@]}" galaxy-hpc "$job" "$@"
}
