#!/usr/bin/env python3
"""Generate the shipped slurm/*.sbatch from the cluster profiles (one source of Slurm settings).

    python tools/make_sbatch.py           # rewrite slurm/*.sbatch
    python tools/make_sbatch.py --check   # exit 1 naming each script that differs (CI)

Each script is `hpc.launch.render_sbatch_script` of a profile in configs/cluster/
(GPU scripts: gpu.yaml; the self-test: slurm.yaml) with the few things that
really differ per script: job name, time limit, what it runs, its usage text.
To change a setting, change the profile (or the table below) and rerun this;
tests/hpc/test_launch.py fails while a shipped script differs from its output.
"""

from __future__ import annotations

import argparse
import os
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from galaxy_hpc.serve.sbatch import PORT_RULE, PROLOGUE  # noqa: E402
from hpc.launch import BatchJob, load_profile, render_sbatch_script  # noqa: E402

SLURM_DIR = REPO / "slurm"
PROFILES = REPO / "configs" / "cluster"


@dataclass(frozen=True)
class Shipped:
    file: str
    job: BatchJob
    profile: str = "gpu"
    profile_overrides: tuple[str, ...] = ()


def _text(block: str) -> tuple[str, ...]:
    return tuple(block.strip("\n").splitlines())


def _train(family: str, hours: int, about: str) -> Shipped:
    """The training scripts differ in job name, time limit and usage text only."""
    suffix = f"_{family}" if family else ""
    return Shipped(f"train{suffix}.sbatch", BatchJob(
        job_name=f"ghpc-train{suffix.replace('_', '-')}", arguments=("train",),
        about=_text(about), on_signal=_text("""
All ranks save a checkpoint at the next step, and the requeued job resumes from it
(run.resume_from_checkpoint: latest).
""")), profile_overrides=(f"time_min={hours * 60}",))


SCRIPTS: list[Shipped] = [
    Shipped("selftest.sbatch", BatchJob(
        job_name="ghpc-selftest", arguments=("selftest",), preemptible=False, about=_text("""
Distributed self-test over every task of the allocation: an all-reduce with
torch.distributed (NCCL on GPUs, gloo on CPUs) and one with MPI; rank 0
prints the world size, the hosts and the sums, and the job fails if any
rank disagrees. Takes seconds.

  sbatch slurm/selftest.sbatch [configs/selftest.yaml] [key=value ...]
  sbatch --gpus-per-node=4 --ntasks-per-node=4 slurm/selftest.sbatch   # GPU nodes
""")), profile="slurm", profile_overrides=("nodes=2", "tasks_per_node=2", "time_min=10")),
    _train("", 4, """
Any model family under DeepSpeed ZeRO, one task per GPU: the config's kind picks it.

  sbatch slurm/train.sbatch configs/train/gan.yaml [key=value ...]
"""),
    _train("sd", 4, """
Stable Diffusion 1.5 fine-tuning (full or LoRA) under DeepSpeed ZeRO, one task per GPU.

  sbatch slurm/train_sd.sbatch configs/train/sd_lora.yaml [key=value ...]
  sbatch -N 4 slurm/train_sd.sbatch configs/train/sd_full.yaml run.max_steps=20000
"""),
    _train("gan", 2, """
The conditional GAN under DeepSpeed ZeRO-2, one task per GPU.

  sbatch slurm/train_gan.sbatch configs/train/gan.yaml [key=value ...]
  sbatch slurm/train_gan.sbatch configs/train/gan.yaml data.store=$SCRATCH/hsc_50.zarr

Output: <run.output_dir>/generator, which galaxy_hpc.models.gan.generator.load_generator
loads alone, with consistency.json (does mass make brighter, larger galaxies?).
"""),
    _train("ldm", 4, """
Latent diffusion from scratch under DeepSpeed ZeRO, one task per GPU: stage 1 (the
AutoencoderKL) and stage 2 (the conditional latent UNet) are two runs of this script.

  sbatch slurm/train_ldm.sbatch configs/train/ldm_vae.yaml [key=value ...]
  sbatch slurm/train_ldm.sbatch configs/train/ldm_unet.yaml model.vae_path=runs/ldm_vae/vae
  jid=$(sbatch --parsable slurm/train_ldm.sbatch configs/train/ldm_vae.yaml)
  sbatch --dependency=afterok:$jid slurm/train_ldm.sbatch configs/train/ldm_unet.yaml
"""),
    _train("dino", 2, """
DINOv2 vote-fraction regressor under DeepSpeed ZeRO, one task per GPU, in two runs of
this script (Galaxy Sommelier's stages): head only on a frozen backbone, then full
fine-tuning (or LoRA) from the head stage's predictor. Each run ends with held-out
metrics (OUTPUT/predictor/metrics.json, OUTPUT/eval/true_vs_predicted.png).

  sbatch slurm/train_dino.sbatch configs/train/dino_head.yaml \
      model.backbone=$SCRATCH/dinov2-base
  jid=$(sbatch --parsable slurm/train_dino.sbatch configs/train/dino_head.yaml)
  sbatch --dependency=afterok:$jid slurm/train_dino.sbatch configs/train/dino_full.yaml
  sbatch slurm/train_dino.sbatch configs/train/dino_full.yaml model.stage=lora
"""),
    Shipped("generate_catalog.sbatch", BatchJob(
        job_name="ghpc-generate", arguments=("generate",), about=_text("""
A synthetic galaxy catalog (store + FITS table) from a trained model, one MPI rank
per GPU (or per task on CPU nodes). Ranks take output shards from a shared queue, so
any number of nodes gives the same bytes; add nodes to finish sooner.

  sbatch slurm/generate_catalog.sbatch configs/generate/catalog.yaml [key=value ...]
  sbatch -N 8 --time=12:00:00 slurm/generate_catalog.sbatch configs/generate/catalog.yaml

Faults: a killed job (node failure, scancel, time limit) loses at most the shards in
flight; submit the same command again and it finishes the catalog.
"""), on_signal=_text("""
Each rank finishes the shard it is making, and the requeued job goes on from the
shards that are done.
""")), profile_overrides=("time_min=240",)),
    Shipped("eval_fid.sbatch", BatchJob(
        job_name="ghpc-eval-fid", arguments=("evaluate",), preemptible=False, about=_text("""
Distributed evaluation of a generated catalog: FID/KID/IS over every task of the
allocation (each rank extracts features of its batches; one all-reduce), or any other
`galaxy-hpc evaluate` evaluation, or all of them from a config (kind: evaluate).

  sbatch slurm/eval_fid.sbatch REAL_STORE GEN_STORE \
      --weights $SCRATCH/weights-inception-2015-12-05-6726825d.pth
  sbatch slurm/eval_fid.sbatch REAL_STORE GEN_STORE --extractor dinov2-vit-b-14 \
      --weights $SCRATCH/dinov2-base --out runs/eval1
  sbatch slurm/eval_fid.sbatch physics REAL_STORE GEN_STORE --out runs/eval1
  sbatch slurm/eval_fid.sbatch all configs/evaluate/catalog.yaml real=... generated=...

When the first argument is an existing path (a store), the evaluation is `fid`. The
real store's statistics are cached ($GHPC_EVAL_CACHE, default
~/.cache/galaxy-hpc/eval-stats): point it at shared scratch so later jobs reuse them.
"""), prologue=_text("""
usage="sbatch slurm/eval_fid.sbatch [EVALUATION] REAL_STORE GEN_STORE [flags]"
[[ $# -gt 0 ]] || ghpc_die "usage: $usage"
if [[ -e "$1" ]]; then set -- fid "$@"; fi  # a store path first: the default evaluation
""")), profile_overrides=("time_min=60",)),
    Shipped("serve.sbatch", BatchJob(
        job_name="ghpc-serve", arguments=("serve",), preemptible=False, about=_text("""
`galaxy-hpc serve` on one GPU of a compute node: the catalog browser and the generation
API, with /infer requests batched onto the GPU. It listens on the node's 127.0.0.1 and
prints the ssh command that forwards a laptop's port to it through the login node (and,
for a Jupyter hub with jupyter-server-proxy, the port to proxy).

  sbatch slurm/serve.sbatch configs/serve.yaml [key=value ...]
  sbatch slurm/serve.sbatch --store real=$SCRATCH/sdss.zarr --store gen=$SCRATCH/cat.zarr \
      --model runs/sd_lora/lora --base $SCRATCH/sd-1.5
  GHPC_SERVE_PORT=8765 sbatch -t 2:00:00 slurm/serve.sbatch configs/serve.yaml

""") + ("",) + tuple(textwrap.wrap(PORT_RULE, 88)), prologue=PROLOGUE),
        profile_overrides=("time_min=240", "tasks_per_node=1", "gpus_per_node=1",
                           "cpus_per_task=16")),
]


def render(shipped: Shipped) -> str:
    profile = load_profile(str(PROFILES / f"{shipped.profile}.yaml"),
                           list(shipped.profile_overrides))
    origin = _text(f"""
Generated by tools/make_sbatch.py from configs/cluster/{shipped.profile}.yaml; to change
it, change the profile or the tool's table and rerun the tool. Runs from any directory.
Resources can be overridden at submission (sbatch -N 4 -t 12:00:00 -A ACCOUNT -q QOS ...);
for your site's settings: galaxy-hpc sbatch JOB --cluster my_site.yaml
""")
    return render_sbatch_script(profile, BatchJob(**{**shipped.job.__dict__, "origin": origin}))


def expected() -> dict[Path, str]:
    """Every shipped script's path and the text it must have."""
    return {SLURM_DIR / shipped.file: render(shipped) for shipped in SCRIPTS}


def stale(scripts: dict[Path, str]) -> list[str]:
    """Scripts that differ from their rendering, are missing, or are shipped without a source."""
    problems = [f"{path.relative_to(REPO)}: differs from its profile's rendering"
                for path, text in scripts.items() if path.is_file() and path.read_text() != text]
    problems += [f"{path.relative_to(REPO)}: missing" for path in scripts if not path.is_file()]
    problems += [f"{path.relative_to(REPO)}: not made by tools/make_sbatch.py"
                 for path in sorted(SLURM_DIR.glob("*.sbatch")) if path not in scripts]
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="change nothing; exit 1 if a shipped script differs from "
                        "its rendering")
    args = parser.parse_args(argv)
    scripts = expected()
    if args.check:
        problems = stale(scripts)
        for problem in problems:
            print(f"make_sbatch: {problem} (run python tools/make_sbatch.py)", file=sys.stderr)
        return 1 if problems else 0
    for path, text in scripts.items():
        path.write_text(text)
        os.chmod(path, 0o755)
        print(f"wrote {path.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
