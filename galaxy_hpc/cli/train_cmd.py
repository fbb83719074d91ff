"""`galaxy-hpc train CONFIG [a.b=v ...]`: train a model family on this machine or inside srun."""

from __future__ import annotations

import argparse
from dataclasses import asdict

from galaxy_hpc.cli.output import print_json


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train", help="train a model (SD-1.5 full/LoRA, ...) under DeepSpeed ZeRO",
        description="Run the training loop on every rank of this launch (alone, mpiexec, srun, "
        "torchrun). Resumes from the newest complete checkpoint in run.output_dir; on a Slurm "
        "preemption signal it saves and requeues the job. Exit 75 means 'saved, run again'. "
        "A rerun of a finished run says so and does nothing; a run.output_dir holding a run of "
        "another config is refused (only run.max_steps, run.log_every and other settings of "
        "when to log, sample and checkpoint may change on resume).")
    parser.add_argument("config", help="training YAML (kind: train_sd, ...)")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE")
    parser.add_argument("--overwrite", action="store_true",
                        help="when run.output_dir holds a run of another config, delete it and "
                        "start over (run.overwrite=true); a run of this config still resumes")
    parser.add_argument("--json", action="store_true")
    parser.set_defaults(func=run, distributed=True)


def run(args: argparse.Namespace) -> int:
    import os

    os.environ.setdefault("DS_ACCELERATOR", "cpu" if not _has_cuda() else "cuda")
    from galaxy_hpc.jobs import load_job_config, run_job
    from hpc.dist import resolve_env
    from hpc.preempt import EXIT_REQUEUE

    overrides = list(args.overrides) + (["run.overwrite=true"] if args.overwrite else [])
    cfg = load_job_config("train", args.config, overrides)
    from hpc.files import check_writable

    check_writable(cfg.run.output_dir, "the training output folder (run.output_dir)")
    result = run_job("train", cfg)
    if resolve_env(cuda_available=False).is_main and (args.json or not result.announced):
        if args.json:
            print_json(asdict(result))
        else:
            print(result.summary(), flush=True)
    return EXIT_REQUEUE if result.preempted else (0 if result.ok else 1)


def _has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()
