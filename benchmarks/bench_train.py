"""Training throughput: galaxy-hpc's SD training step against a plain reference step.

    .venv/bin/python benchmarks/bench_train.py                    # CPU: a small SD-shaped UNet
    .venv/bin/python benchmarks/bench_train.py --shape sd15 --resolution 256 512   # a GPU

Both steps train the same UNet on the same batch (random latents and text
embeddings: VAE and text encoding are left out of both) in one run:
- reference: diffusers' UNet2DConditionModel with default settings (fp32,
  default attention), torch AdamW, MSE on epsilon, backward, step;
- galaxy-hpc: the SD family's training module inside the DeepSpeed engine the
  training loop builds, with the loop's defaults for the device (bf16 and
  channels-last and fused AdamW on GPU; fp32 on CPU), optionally torch.compile.
Prints images/s for both, the ratio, and on GPUs the MFU: FLOP per image
counted with torch's FlopCounterMode (forward + backward), over the device's
dense peak for the precision used (A100 bf16 312 TFLOP/s, H100 989).
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


def reference(shape, resolution, batch, steps, device):
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
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    seconds = time_steps(step, 2, steps, device)
    return seconds, flop_per_image(lambda: step(), batch)


def galaxy_hpc_step(shape, resolution, batch, steps, device, compile_unet: bool):
    """The SD family's module in the DeepSpeed engine the loop builds."""
    from diffusers import DDPMScheduler

    from galaxy_hpc.models.sd.family import SDTrainModule
    from hpc.zero import ZeroConfig, build_engine

    precision = "bf16" if device.type == "cuda" else "fp32"
    unet = make_unet(shape, resolution).to(device)
    if device.type == "cuda":
        unet.to(memory_format=torch.channels_last)
    if compile_unet:
        unet.compile()
    module = SDTrainModule(unet, None, DDPMScheduler(num_train_timesteps=1000),
                           prediction_type="epsilon", noise_offset=0.0, snr_gamma=None)
    optimizer = torch.optim.AdamW(unet.parameters(), lr=1e-5, fused=device.type == "cuda")
    engine = build_engine(module, optimizer=optimizer, lr_scheduler=None,
                          cfg=ZeroConfig(stage=0, precision=precision), micro_batch_size=batch)
    latents, context = make_batch(shape, resolution, batch, device)
    batch_dict = {"latents": latents, "encoder_hidden_states": context}

    def step():
        loss = engine(batch_dict)
        engine.backward(loss)
        engine.step()

    seconds = time_steps(step, 3 if compile_unet else 2, steps, device)
    return seconds, flop_per_image(step, batch), precision


def flop_per_image(step, batch: int) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        step()
    return counter.get_total_flops() / batch


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shape", choices=sorted(SHAPES), default=None,
                        help="UNet shape (default: sd15 on a GPU, small on CPU)")
    parser.add_argument("--resolution", type=int, nargs="+", default=None,
                        help="image sides in pixels (default: 256 512 on GPU, 128 on CPU)")
    parser.add_argument("--batch", type=int, default=None, help="images per step")
    parser.add_argument("--steps", type=int, default=None, help="timed steps")
    parser.add_argument("--compile", action="store_true", help="torch.compile our UNet")
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
    name = torch.cuda.get_device_name() if on_gpu else f"CPU ({os.cpu_count()} cores)"
    init_distributed(resolve_env(cuda_available=on_gpu))
    try:
        print(f"device {name}; UNet shape {shape}; batch {batch}; {steps} timed steps; "
              f"torch {torch.__version__}")
        print(f"{'px':>5} {'reference img/s':>16} {'galaxy-hpc img/s':>17} {'ratio':>6} "
              f"{'MFU ref':>8} {'MFU ours':>9}  precision")
        for resolution in resolutions:
            ref_s, ref_flop = reference(shape, resolution, batch, steps, device)
            ours_s, ours_flop, precision = galaxy_hpc_step(shape, resolution, batch, steps, device,
                                                           args.compile)
            ref_rate, ours_rate = batch / ref_s, batch / ours_s
            ref_peak, ours_peak = peak_flops(name, "fp32"), peak_flops(name, precision)
            mfu = [f"{r * f / p:.1%}" if p else "-" for r, f, p in
                   ((ref_rate, ref_flop, ref_peak), (ours_rate, ours_flop, ours_peak))]
            print(f"{resolution:>5} {ref_rate:>16.2f} {ours_rate:>17.2f} {ours_rate / ref_rate:>6.2f} "
                  f"{mfu[0]:>8} {mfu[1]:>9}  ref fp32, ours {precision}; "
                  f"{ours_flop / 1e9:.1f} GFLOP/image")
            if on_gpu:
                torch.cuda.empty_cache()
    finally:
        destroy_distributed()
    return 0


if __name__ == "__main__":
    sys.exit(main())
