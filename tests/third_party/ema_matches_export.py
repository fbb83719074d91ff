"""Compare exported weights with the EMA shadow in a run's last checkpoint, torch alone.

    python ema_matches_export.py RUN_DIR PREFIX=FILE.safetensors [PREFIX=FILE ...]
                                 [--as bfloat16]

The checkpoint's `extra-rank-00000.pt` holds the EMA state the loop kept: parameter
names (of the trained module) and their float32 averages. Each PREFIX=FILE says that
the trained module's parameters under PREFIX were exported into FILE without the
prefix (e.g. `generator.=RUN/generator/generator.safetensors`; an empty prefix maps
names as they are). Prints one JSON line: per file, how many averaged tensors it holds
and the largest absolute difference from the shadow; and the same against the live
weights in the checkpoint's module states, so that a test can tell the two apart.

Under ZeRO-3 each rank's file holds its partition of every tensor (a contiguous slice
of the flattened tensor, the last one padded); they are joined in rank order. A run
that trained in bf16 under ZeRO-3 exports the average as its partitions held it,
rounded to bf16: `--as bfloat16` compares with that rounding.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file


def main() -> None:
    args = sys.argv[1:]
    rounding = None
    if "--as" in args:
        at = args.index("--as")
        rounding = getattr(torch, args[at + 1])
        del args[at:at + 2]
    run, pairs = Path(args[0]), [arg.split("=", 1) for arg in args[1:]]
    checkpoint = sorted((run / "checkpoints").glob("checkpoint-*"))[-1]
    ranks = [torch.load(path, weights_only=False)["ema"]
             for path in sorted(checkpoint.glob("extra-rank-*.pt"))]
    ema = ranks[0]
    assert ema is not None and ema["names"], "no EMA state with parameter names"
    if ema["partitioned"]:
        shadow = {name: torch.cat([r["shadow"][k].flatten() for r in ranks])
                  for k, name in enumerate(ema["names"])}
    else:
        shadow = dict(zip(ema["names"], ema["shadow"]))
    # The live weights, whole under stages 0-2 (ZeRO-3 keeps them in its optimizer
    # partitions only: then there is nothing whole to compare with).
    live = ({} if ema["partitioned"] else
            torch.load(checkpoint / "mp_rank_00_model_states.pt", weights_only=False)["module"])
    found = {}
    for prefix, file in pairs:
        exported = load_file(file)
        compared = ema_diff = live_diff = 0.0
        for name, average in shadow.items():
            if not name.startswith(prefix):
                continue
            key = name[len(prefix):]
            if key not in exported:  # a LoRA file renames keys: compared elsewhere
                continue
            tensor = exported[key].float()
            average = average.flatten()[:tensor.numel()].view(tensor.shape)
            if rounding is not None:
                average = average.to(rounding)
            ema_diff = max(ema_diff, float((tensor - average.float()).abs().max()))
            if name in live:
                live_diff = max(live_diff, float((tensor - live[name].float()).abs().max()))
            compared += 1
        found[file] = {"tensors": int(compared), "max_diff_ema": ema_diff,
                       "max_diff_live": live_diff if live else None}
    assert not any(name.split(".")[0] in ("galaxy_hpc", "hpc") for name in sys.modules)
    print(json.dumps({"checkpoint": str(checkpoint), "num_updates": ema["num_updates"],
                      "files": found}))


if __name__ == "__main__":
    main()
