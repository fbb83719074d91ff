"""Compare exported weights with the EMA shadow in a run's last checkpoint, torch alone.

    python ema_matches_export.py RUN_DIR PREFIX=FILE.safetensors [PREFIX=FILE ...]

The checkpoint's `extra-rank-00000.pt` holds the EMA state the loop kept: parameter
names (of the trained module) and their float32 averages. Each PREFIX=FILE says that
the trained module's parameters under PREFIX were exported into FILE without the
prefix (e.g. `generator.=RUN/generator/generator.safetensors`; an empty prefix maps
names as they are). Prints one JSON line: per file, how many averaged tensors it holds
and the largest absolute difference from the shadow; and the same against the live
weights in the checkpoint's module states, so that a test can tell the two apart.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file


def main() -> None:
    run, pairs = Path(sys.argv[1]), [arg.split("=", 1) for arg in sys.argv[2:]]
    checkpoint = sorted((run / "checkpoints").glob("checkpoint-*"))[-1]
    extra = torch.load(checkpoint / "extra-rank-00000.pt", weights_only=False)
    ema = extra["ema"]
    assert ema is not None and ema["names"] and not ema["partitioned"], "no whole EMA shadow"
    shadow = dict(zip(ema["names"], ema["shadow"]))
    live = torch.load(next(checkpoint.glob("mp_rank_00_model_states.pt")),
                      weights_only=False)["module"]
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
            ema_diff = max(ema_diff, float((tensor - average.float().view(tensor.shape)).abs().max()))
            live_diff = max(live_diff, float((tensor - live[name].float()).abs().max()))
            compared += 1
        found[file] = {"tensors": int(compared), "max_diff_ema": ema_diff,
                       "max_diff_live": live_diff}
    assert not any(name.split(".")[0] in ("galaxy_hpc", "hpc") for name in sys.modules)
    print(json.dumps({"checkpoint": str(checkpoint), "num_updates": ema["num_updates"],
                      "files": found}))


if __name__ == "__main__":
    main()
