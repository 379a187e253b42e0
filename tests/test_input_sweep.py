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


@pytest.mark.parametrize("argv, message", [
    (["--env", "breakout", "--config", "env=cartpole"],
     "--env breakout and --config env=cartpole give `env` two values; give it once"),
    (["--seed", "3", "--config", "seed=4"], "--seed 3 and --config seed=4 give `seed` two values; give it once"),
])
def test_a_field_typed_twice_with_two_values_is_refused(tmp_path, capsys, argv, message):
    from kcourse import cli

    code = cli.main(["run", "dqn", "--quick", "--out", str(tmp_path / "runs"), *argv])
    assert code == 2 and capsys.readouterr().err.strip() == f"kcourse: error: {message}"
    assert not (tmp_path / "runs").exists()


def test_the_same_value_typed_twice_is_fine():
    from kcourse.cli import merge_typed

    assert merge_typed({"env": "cartpole", "seed": 1}, {"env": "cartpole", "gamma": 0.9}) == \
        {"env": "cartpole", "seed": 1, "gamma": 0.9}


# ----------------------------------------------------------------------------------------------
# Sizes checked before anything is allocated; the runs leave no folder behind
# ----------------------------------------------------------------------------------------------


@pytest.fixture
def one_gib(monkeypatch):
    from agents import replay

    monkeypatch.setattr(replay, "available_memory", lambda: 2**30)


def test_replay_and_batch_sizes_are_checked_against_memory_by_hand(one_gib):
    from agents.replay import check_replay_sizes

    # CartPole: a row holds obs and next obs (2 x 4 float32 = 32 bytes) + 24: 56 bytes; 1e8 rows = 5.2 GiB
    with pytest.raises(ValueError, match=r"^Received an invalid value for argument `buffer_size`: 100,000,000 needs "
                                         r"5\.2 GiB for the replay memory, more than the 1\.0 GiB of memory available$"):
        check_replay_sizes(100_000_000, 64, 1, 3, (4,), "float32")
    # Breakout: a sample is 2 stacks of 84 x 84 x 4 uint8 and their float32 copies: 28,224 x 2 x 5 = 282,240 bytes;
    # 10,000 of them = 2.6 GiB
    with pytest.raises(ValueError, match=r"^Received an invalid value for argument `batch_size`: 10,000 needs 2\.6 GiB "
                                         r"for a training round's 1 x 10,000 sampled transitions"):
        check_replay_sizes(1_000, 10_000, 1, 10, (84, 84, 4), "uint8")
    with pytest.raises(ValueError, match=r"argument `buffer_size`: expected >= 15 \(n_step 10 \+ a 4-frame stack \+ 1: "
                                         r"one complete window\), got 9$"):
        check_replay_sizes(9, 32, 1, 10, (84, 84, 4), "uint8")
    check_replay_sizes(100_000, 32, 1, 10, (84, 84, 4), "uint8")  # the data-efficient preset: 0.7 GB, fits


def test_a_full_frame_replay_without_a_window_says_it_is_too_small(monkeypatch):
    import numpy as np

    from agents.replay import FrameReplay

    replay = FrameReplay(capacity=15, frame_shape=(1, 1), stack=4, n=10, seed=0)
    never = (np.zeros(1), np.zeros(1, int), np.zeros(1, bool), np.zeros(1, int), np.zeros(1, bool))
    monkeypatch.setattr(replay, "windows", lambda rows: tuple(a.repeat(len(rows)) for a in never))
    for t in range(5):
        replay.add(np.full((1, 1, 4), t, np.uint8), 0, 0.0, np.full((1, 1, 4), t + 1, np.uint8), False, False)
    with pytest.raises(ValueError, match="collect more steps first"):  # not full yet: more steps can help
        replay.sample_rows(4)
    for t in range(20):
        replay.add(np.full((1, 1, 4), t, np.uint8), 0, 0.0, np.full((1, 1, 4), t + 1, np.uint8), False, False)
    with pytest.raises(ValueError, match=r"the replay memory is full \(15 rows\) but holds no complete 10-step window: "
                                         r"it is too small .*raise buffer_size well above n_step \+ 4"):
        replay.sample_rows(4)


def test_tf_agents_replay_capacity_and_batch_are_checked_in_the_config(one_gib):
    with pytest.raises(ValueError, match=r"argument `replay_capacity`: expected >= 14 \(14 per env: a sampled window "
                                         r"of n_step_update 10 \+ 1 \+ 3 stack frames, for 1 env\(s\)\), got 3$"):
        resolve(configs.TfaDqnConfig, {"env": "breakout", "preset": "data-efficient", "replay_capacity": 3},
                quick=True)
    with pytest.raises(ValueError, match=r"argument `batch_size`: 100,000,000,000,000 needs .* GiB for one sampled "
                                         r"batch, more than the 1\.0 GiB of memory available$"):
        resolve(configs.TfaDqnConfig, {"env": "breakout", "batch_size": 100_000_000_000_000}, quick=True)


@pytest.mark.parametrize("argv, message", [
    (["--env", "cartpole", "--config", "augment_pad=4"],
     "Received an invalid value for argument `augment_pad`: expected 0 for 'CartPole-v1' (random shifts move image "
     "observations; it has [4]), got 4"),
    (["--env", "cartpole", "--config", "buffer_size=1000000000000"],
     "Received an invalid value for argument `buffer_size`: 1,000,000,000,000 needs "),
])
def test_dqn_refuses_before_it_writes_anything(tmp_path, capsys, argv, message):
    # these failed late (inside the traced train step, or allocating 52,000 GiB) and left a run folder
    from kcourse import cli

    code = cli.main(["run", "dqn", "--quick", "--out", str(tmp_path / "runs"), *argv])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith(f"kcourse: error: {message}"), err
    assert not (tmp_path / "runs").exists()


def test_data_synthetic_keeps_the_mode_of_a_folder_the_user_made(tmp_path):
    import os
    import stat

    from kcourse import cli

    folder = tmp_path / "mine"
    folder.mkdir()
    folder.chmod(0o555)  # the sweep: read-only, made by the user; the command left it drwxr-xr-x
    try:
        assert cli.main(["data", "synthetic", "tiny", "--to", str(folder)]) == 0
        assert stat.S_IMODE(os.stat(folder).st_mode) == 0o555 and (folder / "ratings.csv").is_file()
    finally:
        folder.chmod(0o755)
