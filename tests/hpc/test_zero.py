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


def test_a_lone_stage0_engine_steps_exactly_as_plain_torch_without_an_all_reduce(monkeypatch):
    """One rank, ZeRO stage 0: the engine skips DeepSpeed's gradient all-reduce (an identity
    over one rank that cost a third of the backward pass, benchmarks/bench_train.py) and
    its steps, clipping included, are plain torch's AdamW + clip_grad_norm_."""
    import torch

    from hpc.dist import destroy_distributed, init_distributed, resolve_env
    from hpc.zero import build_engine

    for name in ("RANK", "WORLD_SIZE", "MASTER_PORT", "MASTER_ADDR", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DS_ACCELERATOR", "cpu")

    def model():
        torch.manual_seed(0)
        return torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1))

    x, y = torch.randn(32, 8), torch.randn(32, 1)
    plain = model()
    optimizer = torch.optim.AdamW(plain.parameters(), lr=1e-2)
    init_distributed(resolve_env({}, cuda_available=False))
    try:
        ours = model()
        engine = build_engine(ours, optimizer=torch.optim.AdamW(ours.parameters(), lr=1e-2),
                              lr_scheduler=None, cfg=ZeroConfig(stage=0, precision="fp32"),
                              micro_batch_size=32)
        assert engine.enable_backward_allreduce is False
        for _ in range(3):
            loss = torch.nn.functional.mse_loss(engine(x), y) * 50  # gradients clipped
            engine.backward(loss)
            engine.step()
            reference = torch.nn.functional.mse_loss(plain(x), y) * 50
            reference.backward()
            norm = torch.nn.utils.clip_grad_norm_(plain.parameters(), 1.0)
            assert norm > 1.0
            optimizer.step()
            optimizer.zero_grad()
        for a, b in zip(ours.parameters(), plain.parameters()):
            torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)
    finally:
        destroy_distributed()
