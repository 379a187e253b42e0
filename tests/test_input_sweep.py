"""Issue 33's bad-input sweep and its leftovers: each bad input is one line naming what to change."""
from __future__ import annotations

import dataclasses

import pytest

from agents import configs
from keras_impl.config import arg, resolve


def test_a_bound_can_say_why_and_total_timesteps_says_how_long():
    @dataclasses.dataclass
    class Cfg:
        steps: int = arg(1, "steps", ge=1, le=10, why=lambda value: f"{value} steps would take {value * 2} s")

    with pytest.raises(ValueError, match=r"^Received an invalid value for argument `steps`: expected >= 1 and <= 10, "
                                         r"got 11 \(11 steps would take 22 s\)$"):
        resolve(Cfg, {"steps": 11})
    # 1e9 steps / 30 per second / 86,400 = 385.8 days = 1.1 years; 5e7 / 30 / 86,400 = 19.3 days
    with pytest.raises(ValueError, match=r"argument `total_timesteps`: expected >= 1 and <= 50,000,000, got 1000000000 "
                                         r"\(1,000,000,000 agent steps of Atari training take about 1\.1 years on a "
                                         r"CPU at about 30 steps/s; 50,000,000 about 19 days\)$"):
        resolve(configs.DQNConfig, {"total_timesteps": 1_000_000_000})
    # 540,000 / 30 = 18,000 s = 5 hours
    assert configs.training_time(540_000) == ("540,000 agent steps of Atari training take about 5 hours on a CPU at "
                                              "about 30 steps/s; 50,000,000 about 19 days")
