"""`galaxy-hpc caption --predictor RUN STORE`: morphology captions for a store without
them, from a trained vote predictor.

Any survey cutout can get GalaxySD-style captions this way: the predictor (a train_dino
run, its predictor folder, or any VotePredictor) gives each galaxy's 37 per-question GZ2
fractions and the captioner (galaxy_hpc.data.captions) turns them into a caption. The
new store (the shared job: caption_job.py) holds the caption column and the predicted
fractions as `pred_<gz2 column>` columns, from which captions can be remade with other
thresholds without the model.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from galaxy_hpc.cli.caption_job import Captioning, run_caption_job


def predictor_captioning(args: Any, source: Any, env: Any) -> Captioning:
    """Load the predictor on this rank and say what it adds to each shard."""
    from galaxy_hpc.cli.predict_cmd import _device, predictor_folder
    from galaxy_hpc.data.captions import CaptionConfig, Captioner
    from galaxy_hpc.data.columns import predicted_info
    from galaxy_hpc.data.gz2 import ANSWERS, column_name
    from galaxy_hpc.generate.hashing import path_sha256
    from galaxy_hpc.models.store_predictions import predict_store
    from galaxy_hpc.models.vote_predictor import load_vote_predictor

    config = CaptionConfig(survey=args.survey, threshold=args.threshold,
                           odd_threshold=args.odd_threshold)
    captioner = Captioner(config)
    folder = predictor_folder(args.predictor)
    predictor = load_vote_predictor(folder, device=_device(args.device, env.local_rank))
    predicted = list(getattr(predictor, "answer_columns", None)
                     or [column_name(a) for a in ANSWERS])
    column, prefix = args.column, args.prefix

    def caption(source: Any, first: int, stop: int) -> dict[str, np.ndarray]:
        fractions = predict_store(predictor, source, start=first, stop=stop,
                                  batch_size=args.batch_size)
        return {column: np.array(captioner.captions(fractions), dtype=object),
                **{prefix + name: fractions[:, k] for k, name in enumerate(predicted)}}

    info = {column: {"description": "GalaxySD-style caption of predicted GZ2 vote shares"}}
    info.update({prefix + c: predicted_info(c).as_dict() for c in predicted})
    return Captioning(
        what="galaxy-hpc caption --predictor",
        columns={column: "str", **{prefix + c: "float32" for c in predicted}},
        column_info=info,
        fingerprint=lambda: {
            "predictor": path_sha256(folder),
            "caption": {"survey": config.survey, "threshold": config.threshold,
                        "odd_threshold": config.odd_threshold},
            "column": column, "prefix": prefix},
        caption=caption, provenance={"predictor": str(folder)})


def run_caption_store(args: Any) -> dict[str, Any]:
    """Run on every rank (or alone); every rank returns the same summary."""
    return run_caption_job(args, lambda source, env: predictor_captioning(args, source, env))
