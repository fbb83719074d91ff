"""`galaxy-hpc train CONFIG [a.b=v ...]`: train a model family on this machine or inside srun.

Runs the training loop on every rank of this launch (alone, mpiexec, srun, torchrun).
Resumes from the newest complete checkpoint in run.output_dir; on a Slurm preemption
signal it saves and requeues the job. Exit 75 means 'saved, run again'. A rerun of a
finished run says so and does nothing; a run.output_dir holding a run of another config
is refused (only run.max_steps, run.log_every and other settings of when to log, sample
and checkpoint may change on resume).
"""

from __future__ import annotations

import argparse

from galaxy_hpc.cli.batch import add_batch_command, print_result


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = add_batch_command(
        subparsers, "train", run=run, config="training YAML (kind: train_sd, ...)",
        help="train a model (SD-1.5 full/LoRA, ...) under DeepSpeed ZeRO", description=__doc__)
    parser.add_argument("--overwrite", action="store_true",
                        help="when run.output_dir holds a run of another config, delete it and "
                        "start over (run.overwrite=true); a run of this config still resumes")


def run(args: argparse.Namespace) -> int:
    import os

    os.environ.setdefault("DS_ACCELERATOR", "cpu" if not _has_cuda() else "cuda")
    from galaxy_hpc.jobs import load_job_config, run_job
    from hpc.preempt import EXIT_REQUEUE

    overrides = list(args.overrides) + (["run.overwrite=true"] if args.overwrite else [])
    cfg = load_job_config("train", args.config, overrides)
    from hpc.files import check_writable

    check_writable(cfg.run.output_dir, "the training output folder (run.output_dir)")
    result = run_job("train", cfg)
    if args.json or not result.announced:
        print_result(args, result)
    return EXIT_REQUEUE if result.preempted else (0 if result.ok else 1)


def _has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()
