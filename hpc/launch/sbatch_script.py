"""A standalone sbatch script from a cluster profile: what `galaxy-hpc sbatch` prints
and what every shipped `slurm/*.sbatch` is generated from (tools/make_sbatch.py).

The profile supplies everything about the cluster (hpc.launch.slurm_options,
which `galaxy-hpc submit` uses too); `BatchJob` supplies what is run. The
script needs nothing beside itself: it finds galaxy-hpc on PATH or in the .venv
of a checkout that it locates without relying on the directory it was
submitted from (under sbatch the running copy lives in Slurm's spool, so `$0`
names nothing useful; Slurm's record of the submitted path does).
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from hpc.launch.profiles import ClusterProfile
from hpc.launch.slurm_options import sbatch_options, srun_arguments


@dataclass(frozen=True)
class BatchJob:
    """What a script runs, apart from the cluster's settings."""

    job_name: str
    # galaxy-hpc's arguments before the script's own ("train", or "train", CONFIG, a=1).
    arguments: tuple[str, ...]
    # The job saves and requeues itself on the profile's signal (train, generate).
    preemptible: bool = True
    about: tuple[str, ...] = ()  # comment lines at the top: what it runs, how to submit it
    on_signal: tuple[str, ...] = ()  # comment lines: what a preemptible job does on the signal
    origin: tuple[str, ...] = ()  # comment lines after those: where the script comes from
    prologue: tuple[str, ...] = ()  # shell lines before srun (e.g. a default first argument)
    output: str = "slurm-%x-%j.out"


# The same for every script: find galaxy-hpc, agree on the rendezvous, start the tasks.
_RUNTIME = r'''ghpc_die() { echo "galaxy-hpc sbatch: error: $*" >&2; exit 1; }
[[ -n "${SLURM_JOB_ID:-}" ]] || ghpc_die "run this script with sbatch, not bash"

# Checkouts whose .venv may hold galaxy-hpc: $GALAXY_HPC_HOME, the checkout this script
# was submitted from (Slurm's record of its path, arguments dropped), the submission dir.
ghpc_checkouts() {
    if [[ -n "${GALAXY_HPC_HOME:-}" ]]; then echo "$GALAXY_HPC_HOME"; fi
    local script
    script=$(scontrol show job "$SLURM_JOB_ID" 2>/dev/null | sed -n 's/^ *Command=//p') || true
    while [[ -n "$script" && ! -f "$script" && "$script" == *" "* ]]; do script=${script% *}; done
    if [[ -f "$script" ]]; then (cd "$(dirname "$script")/.." && pwd); fi
    echo "${SLURM_SUBMIT_DIR:-$PWD}"
}
if ! command -v galaxy-hpc >/dev/null 2>&1; then
    while IFS= read -r home; do
        if [[ -x "$home/.venv/bin/galaxy-hpc" ]]; then
            export GALAXY_HPC_HOME="$home" PATH="$home/.venv/bin:$PATH"
            echo "galaxy-hpc: from $home/.venv (not on PATH)"
            break
        fi
    done < <(ghpc_checkouts)
    command -v galaxy-hpc >/dev/null 2>&1 || ghpc_die "galaxy-hpc is not on PATH and no" \
        ".venv/bin/galaxy-hpc in: $(ghpc_checkouts | awk '!seen[$0]++' | paste -sd ' ');" \
        "activate its environment before sbatch, or set GALAXY_HPC_HOME to the checkout"
fi

# Every task derives the same rendezvous from the job id (hpc.dist); ranks > 0 log
# to files of their own.
eval "$(galaxy-hpc env --export)"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-${SLURM_CPUS_PER_TASK:-1}}"
export GHPC_RANK_LOG_DIR="${GHPC_RANK_LOG_DIR:-logs/${SLURM_JOB_NAME:-job}-${SLURM_JOB_ID}}"

# srun galaxy-hpc ARGS: the allocation's tasks, one per GPU where there are GPUs; one
# failing task ends the step (no hung ranks). GHPC_SRUN_MPI (pmi2, cray_shasta, ...)
# picks srun's MPI plugin; unset, the cluster's MpiDefault applies.
ghpc_srun() {
    local gpus="${SLURM_GPUS_ON_NODE:-0}" tasks="${SLURM_NTASKS_PER_NODE:-}"
    if [[ "$gpus" =~ ^[0-9]+$ && "$tasks" =~ ^[0-9]+$ ]] && (( gpus > 0 && tasks != gpus )); then
        ghpc_die "$tasks tasks per node for $gpus GPUs per node: one task per GPU" \
            "(sbatch --ntasks-per-node=$gpus --gpus-per-node=$gpus)"
    fi
    local -a srun_args=(--kill-on-bad-exit=1 @SRUN_ARGS@)
    if [[ -n "${GHPC_SRUN_MPI:-}" ]]; then srun_args+=(--mpi="$GHPC_SRUN_MPI"); fi
    echo "galaxy-hpc: job ${SLURM_JOB_ID} on ${SLURM_JOB_NUM_NODES:-1} node(s)" \
        "[${SLURM_JOB_NODELIST}], master ${MASTER_ADDR}:${MASTER_PORT}"
    echo "galaxy-hpc: srun ${srun_args[*]} galaxy-hpc $*"
    srun "${srun_args[@]}" galaxy-hpc "$@"
}'''


def _sbatch_line(key: str, value: str | bool) -> str:
    # Quoted as submitit quotes its own lines, so that the two can be compared.
    return f"#SBATCH --{key}" if value is True else f"#SBATCH --{key}={shlex.quote(str(value))}"


def _header(profile: ClusterProfile, job: BatchJob) -> list[str]:
    """Comment paragraphs: what the job is, what it does on the signal, where the script
    comes from."""
    preemption: tuple[str, ...] = ()
    if job.preemptible:
        preemption = (f"Preemption and time limits: Slurm sends {profile.preempt_signal} to "
                      f"every task {profile.signal_delay_s} s before the end;",
                      "the job stops at a safe point, saves, and requeues itself (the log is "
                      "appended to).", *job.on_signal)
    lines: list[str] = []
    for paragraph in (job.about, preemption, job.origin):
        if paragraph:
            lines += ([""] if lines else []) + list(paragraph)
    return [f"# {line}".rstrip() for line in lines]


def render_sbatch_script(profile: ClusterProfile, job: BatchJob) -> str:
    """The text of a standalone sbatch script running `galaxy-hpc ARGUMENTS "$@"` under srun."""
    options = sbatch_options(profile, job_name=job.job_name, preemptible=job.preemptible)
    options["output"] = job.output
    if job.preemptible:
        options["open-mode"] = "append"  # a requeued job goes on in the same log
    lines = ["#!/bin/bash", *_header(profile, job)]
    lines += [_sbatch_line(key, value) for key, value in options.items()]
    if profile.setup or profile.env:
        lines += ["", "set -eo pipefail",
                  f"# Site setup of cluster profile {profile.name!r}: modules, then environment.",
                  *profile.setup_lines(),
                  "set -u  # only now: module scripts may read unset variables"]
    else:
        lines += ["", "set -euo pipefail"]
    lines.append("")
    srun_args = " ".join(shlex.quote(arg) for arg in srun_arguments(profile))
    lines += _RUNTIME.replace(" @SRUN_ARGS@", f" {srun_args}" if srun_args else "").splitlines()
    lines += ["", *job.prologue, f'ghpc_srun {shlex.join(job.arguments)} "$@"', ""]
    return "\n".join(lines)
