"""Training throughput: galaxy-hpc's SD training step against a plain reference step.

    .venv/bin/python benchmarks/bench_train.py                    # CPU: a small SD-shaped UNet
    .venv/bin/python benchmarks/bench_train.py --shape sd15 --resolution 256 512   # a GPU

Both steps train the same UNet on the same batch (random latents and text
embeddings: VAE and text encoding are left out of both) in one run:
- reference: diffusers' UNet2DConditionModel with default settings (fp32,
  default attention), torch AdamW, MSE on epsilon, backward, gradients clipped to norm
  1.0 (diffusers' train_text_to_image default, max_grad_norm=1.0, as our loop's
  zero.gradient_clipping), step;
- galaxy-hpc: the SD family's training module inside the DeepSpeed engine the
  training loop builds, with the loop's defaults for the device (bf16 and
  channels-last and fused AdamW on GPU; fp32 on CPU: galaxy_hpc/train/optimizer.py),
  optionally torch.compile. Alone, the engine skips the gradient all-reduce over
  one rank (hpc/zero.py), which had cost a third of the backward pass here.
Prints images/s for both, the ratio, and on GPUs the MFU: FLOP per image
counted with torch's FlopCounterMode (forward + backward), over the device's
dense peak for the precision used (A100 bf16 312 TFLOP/s, H100 989).

Then a whole training step as the loop runs it, twice on the same data: a batch read
from a synthetic store, the SD family's `prepare_batch`, the engine's forward, backward
and step; once encoding every batch (VAE encode of pixels flipped/rotated by right
angles, text encoder on the captions), once from a latent store `galaxy-hpc encode`
wrote (a sample of the cached distribution, cached caption states). The model is
write_sd_folder's (shape small on CPU, sd-1.5 on GPU: real VAE and text encoder classes),
LoRA as the sd_lora recipe trains; the encode itself is timed too, not counted in steps.
By default only with the CPU shape on CPU (`--whole-step yes` elsewhere): gpu_check.sh
times the UNet step alone within its budget. Pairs are timed alternately, best of
`--rounds`, since a shared CPU's load comes and goes.
The whole step is timed at the CPU batch (4) and at the sd_lora recipe's micro batch
(16): per-op overheads of the narrow CPU UNet weigh more at 4.
Targets: our step >= 1.0x the reference; cached latents >= 2x the encode-every-step loop.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import torch

SHAPES = {
    # Stable Diffusion 1.5's UNet (860 M parameters).
    "sd15": dict(block_out_channels=(320, 640, 1280, 1280), cross_attention_dim=768,
                 layers_per_block=2, attention_head_dim=8, context_tokens=77),
    # The same layout at 1/5 of the width: something a laptop CPU steps through.
    "small": dict(block_out_channels=(64, 128, 256, 256), cross_attention_dim=128,
                  layers_per_block=1, attention_head_dim=8, context_tokens=16),
    # Smallest of the layout: proves the benchmark runs (gpu_check.sh --dry-run), no figure.
    "tiny": dict(block_out_channels=(32, 32, 64, 64), cross_attention_dim=32,
                 layers_per_block=1, attention_head_dim=8, context_tokens=8),
}


def make_unet(shape: str, resolution: int):
    from diffusers import UNet2DConditionModel

    spec = dict(SHAPES[shape])
    spec.pop("context_tokens")
    torch.manual_seed(0)
    return UNet2DConditionModel(sample_size=resolution // 8, in_channels=4, out_channels=4,
                                norm_num_groups=32, **spec)


def make_batch(shape: str, resolution: int, batch: int, device: torch.device):
    generator = torch.Generator().manual_seed(1)
    latents = torch.randn(batch, 4, resolution // 8, resolution // 8, generator=generator)
    context = torch.randn(batch, SHAPES[shape]["context_tokens"],
                          SHAPES[shape]["cross_attention_dim"], generator=generator)
    return latents.to(device), context.to(device)


def time_steps(step, warmup: int, steps: int, device: torch.device) -> float:
    for _ in range(warmup):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / steps


def paired(first, second, warmup: int, steps: int, rounds: int,
           device: torch.device) -> tuple[float, float]:
    """Seconds per step of two step functions, each the best of `rounds` runs of `steps`,
    alternating: on a machine shared with other jobs, load that comes and goes then hits
    both alike, and the best round is the least disturbed."""
    for step in (first, second):
        for _ in range(warmup):
            step()
    best = [float("inf"), float("inf")]
    for _ in range(rounds):
        for k, step in enumerate((first, second)):
            best[k] = min(best[k], time_steps(step, 0, steps, device))
    return best[0], best[1]


def reference(shape, resolution, batch, device):
    """diffusers' UNet as it comes, fp32, plain torch training step."""
    from diffusers import DDPMScheduler

    unet = make_unet(shape, resolution).to(device).train()
    optimizer = torch.optim.AdamW(unet.parameters(), lr=1e-5)
    scheduler = DDPMScheduler(num_train_timesteps=1000)
    latents, context = make_batch(shape, resolution, batch, device)

    def step():
        noise = torch.randn_like(latents)
        t = torch.randint(0, 1000, (batch,), device=device)
        noisy = scheduler.add_noise(latents, noise, t)
        loss = torch.nn.functional.mse_loss(unet(noisy, t, context).sample, noise)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(unet.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step, flop_per_image(step, batch)


def galaxy_hpc_step(shape, resolution, batch, device, compile_unet: bool):
    """The SD family's module in the DeepSpeed engine the loop builds."""
    from diffusers import DDPMScheduler

    from galaxy_hpc.models.sd.family import SDTrainModule
    from galaxy_hpc.train.config import OptimSection
    from galaxy_hpc.train.optimizer import build_adamw
    from hpc.zero import ZeroConfig, build_engine

    precision = "bf16" if device.type == "cuda" else "fp32"
    unet = make_unet(shape, resolution).to(device)
    if device.type == "cuda":
        unet.to(memory_format=torch.channels_last)
    if compile_unet:
        unet.compile()
    module = SDTrainModule(unet, None, DDPMScheduler(num_train_timesteps=1000),
                           prediction_type="epsilon", noise_offset=0.0, snr_gamma=None)
    optimizer = build_adamw(unet.parameters(), OptimSection(lr=1e-5, weight_decay=0.01),
                            device=device)
    engine = build_engine(module, optimizer=optimizer, lr_scheduler=None,
                          cfg=ZeroConfig(stage=0, precision=precision), micro_batch_size=batch)
    latents, context = make_batch(shape, resolution, batch, device)
    batch_dict = {"latents": latents, "encoder_hidden_states": context}

    def step():
        loss = engine(batch_dict)
        engine.backward(loss)
        engine.step()

    return step, flop_per_image(step, batch), precision


def whole_steps(folder, resolution, batch, steps, rounds, device, workdir) -> dict[str, float]:
    """Images/s of whole training steps, encoding every step and from cached latents, and
    the encode job's own rate (images x 8 transforms per second)."""
    import galaxy_hpc.registry  # noqa: F401  (the train_sd kind)
    from galaxy_hpc.data.augment import GalaxyAugment
    from galaxy_hpc.data.dataset import StoreDataset
    from galaxy_hpc.data.synth.config import SynthConfig
    from galaxy_hpc.data.synth.job import SynthJobConfig, run_synth
    from galaxy_hpc.encode.job import EncodeConfig, run_encode
    from galaxy_hpc.models.contract import DataFacts
    from galaxy_hpc.models.sd.family import SDFamily
    from galaxy_hpc.train.optimizer import build_adamw
    from hpc.config import from_dict, kind_class
    from hpc.zero import ZeroConfig, build_engine

    workdir.mkdir(parents=True, exist_ok=True)
    store, latents = workdir / f"store{resolution}.zarr", workdir / f"latents{resolution}.zarr"
    count = batch * (steps + 2)
    run_synth(SynthJobConfig(out=str(store), num_galaxies=count, seed=0, shard_size=count,
                             galaxy=SynthConfig(output="uint8", size=resolution)),
              progress=False)
    start = time.perf_counter()
    run_encode(EncodeConfig(store=str(store), model=str(folder), out=str(latents),
                            device=device.type), progress=False)
    encode_rate = count / (time.perf_counter() - start)
    precision = "bf16" if device.type == "cuda" else "fp32"
    loops = []
    for cached in (False, True):
        data = {"store": str(store), "caption_column": "caption", "num_workers": 0,
                "shuffle_caption_tags": False, "augment": False,
                "latents": str(latents) if cached else ""}
        cfg = from_dict(kind_class("train_sd"), {
            "run": {"output_dir": str(workdir / "run"), "micro_batch_size": batch},
            "data": data, "zero": {"stage": 0, "precision": precision},
            "model": {"pretrained_model_name_or_path": str(folder), "method": "lora"}},
            source="bench_train")
        augment = None if cached else GalaxyAugment(rotation="right_angles")
        dataset = StoreDataset(cfg.data.store, batch_size=batch, drop_last=True,
                               augment=augment, caption_column="caption",
                               shuffle_caption_tags=False, caption_dropout=0.1)
        torch.manual_seed(0)
        family = SDFamily(cfg, data=DataFacts.of(dataset, cfg.data), device=device,
                          dtype=torch.bfloat16 if precision == "bf16" else torch.float32)
        module = family.build()
        optimizer = build_adamw(family.parameter_groups(module), cfg.optim, device=device)
        engine = build_engine(module, optimizer=optimizer, lr_scheduler=None,
                              cfg=ZeroConfig(stage=0, precision=precision),
                              micro_batch_size=batch)
        loops.append(_loop_step(dataset, family, engine))
    slow, fast = paired(*loops, 2, steps, rounds, device)
    return {"encode every step": batch / slow, "cached latents": batch / fast,
            "encode job (images/s)": encode_rate}


def _loop_step(dataset, family, engine):
    """One step as the training loop takes it: next batch, prepare_batch, the engine."""
    def forever():
        while True:
            yield from dataset.batches()

    batches = forever()

    def step():
        prepared = family.prepare_batch(next(batches))
        loss = engine(prepared)
        engine.backward(loss)
        engine.step()

    return step


def flop_per_image(step, batch: int) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        step()
    return counter.get_total_flops() / batch


def cached_latents_bound(shape: str, resolution: int) -> float:
    """The most caching latents can gain on a LoRA step by FLOP count: (UNet forward +
    backward to the activations + VAE encode + text encode) / (UNet forward + backward),
    counted on the meta device (no memory, no time) for write_sd_folder's shape."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from torch.utils.flop_counter import FlopCounterMode
    from transformers import CLIPTextConfig, CLIPTextModel

    from galaxy_hpc.models.published import sd_configs

    def flops(work) -> float:
        counter = FlopCounterMode(display=False)
        with counter:
            work()
        return counter.get_total_flops()

    cfg = sd_configs(shape)
    with torch.device("meta"):
        unet = UNet2DConditionModel(**cfg["unet"]).requires_grad_(False)
        vae = AutoencoderKL(**cfg["vae"])
        text = CLIPTextModel(CLIPTextConfig(**cfg["text_encoder"]))
        latents = torch.randn(1, 4, resolution // 8, resolution // 8, requires_grad=True)
        context = torch.randn(1, 77, cfg["unet"]["cross_attention_dim"])
        image = torch.randn(1, 3, resolution, resolution)
        ids = torch.zeros(1, 77, dtype=torch.long)
        step = flops(lambda: unet(latents, torch.tensor([500]), context).sample.sum().backward())
    encode = flops(lambda: vae.encode(image).latent_dist.mean) + flops(lambda: text(ids)[0])
    return (step + encode) / step


def whole_step_table(args, on_gpu, resolutions, batches, steps, device) -> None:
    import tempfile
    from pathlib import Path

    from galaxy_hpc.models.published import write_sd_folder

    shape = "sd-1.5" if on_gpu else "small"
    with tempfile.TemporaryDirectory(prefix="bench_train-") as tmp:
        folder = write_sd_folder(Path(tmp) / "sd", shape=shape)
        print(f"\nwhole training step (read, prepare_batch, LoRA step), write_sd_folder "
              f"{shape}, {steps} timed steps")
        print(f"{'px':>5} {'batch':>6} {'encode/step img/s':>18} {'cached img/s':>13} "
              f"{'ratio':>6} {'encode job img/s':>17}")
        for resolution in resolutions:
            for batch in batches:
                rates = whole_steps(folder, resolution, batch, steps, args.rounds, device,
                                    Path(tmp) / f"b{batch}")
                slow, fast = rates["encode every step"], rates["cached latents"]
                print(f"{resolution:>5} {batch:>6} {slow:>18.2f} {fast:>13.2f} "
                      f"{fast / slow:>6.2f} {rates['encode job (images/s)']:>17.2f}")
        print("target: cached >= 2.0x encode/step (at the sd_lora recipe's micro batch, 16); "
              "the encode job's images/s count the 8 transforms of each image as one image, "
              "model loading included")
        bounds = [f"{shape} {px} px {cached_latents_bound(shape, px):.2f}x"
                  for px in resolutions]
        if shape != "sd-1.5":
            bounds += [f"sd-1.5 {px} px {cached_latents_bound('sd-1.5', px):.2f}x"
                       for px in (256, 512)]
        print("the most caching can gain on a LoRA step, by FLOP count (UNet forward + "
              "backward against that plus VAE and text encoding): " + ", ".join(bounds))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shape", choices=sorted(SHAPES), default=None,
                        help="UNet shape (default: sd15 on a GPU, small on CPU)")
    parser.add_argument("--resolution", type=int, nargs="+", default=None,
                        help="image sides in pixels (default: 256 512 on GPU, 128 on CPU)")
    parser.add_argument("--batch", type=int, default=None, help="images per step")
    parser.add_argument("--steps", type=int, default=None, help="timed steps")
    parser.add_argument("--whole-batch", type=int, nargs="+", default=None,
                        help="batches of the whole-step table (default: --batch's and 16, "
                        "configs/train/sd_lora.yaml's micro_batch_size)")
    parser.add_argument("--compile", action="store_true", help="torch.compile our UNet")
    parser.add_argument("--whole-step", choices=["auto", "yes", "no"], default="auto",
                        help="also time whole loop steps with and without cached latents "
                        "(auto: with the CPU shape, small, on CPU; gpu_check.sh times the UNet "
                        "step alone within its budget)")
    parser.add_argument("--rounds", type=int, default=None,
                        help="alternating timed rounds per pair, the best of each counts "
                        "(default 3 on CPU, shared and noisy; 1 on a GPU or with --steps)")
    args = parser.parse_args()
    os.environ.setdefault("DS_ACCELERATOR", "cuda" if torch.cuda.is_available() else "cpu")
    from galaxy_hpc.train.metrics import peak_flops
    from hpc.dist import destroy_distributed, init_distributed, resolve_env

    on_gpu = torch.cuda.is_available()
    device = torch.device("cuda" if on_gpu else "cpu")
    shape = args.shape or ("sd15" if on_gpu else "small")
    resolutions = args.resolution or ([256, 512] if on_gpu else [128])
    batch = args.batch or (16 if on_gpu else 4)
    steps = args.steps or (20 if on_gpu else 5)
    args.rounds = args.rounds or (3 if not on_gpu and args.steps is None else 1)
    name = torch.cuda.get_device_name() if on_gpu else f"CPU ({os.cpu_count()} cores)"
    init_distributed(resolve_env(cuda_available=on_gpu))
    try:
        print(f"device {name}; UNet shape {shape}; batch {batch}; best of {args.rounds} "
              f"alternating rounds of {steps} steps; "
              f"torch {torch.__version__}")
        print(f"{'px':>5} {'reference img/s':>16} {'galaxy-hpc img/s':>17} {'ratio':>6} "
              f"{'MFU ref':>8} {'MFU ours':>9}  precision")
        for resolution in resolutions:
            ref_step, ref_flop = reference(shape, resolution, batch, device)
            ours_step, ours_flop, precision = galaxy_hpc_step(shape, resolution, batch, device,
                                                              args.compile)
            ref_s, ours_s = paired(ref_step, ours_step, 3 if args.compile else 2, steps,
                                   args.rounds, device)
            del ref_step, ours_step
            ref_rate, ours_rate = batch / ref_s, batch / ours_s
            ref_peak, ours_peak = peak_flops(name, "fp32"), peak_flops(name, precision)
            mfu = [f"{r * f / p:.1%}" if p else "-" for r, f, p in
                   ((ref_rate, ref_flop, ref_peak), (ours_rate, ours_flop, ours_peak))]
            print(f"{resolution:>5} {ref_rate:>16.2f} {ours_rate:>17.2f} {ours_rate / ref_rate:>6.2f} "
                  f"{mfu[0]:>8} {mfu[1]:>9}  ref fp32, ours {precision}; "
                  f"{ours_flop / 1e9:.1f} GFLOP/image")
            if on_gpu:
                torch.cuda.empty_cache()
        print("target: galaxy-hpc >= 1.0x the reference")
        if args.whole_step == "yes" or (args.whole_step == "auto" and shape == "small"
                                         and not on_gpu):
            whole_batches = args.whole_batch or sorted({batch, 16})
            whole_step_table(args, on_gpu, resolutions, whole_batches, steps, device)
    finally:
        destroy_distributed()
    return 0


if __name__ == "__main__":
    sys.exit(main())
