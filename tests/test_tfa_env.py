"""The Gymnasium -> TF-Agents adapter, HOML's 4x4 grid env and the Breakout preprocessing."""
import functools
import importlib.util

import gymnasium as gym
import numpy as np
import pytest
from tf_agents.environments import batched_py_environment, utils
from tf_agents.trajectories import time_step as ts

from agents.atari import FIRE, FireOnStartAndLifeLoss
from agents.tfa.envs import GridEnvironment, GymnasiumPyEnvironment, make_py_env, spec_from_space

needs_ale = pytest.mark.skipif(importlib.util.find_spec("ale_py") is None, reason="needs ale-py")

FIRST, MID, LAST = ts.StepType.FIRST, ts.StepType.MID, ts.StepType.LAST
LEFT, DOWN, RIGHT, UP = 0, 1, 2, 3  # FrozenLake's actions


# ----------------------------------------------------------------------------------------------
# Specs
# ----------------------------------------------------------------------------------------------


def test_spec_from_discrete_space_is_a_bounded_int_scalar():
    spec = spec_from_space(gym.spaces.Discrete(4, start=2), "action")
    assert spec.shape == () and spec.dtype == np.int64
    assert (int(spec.minimum), int(spec.maximum)) == (2, 5)


def test_spec_from_box_space_keeps_shape_dtype_and_bounds():
    space = gym.spaces.Box(0, 255, (84, 84, 4), np.uint8)
    spec = spec_from_space(space, "observation")
    assert spec.shape == (84, 84, 4) and spec.dtype == np.uint8
    assert int(np.min(spec.minimum)) == 0 and int(np.max(spec.maximum)) == 255


def test_spec_from_unsupported_space_names_the_argument():
    with pytest.raises(ValueError, match="observation_space"):
        spec_from_space(gym.spaces.MultiBinary(3), "observation")


# ----------------------------------------------------------------------------------------------
# validate_py_environment (TF-Agents' own check) on the course envs
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("env_id,kwargs", [("cartpole", {}), ("frozenlake", {"is_slippery": False}),
                                           ("frozenlake", {"is_slippery": True})])
def test_adapter_passes_validate_py_environment(env_id, kwargs):
    env = make_py_env(env_id, seed=0, **kwargs)
    utils.validate_py_environment(env, episodes=3)


@needs_ale
def test_breakout_passes_validate_py_environment():
    env = make_py_env("breakout", seed=0)
    spec = env.observation_spec()
    assert spec.shape == (84, 84, 4) and spec.dtype == np.uint8  # uint8 frames, channels last
    utils.validate_py_environment(env, episodes=1)
    env.close()


def test_adapter_wraps_any_gymnasium_env():
    env = GymnasiumPyEnvironment(gym.make("MountainCar-v0"), seed=0)  # an env the presets do not use
    assert env.observation_spec().shape == (2,) and env.gym.spec.id == "MountainCar-v0"
    utils.validate_py_environment(env, episodes=1)


def test_batched_environment_passes_validate_py_environment():
    env = batched_py_environment.BatchedPyEnvironment(
        [make_py_env("cartpole", seed=s) for s in (0, 1)])
    utils.validate_py_environment(env, episodes=3)
    assert env.batch_size == 2


def test_parallel_environment_passes_validate_py_environment():
    from tf_agents.environments import parallel_py_environment
    from tf_agents.system import system_multiprocessing

    system_multiprocessing.enable_interactive_mode()
    env = parallel_py_environment.ParallelPyEnvironment(
        [functools.partial(make_py_env, "cartpole", seed=s) for s in (0, 1)], start_serially=False)
    try:
        utils.validate_py_environment(env, episodes=3)
        assert env.batch_size == 2
    finally:
        env.close()


# ----------------------------------------------------------------------------------------------
# Step types, discounts, auto-reset, seeding, render
# ----------------------------------------------------------------------------------------------


def test_termination_is_last_with_discount_zero():
    # Non-slippery 4x4 map: from S (0,0), DOWN, DOWN -> (2,0); RIGHT -> (2,1); DOWN -> (3,1)... the first
    # hole reachable in one move is H at (1,1): DOWN to (1,0), RIGHT into the hole.
    env = make_py_env("frozenlake", seed=0, is_slippery=False)
    assert env.reset().step_type == FIRST
    step = env.step(np.int64(DOWN))
    assert step.step_type == MID and float(step.discount) == 1.0
    step = env.step(np.int64(RIGHT))
    assert step.step_type == LAST and float(step.discount) == 0.0 and float(step.reward) == 0.0


def test_truncation_is_last_with_discount_one_then_auto_reset():
    # Walking LEFT into the wall from the start never ends the episode; the time limit (3) truncates it.
    env = make_py_env("frozenlake", seed=0, is_slippery=False, max_episode_steps=3)
    env.reset()
    types = [int(env.step(np.int64(LEFT)).step_type) for _ in range(2)]
    last = env.step(np.int64(LEFT))
    assert types == [MID, MID]
    assert last.step_type == LAST and float(last.discount) == 1.0  # bootstrap on a time limit
    after = env.step(np.int64(LEFT))  # handle_auto_reset: the next step starts a new episode
    assert after.step_type == FIRST and int(after.observation) == 0


def test_goal_reward_is_one_on_the_last_step():
    env = make_py_env("frozenlake", seed=0, is_slippery=False)
    env.reset()
    for action in (DOWN, DOWN, RIGHT, RIGHT, DOWN):
        assert env.step(np.int64(action)).step_type == MID
    goal = env.step(np.int64(RIGHT))
    assert goal.step_type == LAST and float(goal.reward) == 1.0 and int(goal.observation) == 15


def _first_observations(env, episodes=3):
    starts, step = [], env.reset()
    starts.append(step.observation.copy())
    while len(starts) < episodes:
        step = env.step(np.int64(0))  # always push left: CartPole ends in ~10 steps
        if step.step_type == FIRST:
            starts.append(step.observation.copy())
    return np.stack(starts)


def test_seeded_once_same_seed_same_episodes_and_episodes_differ():
    a = _first_observations(make_py_env("cartpole", seed=7))
    b = _first_observations(make_py_env("cartpole", seed=7))
    c = _first_observations(make_py_env("cartpole", seed=8))
    np.testing.assert_array_equal(a, b)  # deterministic given the seed
    assert not np.allclose(a[0], a[1])  # later resets are not re-seeded with the same seed
    assert not np.allclose(a, c)


def test_render_returns_an_rgb_frame():
    env = make_py_env("cartpole", seed=0, render=True)
    env.reset()
    frame = env.render()
    assert frame.ndim == 3 and frame.shape[-1] == 3 and frame.dtype == np.uint8


# ----------------------------------------------------------------------------------------------
# HOML's 4x4 grid environment
# ----------------------------------------------------------------------------------------------

GRID_UP, GRID_DOWN, GRID_LEFT, GRID_RIGHT = 0, 1, 2, 3


def test_grid_env_passes_validate_py_environment():
    utils.validate_py_environment(GridEnvironment(), episodes=5)


def test_grid_env_starts_in_the_top_left_corner():
    step = GridEnvironment().reset()
    expected = np.zeros((4, 4), np.int32)
    expected[0, 0] = 1
    np.testing.assert_array_equal(step.observation, expected)
    assert step.step_type == FIRST


@pytest.mark.parametrize("action", [GRID_UP, GRID_LEFT])
def test_grid_env_leaving_the_grid_ends_with_minus_one(action):
    env = GridEnvironment()
    env.reset()
    step = env.step(np.int32(action))
    assert step.step_type == LAST and float(step.reward) == -1.0 and float(step.discount) == 0.0
    assert step.observation.sum() == 0  # off the grid: no cell is lit


def test_grid_env_reaching_the_far_corner_ends_with_plus_ten():
    env = GridEnvironment(discount=0.9)
    env.reset()
    for action in (GRID_DOWN, GRID_DOWN, GRID_DOWN, GRID_RIGHT, GRID_RIGHT):
        step = env.step(np.int32(action))
        assert step.step_type == MID and float(step.reward) == 0.0
        assert float(step.discount) == pytest.approx(0.9)
    step = env.step(np.int32(GRID_RIGHT))
    assert step.step_type == LAST and float(step.reward) == 10.0
    assert step.observation[3, 3] == 1 and step.observation.sum() == 1
    assert env.step(np.int32(GRID_DOWN)).step_type == FIRST  # auto-reset


def test_grid_env_render_is_an_image():
    env = GridEnvironment()
    env.reset()
    assert env.render().shape == (64, 64, 3)


# ----------------------------------------------------------------------------------------------
# Breakout: FIRE at start and after a lost life; preprocessing shapes; time limit
# ----------------------------------------------------------------------------------------------


class _FakeAtari(gym.Env):
    """Records actions; loses a life on action 3; terminates on action 2."""

    observation_space = gym.spaces.Discrete(1)
    action_space = gym.spaces.Discrete(4)

    def __init__(self):
        self.actions, self._lives = [], 5
        self.ale = self  # FireOnStartAndLifeLoss reads env.unwrapped.ale.lives()

    def lives(self):
        return self._lives

    def reset(self, seed=None, options=None):
        self.actions.append("reset")
        return 0, {}

    def step(self, action):
        self.actions.append(int(action))
        if action == 3:
            self._lives -= 1
        return 0, 1.0, action == 2, False, {}


def test_fire_is_pressed_at_start_and_after_each_lost_life():
    fake = _FakeAtari()
    env = FireOnStartAndLifeLoss(fake)
    env.reset()
    assert fake.actions == ["reset", FIRE]
    _, reward, *_ = env.step(0)  # no life lost: no FIRE
    assert fake.actions[-1] == 0 and reward == 1.0
    _, reward, *_ = env.step(3)  # life lost: FIRE, and its reward counts
    assert fake.actions[-2:] == [3, FIRE] and reward == 2.0
    env.step(2)  # terminated: no FIRE
    assert fake.actions[-1] == 2


@needs_ale
def test_breakout_preprocessing_shapes_lives_and_time_limit():
    from agents.atari import BREAKOUT_MAX_EPISODE_STEPS, make_breakout_env

    env = make_breakout_env(seed=0)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (84, 84, 4) and obs.dtype == np.uint8
    assert env.unwrapped.ale.lives() == 5
    assert env._max_episode_steps == BREAKOUT_MAX_EPISODE_STEPS == 27_000
    # The 4 stacked frames are consecutive agent steps: after 3 more steps all 4 slots are filled
    # with distinct frames once the ball moves.
    for _ in range(8):
        obs, *_ = env.step(0)
    assert not np.array_equal(obs[..., 0], obs[..., 3])
    env.close()
