"""Catalog throughput: galaxy-hpc generate against diffusers' own pipeline, and 1 vs 2 ranks.

    .venv/bin/python benchmarks/bench_generate.py                       # CPU: tiny SD, 32 px
    .venv/bin/python benchmarks/bench_generate.py --shape small         # CPU: 1/5-width SD, 64 px
    .venv/bin/python benchmarks/bench_generate.py --shape sd15 --size 256 --steps 25   # a GPU
    .venv/bin/python benchmarks/bench_generate.py --model $SCRATCH/sd15 --size 256     # real weights

One run measures, on the same model (random weights of the shape, or --model), the same
sampler (DPM-Solver++), steps and guidance (7.5), the same GalaxySD-style captions:
- reference: StableDiffusionPipeline as a user loads it (default dtype, fp32), called one
  prompt at a time: pipe(prompt, num_inference_steps, height, width, generator);
- batched reference: the same pipeline loaded in the precision galaxy-hpc uses (bf16 on
  GPU, fp32 on CPU) and called with --batch prompts per call: the fair baseline, since
  batching alone explains most of the gain over one prompt per call;
- galaxy-hpc: the catalog job's loop (Catalog.make_shard + the store's write_shard) on one
  process: batches of --batch objects, text embeddings once per distinct caption, bf16
  and a channels-last UNet on GPU (fp32 on CPU);
both after one warm-up call, model loading left out, timed --repeats times interleaved
(best kept: a shared machine's load drifts), on CPU with --threads torch threads (1 by
default: what each rank of a job gets). Then `galaxy-hpc generate` itself under mpiexec
with 1 and 2 ranks (one thread each) on 8x as many objects, its objects/s while
generating, best of --repeats launches.
Prints images/s, the ratios, galaxy-hpc's MFU in the sampling loop (FLOP per image counted
with torch's FlopCounterMode over one batch, as bench_train counts them, over the device's
dense peak for the precision; GPUs only), and the process-hours (GPU-hours on a GPU) that
1,000,000 objects take at the measured rate per process.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
CAPTIONS = [
    "sdss, elliptical galaxy",
    "sdss, spiral galaxy, obvious bulge prominence, tightly wound spiral arms, 2 spiral arms",
    "sdss, edge-on galaxy, with rounded edge-on bulge",
    "sdss, smooth, cigar shaped galaxy",
    "sdss, spiral galaxy, just noticeable bulge prominence, medium wound spiral arms",
    "sdss, spiral galaxy, merger",
    "sdss, ring galaxy",
    "sdss, smooth, in-between round galaxy",
]
SHAPES = {
    # tests' tiny SD-1.5 shape (galaxy_hpc.models.sd.components.tiny_components)
    "tiny": None,
    # SD-1.5's layout at 1/5 of the width (benchmarks/bench_train.py's "small")
    "small": dict(unet=dict(block_out_channels=(64, 128, 256, 256), cross_attention_dim=128,
                            layers_per_block=1, attention_head_dim=8),
                  text=dict(hidden_size=128, intermediate_size=512, num_hidden_layers=4,
                            num_attention_heads=4),
                  vae=(32, 64, 128, 128)),
    # Stable Diffusion 1.5 (UNet 860 M, CLIP ViT-L/14 text encoder 123 M, VAE 84 M)
    "sd15": dict(unet=dict(block_out_channels=(320, 640, 1280, 1280), cross_attention_dim=768,
                           layers_per_block=2, attention_head_dim=8),
                 text=dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                           num_attention_heads=12),
                 vae=(128, 256, 512, 512)),
}


def write_model(shape: str, size: int, folder: Path) -> Path:
    """A StableDiffusionPipeline folder of the shape, random weights (nothing downloaded)."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from galaxy_hpc.models.sd.components import save_pipeline, tiny_components

    parts = tiny_components(captions=CAPTIONS, image_size=size)
    spec = SHAPES[shape]
    if spec is not None:
        torch.manual_seed(0)
        vocab = parts.tokenizer.get_vocab()
        parts.text_encoder = CLIPTextModel(CLIPTextConfig(
            vocab_size=len(vocab), max_position_embeddings=77,
            bos_token_id=vocab["<|startoftext|>"], eos_token_id=vocab["<|endoftext|>"],
            pad_token_id=vocab["<|endoftext|>"], **spec["text"]))
        parts.unet = UNet2DConditionModel(
            sample_size=size // 8, in_channels=4, out_channels=4, norm_num_groups=32,
            down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
            up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3, **spec["unet"])
        parts.vae = AutoencoderKL(
            in_channels=3, out_channels=3, latent_channels=4, block_out_channels=spec["vae"],
            down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
            layers_per_block=2, norm_num_groups=32, sample_size=size)
    return save_pipeline(parts, folder)


def timed(work) -> float:
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    start = time.perf_counter()
    work()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - start


def reference_loop(model: Path, prompts: list[str], args, per_call: int = 1,
                   dtype: torch.dtype | None = None):
    """diffusers as documented: load, pick the sampler, `per_call` prompts per call."""
    from diffusers import DPMSolverMultistepScheduler, StableDiffusionPipeline

    device = "cuda" if torch.cuda.is_available() else "cpu"
    extra = {"torch_dtype": dtype} if dtype is not None else {}
    pipe = StableDiffusionPipeline.from_pretrained(model, safety_checker=None,
                                                   requires_safety_checker=False,
                                                   **extra).to(device)
    pipe.scheduler = DPMSolverMultistepScheduler.from_config(pipe.scheduler.config,
                                                             algorithm_type="dpmsolver++")
    pipe.set_progress_bar_config(disable=True)

    def work(count: int | None = None) -> None:
        chosen = prompts[:count]
        for first in range(0, len(chosen), per_call):
            batch = chosen[first:first + per_call]
            generators = [torch.Generator(device).manual_seed(first + i)
                          for i in range(len(batch))]
            pipe(batch if per_call > 1 else batch[0], num_inference_steps=args.steps,
                 height=args.size, width=args.size, guidance_scale=7.5,
                 generator=generators if per_call > 1 else generators[0]).images

    work(per_call)  # warm-up
    return work


def write_catalog_inputs(model: Path, prompts: list[str], folder: Path, args,
                         threads: int | None) -> Path:
    import csv

    import yaml

    table = folder / "captions.csv"
    with open(table, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["caption"])
        writer.writerows([p] for p in prompts)
    config = folder / "catalog.yaml"
    config.write_text(yaml.safe_dump({
        "kind": "generate", "out": str(folder / "catalog.zarr"), "size": args.size,
        "shard_size": args.batch * 2, "batch_size": args.batch, "overwrite": True,
        "model": {"kind": "sd", "path": str(model)},
        "sampler": {"name": "dpm_solver++", "steps": args.steps, "guidance_scale": 7.5},
        "conditions": {"source": "table", "path": str(table)},
        "runtime": {"cpu_threads": threads}}))
    return config


def galaxy_hpc_loop(config: Path):
    """The job's own loop on one process, after a warm-up batch."""
    from galaxy_hpc.generate.config import GenerateConfig
    from galaxy_hpc.generate.job import build_catalog
    from hpc.config import load_config
    from hpc.store import create_store

    cfg = load_config(config, cls=GenerateConfig)
    catalog = build_catalog(cfg)
    catalog.model_hashes = {"pipeline": "benchmark"}
    writer = create_store(cfg.out, catalog.spec(), num_items=catalog.num_objects, overwrite=True)

    def work() -> None:
        for shard in range(writer.num_shards):
            first, stop = writer.shard_bounds(shard)
            writer.write_shard(shard, *catalog.make_shard(first, stop))

    catalog.make(np.arange(min(cfg.batch_size, catalog.num_objects)))  # warm-up
    return work, catalog.num_objects, catalog.runtime.precision, catalog


def flop_per_image(catalog, batch: int) -> float:
    """FLOP of one batch of the job's loop (text encoder, sampler, VAE decoder) per image."""
    from torch.utils.flop_counter import FlopCounterMode

    count = min(batch, catalog.num_objects)
    counter = FlopCounterMode(display=False)
    with counter:
        catalog.make(np.arange(count))
    return counter.get_total_flops() / count


def ranks_rate(config: Path, ranks: int) -> float:
    """`galaxy-hpc generate` under mpiexec: all ranks' objects/s while generating."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    bin_dir = Path(sys.executable).parent
    done = subprocess.run([str(bin_dir / "mpiexec"), "-n", str(ranks), str(bin_dir / "galaxy-hpc"),
                           "generate", str(config), "--json"], env=env, capture_output=True,
                          text=True, cwd=config.parent, timeout=3600)
    if done.returncode != 0:
        raise RuntimeError(f"mpiexec -n {ranks} failed:\n{done.stderr[-3000:]}")
    return float(json.loads(done.stdout.strip().splitlines()[-1])["objects_per_s"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shape", choices=sorted(SHAPES), default=None,
                        help="model shape, random weights (default: sd15 on GPU, tiny on CPU)")
    parser.add_argument("--model", help="a StableDiffusionPipeline folder instead of --shape")
    parser.add_argument("--size", type=int, default=None, help="px (256 on GPU, 32/64 on CPU)")
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--num", type=int, default=None, help="images timed per method")
    parser.add_argument("--batch", type=int, default=None, help="galaxy-hpc objects per call")
    parser.add_argument("--ranks", type=int, nargs="*", default=None,
                        help="mpiexec rank counts to time (default: 1 2 on CPU, none on GPU)")
    parser.add_argument("--repeats", type=int, default=3,
                        help="timings per method, interleaved; the best is kept (load drifts)")
    parser.add_argument("--threads", type=int, default=1,
                        help="CPU: torch threads of this process (1: a rank's share of a core)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    on_gpu = torch.cuda.is_available()
    if not on_gpu:
        torch.set_num_threads(args.threads)
    shape = args.shape or ("sd15" if on_gpu else "tiny")
    args.size = args.size or (256 if on_gpu else (32 if shape == "tiny" else 64))
    args.num = args.num or (64 if on_gpu else 16)
    args.batch = args.batch or (16 if on_gpu else 8)
    ranks = args.ranks if args.ranks is not None else ([] if on_gpu else [1, 2])
    device = torch.cuda.get_device_name() if on_gpu else f"CPU ({os.cpu_count()} cores)"
    prompts = [CAPTIONS[i % len(CAPTIONS)] for i in range(args.num)]
    with tempfile.TemporaryDirectory(prefix="bench-generate-") as tmp:
        folder = Path(tmp)
        model = Path(args.model) if args.model else write_model(shape, args.size, folder / "model")
        work, count, precision, catalog = galaxy_hpc_loop(
            write_catalog_inputs(model, prompts, folder, args, None if on_gpu else args.threads))
        dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision, torch.float32)
        loops = {"reference": (reference_loop(model, prompts, args), len(prompts)),
                 "reference_batched": (reference_loop(model, prompts, args, args.batch, dtype),
                                       len(prompts)),
                 "ours": (work, count)}
        best = {name: 0.0 for name in loops}
        for _ in range(args.repeats):
            for name, (loop, images) in loops.items():
                best[name] = max(best[name], images / timed(loop))
        reference, ours = best["reference"], best["ours"]
        batched = best["reference_batched"]
        flop = flop_per_image(catalog, args.batch)
        del loops, catalog
        scaling = {}
        if ranks:  # a longer catalog: a launch's start-up is not timed, its queue is
            config = write_catalog_inputs(model, prompts * 8, folder, args, 1)
            scaling = {n: 0.0 for n in ranks}
            for _ in range(args.repeats):
                for n in ranks:
                    scaling[n] = max(scaling[n], ranks_rate(config, n))
    hours = 1_000_000 / ours / 3600
    from galaxy_hpc.train.metrics import peak_flops

    peak = peak_flops(device, precision) if on_gpu else None
    mfu = ours * flop / peak if peak else None
    report = {"device": device, "model": args.model or shape, "size": args.size,
              "steps": args.steps, "sampler": "dpm_solver++", "guidance_scale": 7.5,
              "images": args.num, "batch": args.batch, "torch": torch.__version__,
              "threads": None if on_gpu else args.threads, "repeats": args.repeats,
              "load_average": os.getloadavg()[0],
              "reference_img_per_s": reference, "galaxy_hpc_img_per_s": ours,
              "galaxy_hpc_precision": precision, "ratio": ours / reference,
              "reference_batched_img_per_s": batched, "ratio_batched": ours / batched,
              "gflop_per_image": flop / 1e9, "mfu": mfu,
              "ranks_img_per_s": scaling, "hours_per_million_per_process": hours}
    if args.json:
        print(json.dumps(report))
        return 0
    unit = "GPU" if on_gpu else "process"
    threads = "" if on_gpu else f"; {args.threads} thread(s) per process"
    print(f"device {device}{threads}; model {report['model']}; {args.size} px; DPM-Solver++ "
          f"{args.steps} steps; guidance 7.5; {args.num} images, best of {args.repeats}; "
          f"load average {report['load_average']:.1f}; torch {torch.__version__}")
    print(f"  diffusers, one prompt per call (fp32):             {reference:8.2f} img/s")
    print(f"  diffusers, {args.batch} prompts per call ({precision}):          "
          f"{batched:8.2f} img/s")
    mfu_text = f"; MFU {mfu:.1%}" if mfu is not None else ""
    print(f"  galaxy-hpc generate loop (batch {args.batch}, {precision}):        {ours:8.2f} img/s"
          f"   x{ours / reference:.2f} one prompt, x{ours / batched:.2f} batched "
          f"(target >= 1.5x; {flop / 1e9:.1f} GFLOP/image{mfu_text})")
    for n, rate in scaling.items():
        base = scaling[min(scaling)]
        print(f"  galaxy-hpc generate, mpiexec -n {n} (1 thread each): {rate:8.2f} img/s"
              f"   x{rate / base:.2f} vs {min(scaling)} rank(s), {rate / n:.2f} per rank")
    print(f"  1,000,000 objects at {ours:.2f} img/s: {hours:,.0f} {unit}-hours")
    return 0


if __name__ == "__main__":
    sys.exit(main())
