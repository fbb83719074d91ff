"""hpc.zero: the DeepSpeed JSON a ZeroConfig becomes, and the mistakes it refuses."""

from __future__ import annotations

import pytest

from hpc.zero import ZeroConfig, deepspeed_config


def test_stage3_bf16_config():
    config = deepspeed_config(ZeroConfig(stage=3, precision="bf16", gradient_accumulation_steps=4,
                                         gradient_clipping=0.5, offload_optimizer=True),
                              micro_batch_size=8, on_gpu=True)
    assert config["train_micro_batch_size_per_gpu"] == 8
    assert config["gradient_accumulation_steps"] == 4 and config["gradient_clipping"] == 0.5
    assert config["bf16"] == {"enabled": True} and "fp16" not in config
    zero = config["zero_optimization"]
    assert zero["stage"] == 3 and zero["stage3_gather_16bit_weights_on_model_save"]
    assert zero["offload_optimizer"]["device"] == "cpu" and zero["overlap_comm"]


def test_fp32_stage0_without_clipping():
    config = deepspeed_config(ZeroConfig(stage=0, precision="fp32", gradient_clipping=0),
                              micro_batch_size=2, on_gpu=False)
    assert config["zero_optimization"] == {"stage": 0}
    assert "gradient_clipping" not in config and "bf16" not in config


def test_mistakes_are_refused():
    with pytest.raises(ValueError, match="fp16 needs a GPU"):
        deepspeed_config(ZeroConfig(precision="fp16"), micro_batch_size=1, on_gpu=False)
    with pytest.raises(ValueError, match="offload_params needs stage: 3"):
        ZeroConfig(stage=2, offload_params=True)
    with pytest.raises(ValueError, match="offload_optimizer needs stage >= 1"):
        ZeroConfig(stage=0, offload_optimizer=True)
    with pytest.raises(ValueError, match="gradient_accumulation_steps"):
        ZeroConfig(gradient_accumulation_steps=0)
