"""Redraw a training run's last sample grid from its export with diffusers alone.

    python redraw_sd.py RUN_DIR pipeline|lora

`pipeline`: RUN_DIR/pipeline is a StableDiffusionPipeline folder (full fine-tune).
`lora`: RUN_DIR/base (or --base FOLDER) plus `load_lora_weights(RUN_DIR/lora)`.
The grid RUN_DIR/samples/step-N.png and its recipe step-N.json are what the run drew
from its (EMA) weights. Prints one JSON line: the largest and mean absolute difference
in grey levels between the grid and the redraw.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from diffusers import DPMSolverMultistepScheduler, StableDiffusionPipeline
from PIL import Image


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("run", type=Path)
    parser.add_argument("mode", choices=["pipeline", "lora"])
    parser.add_argument("--base", type=Path)
    parser.add_argument("--dtype", default="float32")
    args = parser.parse_args()
    grids = sorted((args.run / "samples").glob("step-*.png"))
    recipe = json.loads(grids[-1].with_suffix(".json").read_text())
    dtype = getattr(torch, args.dtype)
    if args.mode == "pipeline":
        pipe = StableDiffusionPipeline.from_pretrained(args.run / "pipeline", torch_dtype=dtype)
    else:
        pipe = StableDiffusionPipeline.from_pretrained(args.base or args.run / "base",
                                                       torch_dtype=dtype)
        pipe.load_lora_weights(args.run / "lora")
    assert recipe["scheduler"] == "DPMSolverMultistepScheduler", recipe["scheduler"]
    pipe.scheduler = DPMSolverMultistepScheduler.from_config(
        pipe.scheduler.config, prediction_type=recipe["prediction_type"])
    pipe.set_progress_bar_config(disable=True)
    generator = torch.Generator(device="cpu").manual_seed(recipe["generator"]["seed"])
    images = pipe(recipe["prompts"], num_inference_steps=recipe["num_inference_steps"],
                  guidance_scale=recipe["guidance_scale"], generator=generator,
                  output_type="np").images
    redrawn = (np.clip(images, 0, 1) * 255).round().astype(np.uint8)
    grid = np.asarray(Image.open(grids[-1]).convert("RGB"))
    columns, (count, height, width, _) = recipe["grid_columns"], redrawn.shape
    tiles = np.stack([grid[(k // columns) * height:(k // columns + 1) * height,
                           (k % columns) * width:(k % columns + 1) * width] for k in range(count)])
    diff = np.abs(tiles.astype(np.int16) - redrawn.astype(np.int16))
    assert not any(name.split(".")[0] in ("galaxy_hpc", "hpc") for name in sys.modules)
    print(json.dumps({"grid": str(grids[-1]), "max_diff": int(diff.max()),
                      "mean_diff": float(diff.mean()), "images": count}))


if __name__ == "__main__":
    main()
