"""Learning-rate schedules and the EMA of weights (including its swap in and out)."""

from __future__ import annotations

import math

import pytest
import torch

from galaxy_hpc.train.ema import ParameterEMA
from galaxy_hpc.train.schedule import lr_multiplier


def test_warmup_then_cosine_to_floor():
    f = lr_multiplier("cosine", warmup_steps=10, max_steps=110, min_ratio=0.1)
    assert f(0) == pytest.approx(0.1) and f(9) == pytest.approx(1.0)
    assert f(60) == pytest.approx(0.1 + 0.9 * 0.5)  # half way through the decay
    assert f(110) == pytest.approx(0.1) and f(500) == pytest.approx(0.1)


def test_constant_and_linear():
    assert lr_multiplier("constant", warmup_steps=0, max_steps=10)(7) == 1.0
    linear = lr_multiplier("linear", warmup_steps=0, max_steps=100)
    assert linear(25) == pytest.approx(0.75)
    with pytest.raises(ValueError, match="schedule must be"):
        lr_multiplier("step", warmup_steps=0, max_steps=1)


def test_ema_follows_the_formula_and_swaps_back():
    weight = torch.nn.Parameter(torch.zeros(3))
    ema = ParameterEMA([weight], decay=0.9, warmup=False)
    for value in (1.0, 2.0):
        weight.data.fill_(value)
        ema.update()
    expected = 0.9 * (0.9 * 0.0 + 0.1 * 1.0) + 0.1 * 2.0
    assert torch.allclose(ema.shadow[0], torch.full((3,), expected))
    with ema.swapped_in():
        assert torch.allclose(weight.data, torch.full((3,), expected))
    assert torch.equal(weight.data, torch.full((3,), 2.0))


def test_ema_warmup_and_state_round_trip():
    weight = torch.nn.Parameter(torch.ones(2))
    ema = ParameterEMA([weight], decay=0.9999, warmup=True)
    assert ema.current_decay() == pytest.approx(0.1)  # (1 + 0) / (10 + 0)
    ema.update()
    other = ParameterEMA([torch.nn.Parameter(torch.zeros(2))], decay=0.9999)
    other.load_state_dict(ema.state_dict())
    assert other.num_updates == 1 and torch.equal(other.shadow[0], ema.shadow[0])
    with pytest.raises(ValueError, match="does not fit"):
        ParameterEMA([torch.nn.Parameter(torch.zeros(5))], decay=0.9).load_state_dict(ema.state_dict())
    assert math.isclose(ParameterEMA([weight], decay=0.5, warmup=True).current_decay(), 0.1)
