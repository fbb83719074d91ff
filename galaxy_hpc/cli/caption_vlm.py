"""`galaxy-hpc caption --vlm FOLDER STORE`: captions for a store without them, from a
local vision-language model folder and a prompt (galaxy_hpc.models.vlm_captions), into a
new store by the shared captioning job (caption_job.py).

The model sees each galaxy as the store's pictures show it: uint8 stores as they are,
flux stores through the store's display stretch (the three reddest bands as RGB).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from galaxy_hpc.cli.caption_job import Captioning, run_caption_job

DEFAULT_BATCH_SIZE = 8


def vlm_captioning(args: Any, source: Any, env: Any) -> Captioning:
    """Load the model on this rank and say what it adds to each shard."""
    from galaxy_hpc.cli.predict_cmd import _device
    from galaxy_hpc.data.stretch import stretch_for_store
    from galaxy_hpc.generate.hashing import path_sha256
    from galaxy_hpc.models.display import to_rgb
    from galaxy_hpc.models.vlm_captions import VlmCaptionConfig, VlmCaptioner
    from hpc.hub import resolve_weights

    config = VlmCaptionConfig(prompt=args.prompt, max_new_tokens=args.max_new_tokens)
    folder = Path(resolve_weights(args.vlm, field="--vlm"))
    captioner = VlmCaptioner(folder, config, device=_device(args.device, env.local_rank))
    stretch = None if source.spec.image_dtype == "uint8" else stretch_for_store(source)
    column, batch_size = args.column, args.batch_size

    def caption(source: Any, first: int, stop: int) -> dict[str, np.ndarray]:
        captions: list[str] = []
        for lo in range(first, stop, batch_size):
            rgb = to_rgb(source.read_images(lo, min(lo + batch_size, stop)), stretch)
            captions += captioner.captions(rgb)
        return {column: np.array(captions, dtype=object)}

    return Captioning(
        what="galaxy-hpc caption --vlm",
        columns={column: "str"},
        column_info={column: {"description": f"caption by the vision-language model "
                                             f"{folder.name}, asked: {config.prompt}"}},
        fingerprint=lambda: {"vlm": path_sha256(folder), "prompt": config.prompt,
                             "max_new_tokens": config.max_new_tokens, "column": column},
        caption=caption,
        provenance={"vlm": str(folder), "prompt": config.prompt,
                    "max_new_tokens": config.max_new_tokens})


def run_caption_vlm(args: Any) -> dict[str, Any]:
    """Run on every rank (or alone); every rank returns the same summary."""
    return run_caption_job(args, lambda source, env: vlm_captioning(args, source, env))
