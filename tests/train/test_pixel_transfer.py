"""data.pixel_transfer: a uint8 store's batches travel as uint8 and are made floats (and
rotated, by any angle or by right angles) on the rank's device, and training is bit for
bit what the float32 path trains."""

from __future__ import annotations

import json

import pytest
from export_checks import train


@pytest.mark.parametrize("augment", ["data.rotation=any", "data.rotation=right_angles"])
def test_uint8_transfer_trains_exactly_what_float32_trains(galaxy_hpc, synth_store, tmp_path,
                                                           augment):
    from safetensors.torch import load_file

    runs = {}
    for transfer in ("uint8", "float32"):
        out = tmp_path / transfer
        result = train(galaxy_hpc, "sd_lora_tiny.yaml", synth_store, out, "run.max_steps=3",
                       "run.log_every=1", "data.caption_dropout=0", augment,
                       f"data.pixel_transfer={transfer}")
        assert result["pixel_transfer"] == transfer
        losses = [json.loads(line)["loss"]
                  for line in (out / "train_log.jsonl").read_text().splitlines()]
        runs[transfer] = (losses, load_file(out / "lora" / "pytorch_lora_weights.safetensors"))
    (losses, weights), (float_losses, float_weights) = runs["uint8"], runs["float32"]
    assert len(losses) == 3 and losses == float_losses
    assert weights.keys() == float_weights.keys() and weights
    assert all((weights[k] == float_weights[k]).all() for k in weights)

