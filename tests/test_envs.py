"""make_env: the course's environments, aliases, seeding, clear errors."""
import sys

import numpy as np
import pytest

from agents.envs import available_envs, make_env, resolve_env_id


def rollout(env, seed, steps=30):
    obs, _ = env.reset(seed=seed)
    trace = [np.asarray(obs).tolist()]
    for _ in range(steps):
        obs, reward, terminated, truncated, _ = env.step(env.action_space.sample())
        trace.append((np.asarray(obs).tolist(), float(reward)))
        if terminated or truncated:
            obs, _ = env.reset()
    return trace


@pytest.mark.parametrize("env_id", ["CartPole-v1", "FrozenLake-v1", "LunarLander-v3"])
def test_same_seed_same_rollout(env_id):
    if env_id == "LunarLander-v3":
        pytest.importorskip("Box2D")
    a, b = make_env(env_id, seed=5), make_env(env_id, seed=5)
    assert rollout(a, 5) == rollout(b, 5)
    assert rollout(make_env(env_id, seed=6), 6) != rollout(make_env(env_id, seed=5), 5)


def test_cartpole_spaces_and_time_limit():
    env = make_env("cartpole", seed=0)
    assert env.spec.id == "CartPole-v1" and env.observation_space.shape == (4,) and env.action_space.n == 2
    assert env.spec.max_episode_steps == 500  # Gymnasium 1.x (HOML's old gym: 200)


@pytest.mark.parametrize("kwargs,n_states", [({}, 16), ({"map_name": "8x8"}, 64),
                                             ({"is_slippery": False}, 16),
                                             ({"map_name": "8x8", "is_slippery": False}, 64)])
def test_frozenlake_variants(kwargs, n_states):
    env = make_env("FrozenLake-v1", seed=0, **kwargs)
    assert env.observation_space.n == n_states and env.action_space.n == 4
    transitions = env.unwrapped.P[0][2]  # state 0, action "right"
    slippery = kwargs.get("is_slippery", True)
    assert len(transitions) == (3 if slippery else 1)  # slippery: 3 outcomes of 1/3; else 1 certain
    assert make_env("frozenlake8x8").observation_space.n == 64


def test_lunarlander_and_breakout():
    pytest.importorskip("Box2D")
    lander = make_env("lunarlander", seed=0)
    assert lander.spec.id == "LunarLander-v3" and lander.observation_space.shape == (8,) and lander.action_space.n == 4
    pytest.importorskip("ale_py")
    breakout = make_env("breakout", seed=0)
    obs, _ = breakout.reset(seed=0)
    assert obs.shape == (210, 160, 3) and breakout.unwrapped.get_action_meanings()[1] == "FIRE"
    breakout.close()


def test_render_gives_rgb_frames():
    env = make_env("CartPole-v1", seed=0, render=True)
    env.reset(seed=0)
    frame = env.render()
    assert frame.shape == (400, 600, 3) and frame.dtype == np.uint8
    assert make_env("FrozenLake-v1", render=True).render_mode == "rgb_array"


def test_unknown_id_lists_available():
    with pytest.raises(ValueError) as info:
        make_env("CartPoel-v1")
    message = str(info.value)
    assert "CartPoel-v1" in message and "CartPole-v1" in message and "LunarLander-v3" in message
    assert "CartPole-v1" in available_envs()


def test_missing_extra_names_the_pip_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "Box2D", None)  # `import Box2D` now raises ImportError
    with pytest.raises(ValueError, match=r"box2d.*pip install 'kcourse\[box2d\]'"):
        make_env("LunarLander-v3")


def test_bad_arguments():
    with pytest.raises(ValueError, match="env_id"):
        resolve_env_id("")
    with pytest.raises(ValueError, match="FrozenLake-v1"):
        make_env("FrozenLake-v1", no_such_option=1)
    assert resolve_env_id("CartPole") == "CartPole-v1" and resolve_env_id("Acrobot-v1") == "Acrobot-v1"
