"""Gymnasium 1.x environments as TF-Agents ``PyEnvironment`` s, HOML's 4x4 grid, Atari Breakout.

TF-Agents 0.19 only knows the old ``gym`` API (``done``, ``env.seed``), so :class:`GymnasiumPyEnvironment`
adapts a Gymnasium env: specs from the spaces, one seed at the first reset, ``terminated`` ->
``StepType.LAST`` with discount 0 and ``truncated`` -> ``StepType.LAST`` with discount 1 (so the
TD target still bootstraps on a time limit), auto-reset after the last step, ``render()``.

Example:
    >>> from agents.tfa.envs import make_py_env
    >>> from tf_agents.environments import utils
    >>> env = make_py_env("cartpole", seed=0)
    >>> utils.validate_py_environment(env, episodes=2)
    >>> env.time_step_spec().observation.shape
    (4,)

Importing this module imports TF-Agents, which needs Keras 2: ``agents/tfa/__init__.py`` sets
``TF_USE_LEGACY_KERAS=1`` first and checks that it took effect.
"""
from __future__ import annotations

import gymnasium as gym
import numpy as np
from tf_agents.environments import py_environment
from tf_agents.specs import array_spec
from tf_agents.trajectories import time_step as ts

from agents.atari import make_agent_env

# ----------------------------------------------------------------------------------------------
# Spaces -> specs
# ----------------------------------------------------------------------------------------------


def spec_from_space(space: gym.Space, name: str) -> array_spec.ArraySpec:
    """A TF-Agents ``BoundedArraySpec`` for a Gymnasium ``Discrete`` or ``Box`` space.

    ``Discrete(n, start)`` becomes a scalar int64 spec ``[start, start + n - 1]``; a ``Box`` keeps its
    shape, dtype and bounds.

    Raises:
        ValueError: any other space (Dict, Tuple, MultiDiscrete... are not needed by the course).
    """
    if isinstance(space, gym.spaces.Discrete):
        start = int(space.start)
        return array_spec.BoundedArraySpec((), np.int64, minimum=start, maximum=start + int(space.n) - 1, name=name)
    if isinstance(space, gym.spaces.Box):
        return array_spec.BoundedArraySpec(space.shape, space.dtype, minimum=space.low, maximum=space.high, name=name)
    raise ValueError(f"Received an invalid value for argument `{name}_space`: expected a Discrete or Box "
                     f"space, got {space!r}")


class GymnasiumPyEnvironment(py_environment.PyEnvironment):
    """A Gymnasium 1.x environment behind TF-Agents' ``PyEnvironment`` interface.

    Args:
        env: the Gymnasium environment (already wrapped as wanted).
        seed: passed to the *first* ``reset`` only (Gymnasium seeds its generator once; later
            resets continue the same random stream).
        discount: the discount of non-terminal steps (TF-Agents multiplies it by the agent's gamma).

    Step types: the first observation of an episode is ``FIRST``; ``terminated`` gives ``LAST``
    with discount 0 (no bootstrap); ``truncated`` (a time limit) gives ``LAST`` with discount
    ``discount`` (bootstrap from the last observation, as SB3/CleanRL do). With
    ``handle_auto_reset=True`` the base class resets after a ``LAST`` step, which is what the
    TF-Agents drivers expect.
    """

    def __init__(self, env: gym.Env, seed: int | None = None, discount: float = 1.0):
        super().__init__(handle_auto_reset=True)
        self._env = env
        self._seed = seed
        self._discount = np.float32(discount)
        self._observation_spec = spec_from_space(env.observation_space, "observation")
        self._action_spec = spec_from_space(env.action_space, "action")
        self._info: dict = {}

    @property
    def gym(self) -> gym.Env:
        """The wrapped Gymnasium environment."""
        return self._env

    def observation_spec(self):
        return self._observation_spec

    def action_spec(self):
        return self._action_spec

    def get_info(self) -> dict:
        return self._info

    def _observation(self, obs) -> np.ndarray:
        return np.asarray(obs, dtype=self._observation_spec.dtype)

    def _reset(self):
        seed, self._seed = self._seed, None  # seed once: later resets continue the stream
        obs, self._info = self._env.reset(seed=seed)
        return ts.restart(self._observation(obs))

    def _step(self, action):
        action = np.asarray(action)
        action = action.item() if action.ndim == 0 else action
        obs, reward, terminated, truncated, self._info = self._env.step(action)
        obs, reward = self._observation(obs), np.float32(reward)
        if terminated:
            return ts.termination(obs, reward)
        if truncated:
            return ts.truncation(obs, reward, self._discount)
        return ts.transition(obs, reward, self._discount)

    def render(self, mode: str = "rgb_array"):
        """The wrapped env's frame (create it with ``render_mode="rgb_array"``)."""
        if mode != "rgb_array":
            raise ValueError(f"Received an invalid value for argument `mode`: expected 'rgb_array', got {mode!r}")
        return self._env.render()

    def seed(self, seed: int) -> None:
        """Set the seed of the next reset (TF-Agents' old ``seed()`` method)."""
        self._seed = int(seed)

    def close(self) -> None:
        self._env.close()


def make_py_env(env_id: str, seed: int | None = None, render: bool = False, discount: float = 1.0,
                **kwargs) -> GymnasiumPyEnvironment:
    """A TF-Agents ``PyEnvironment`` for a course env (``cartpole``, ``frozenlake``, ``breakout``...).

    Module-level (picklable with ``functools.partial``) so it can be a ``ParallelPyEnvironment``
    constructor: ``ParallelPyEnvironment([partial(make_py_env, "cartpole", seed=s) for s in ...])``.
    """
    return GymnasiumPyEnvironment(make_agent_env(env_id, seed=seed, render=render, **kwargs), seed=seed,
                                  discount=discount)


# ----------------------------------------------------------------------------------------------
# HOML's custom 4x4 grid environment
# ----------------------------------------------------------------------------------------------


class GridEnvironment(py_environment.PyEnvironment):
    """HOML's custom ``PyEnvironment``: walk from corner (0, 0) to corner (3, 3) of a 4x4 grid.

    Actions: up (0), down (1), left (2), right (3). Observation: a ``[4, 4]`` int32 one-hot grid
    of the agent's cell (all zeros once it has left the grid). Reaching (3, 3) ends the episode
    with reward +10; stepping off the grid ends it with reward -1; every other step gives 0 with
    discount ``discount``.

    Example:
        >>> env = GridEnvironment()
        >>> env.reset().observation[0, 0]
        1
        >>> env.step(np.int32(0)).reward   # up from (0, 0): off the grid
        -1.0
    """

    MOVES = np.array([(-1, 0), (+1, 0), (0, -1), (0, +1)], dtype=np.int32)  # up, down, left, right

    def __init__(self, discount: float = 1.0):
        super().__init__(handle_auto_reset=True)
        self._action_spec = array_spec.BoundedArraySpec((), np.int32, minimum=0, maximum=3, name="action")
        self._observation_spec = array_spec.BoundedArraySpec((4, 4), np.int32, minimum=0, maximum=1,
                                                             name="observation")
        self._discount = np.float32(discount)
        self._state = np.zeros(2, dtype=np.int32)

    def action_spec(self):
        return self._action_spec

    def observation_spec(self):
        return self._observation_spec

    def _grid(self, on_grid: bool) -> np.ndarray:
        obs = np.zeros((4, 4), dtype=np.int32)
        if on_grid:
            obs[self._state[0], self._state[1]] = 1
        return obs

    def _reset(self):
        self._state = np.zeros(2, dtype=np.int32)
        return ts.restart(self._grid(True))

    def _step(self, action):
        self._state = self._state + self.MOVES[int(action)]
        off_grid = bool(self._state.min() < 0 or self._state.max() > 3)
        obs = self._grid(not off_grid)
        if off_grid:
            return ts.termination(obs, np.float32(-1.0))
        if np.all(self._state == 3):
            return ts.termination(obs, np.float32(10.0))
        return ts.transition(obs, np.float32(0.0), self._discount)

    def render(self, mode: str = "rgb_array") -> np.ndarray:
        """The grid as a 64x64 RGB image (agent white), for GIFs."""
        cell = np.kron(self._grid(bool(self._state.min() >= 0 and self._state.max() <= 3)),
                       np.ones((16, 16), dtype=np.int32))
        img = np.zeros((64, 64, 3), dtype=np.uint8)
        img[..., :] = (cell * 255)[..., None]
        img[48:, 48:, 1] = np.maximum(img[48:, 48:, 1], 120)  # the goal corner in green
        return img
