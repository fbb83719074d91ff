"""The suite's real-layout case: folders laid out as users have them (SD-1.5's
model_index.json, unet/, vae/, text_encoder/, tokenizer/ vocab.json + merges.txt,
PNDM scheduler/; dinov2's config.json + model.safetensors + preprocessor_config.json),
narrow so that CI runs them, passed as `model.pretrained_model_name_or_path` and
`model.backbone` exactly as a user passes theirs. Under ZeRO-3 the SD parts a run
trains are built partitioned from these folders. `make test-real` runs the same flows
at the published sizes (test_real_sizes.py).
"""

from __future__ import annotations

import pytest
from real_runs import dino_flow, sd_lora_flow, train_2_ranks
from support.third_party import third_party

pytestmark = pytest.mark.mpi


def test_sd_folder_lora_zero3_resume_export_redraw_catalog(galaxy_hpc, mpiexec, sd_small,
                                                           store64, tmp_path):
    result = sd_lora_flow(galaxy_hpc, mpiexec, sd_small, store64, tmp_path)
    assert len(result["memory"]["peak_rss_gb"]) == 2


def test_sd_folder_full_zero3_partitioned_build_exports_the_ema(galaxy_hpc, mpiexec, sd_small,
                                                                store64, tmp_path):
    """Full fine-tune of UNet + text encoder from the folder, both built partitioned,
    with EMA: diffusers redraws the grid from the exported pipeline."""
    out = tmp_path / "full"
    result = train_2_ranks(galaxy_hpc, mpiexec, "sd_full.yaml", out, f"data.store={store64}",
                           f"model.pretrained_model_name_or_path={sd_small}", "run.max_steps=2",
                           "run.micro_batch_size=2", "run.num_samples=2", "model.sample_steps=2",
                           "zero.precision=fp32", "ema.decay=0.5")
    assert result["memory"]["trainable"] > 0
    redraw = third_party("redraw_sd.py", out, "pipeline", timeout=1200)
    assert redraw["max_diff"] <= 1, redraw


def test_dinov2_folder_head_then_full_on_two_ranks(galaxy_hpc, mpiexec, dino_small, store64,
                                                   tmp_path):
    head, full = dino_flow(galaxy_hpc, mpiexec, dino_small, store64, tmp_path, input_size=56)
    assert full["memory"]["trainable"] > head["memory"]["trainable"]
