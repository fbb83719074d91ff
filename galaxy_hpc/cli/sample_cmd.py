"""`galaxy-hpc sample MODEL [--prompt P | --conditions k=v,...] --n 4 --seed S --out grid.png`:
a one-off look at any model the toolkit exports, without writing a catalog config.

MODEL is a folder a training run exports (an SD or LDM pipeline folder, a LoRA folder, a
GAN generator folder); its kind is read off its files. `--base BASE` adds a second row
drawn from BASE with the same seeds: a LoRA over its base, or a fine-tune against the
pipeline it started from. Image k is object k of a catalog with the same seed
(galaxy_hpc.generate.ondemand), so a galaxy worth keeping can be made again there.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from galaxy_hpc.cli.batch import add_command, print_result
from galaxy_hpc.models.samplers import SAMPLERS


@dataclass
class SampleResult:
    out: str
    model: str
    kind: str
    rows: list[str]
    seeds: list[int] = field(default_factory=list)

    def summary(self) -> str:
        shown = " vs ".join(self.rows)
        return f"{len(self.seeds)} image(s) a row ({shown}) written to {self.out}"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = add_command(subparsers, "sample", run=run, distributed=False,
                         help="a grid of a few images from a trained model", description=__doc__)
    parser.add_argument("model", metavar="MODEL", help="an exported model folder")
    parser.add_argument("--base", help="the base pipeline: a LoRA's base, or a row to compare")
    parser.add_argument("--kind", help="the generator kind when it cannot be read off the files")
    parser.add_argument("--prompt", help="the caption (text models)")
    parser.add_argument("--conditions", metavar="K=V,...",
                        help="the numbers (vector models), e.g. redshift=0.1,log_stellar_mass=10.5")
    parser.add_argument("--n", type=int, default=4, help="images a row (default 4)")
    parser.add_argument("--seed", type=int, default=0, help="catalog seed (default 0)")
    parser.add_argument("--steps", type=int, help="sampler steps (default: 25)")
    parser.add_argument("--guidance", type=float, help="guidance scale (default: 7.5)")
    parser.add_argument("--sampler", default="dpm_solver++",
                        help=f"one of {', '.join(SAMPLERS)}")
    parser.add_argument("--size", type=int, help="image side in pixels (SD only)")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--out", required=True, help="the grid, a .png")


def parse_conditions(text: str | None) -> dict[str, float] | None:
    if not text:
        return None
    out: dict[str, float] = {}
    for part in text.split(","):
        name, sep, value = part.partition("=")
        try:
            if not sep or not name.strip():
                raise ValueError
            out[name.strip()] = float(value)
        except ValueError:
            raise ValueError(f"--conditions: {part!r} is not NAME=NUMBER") from None
    return out


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from galaxy_hpc.generate.config import ModelSection, RuntimeSection, SamplerSection
    from galaxy_hpc.generate.ondemand import DrawRequest, load_ondemand, model_section_for
    from galaxy_hpc.train.samples import write_grid
    from hpc.files import check_writable

    if not args.out.lower().endswith(".png"):
        raise ValueError(f"--out {args.out}: the grid is a .png")
    if args.n < 1:
        raise ValueError(f"--n must be >= 1, got {args.n}")
    check_writable(args.out, "the grid")
    section = model_section_for(args.model, base=args.base, kind=args.kind)
    sampler = SamplerSection(name=args.sampler, **({"steps": args.steps} if args.steps else {}),
                             **({"guidance_scale": args.guidance} if args.guidance else {}))
    runtime = RuntimeSection(device=args.device)
    request = DrawRequest(n=args.n, seed=args.seed, prompt=args.prompt,
                          conditions=parse_conditions(args.conditions), size=args.size)
    sections: list[tuple[str, ModelSection]] = []
    if args.base:
        sections.append(("base", model_section_for(args.base)))
    sections.append((section.kind, section))
    rows: list[Any] = []
    for _, part in sections:
        model = load_ondemand(part, sampler, runtime)
        model.check(request)
        rows.append(model.draw([request])[0])
        del model
    images = np.concatenate([row.display for row in rows])
    write_grid(images, Path(args.out), columns=args.n)
    result = SampleResult(out=args.out, model=args.model, kind=section.kind,
                          rows=[name for name, _ in sections],
                          seeds=[int(s) for s in rows[0].seeds])
    print_result(args, result)
    return 0
