"""Breakout for DQN: Gymnasium's ``AtariPreprocessing``, FIRE at start and after a lost life, 4-frame stack.

No TF-Agents import here: :func:`make_breakout_env` is also the ``env_factory`` that evaluates an
exported Breakout policy in a process without TF-Agents.

Example:
    >>> from agents.atari import make_breakout_env
    >>> env = make_breakout_env(seed=0)
    >>> obs, info = env.reset(seed=0)
    >>> obs.shape, obs.dtype
    ((84, 84, 4), dtype('uint8'))
"""
from __future__ import annotations

import gymnasium as gym
import numpy as np

from agents.envs import make_env, resolve_env_id

# HOML: 27,000 agent steps per episode = 108,000 ALE frames (4 frames per step).
BREAKOUT_MAX_EPISODE_STEPS = 27_000
BREAKOUT_ID = "BreakoutNoFrameskip-v4"
FIRE = 1  # Breakout's action meanings: NOOP, FIRE, RIGHT, LEFT
FRAME_SKIP = 4  # ALE frames per agent step
FRAME_STACK = 4  # frames per observation (the newest last)


# ----------------------------------------------------------------------------------------------


class FireOnStartAndLifeLoss(gym.Wrapper):
    """Press FIRE after every reset and after every lost life (HOML's ``AtariPreprocessingWithAutoFire``).

    Breakout waits for FIRE to launch the ball; a random agent rarely learns that pressing it
    matters, so HOML presses it automatically. The FIRE step's reward is added to the step that
    lost the life (HOML dropped it; it is 0 in practice, but adding it keeps returns exact).
    """

    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        obs, _, terminated, truncated, info = self.env.step(FIRE)
        if terminated or truncated:  # can't happen in Breakout; be safe anyway
            obs, info = self.env.reset()
        return obs, info

    def step(self, action):
        lives = self.env.unwrapped.ale.lives()
        obs, reward, terminated, truncated, info = self.env.step(action)
        life_lost = self.env.unwrapped.ale.lives() < lives
        if not (terminated or truncated) and life_lost:
            obs, fire_reward, terminated, truncated, info = self.env.step(FIRE)
            reward += fire_reward
        info = {**info, "life_lost": bool(life_lost)}  # training may end its TD chain here (Nature DQN)
        return obs, reward, terminated, truncated, info


def _have_cv2() -> bool:
    try:
        import cv2  # noqa: F401
    except ImportError:
        return False
    return True


def _atari_preprocessing(env: gym.Env, **kwargs) -> gym.Env:
    """Gymnasium's ``AtariPreprocessing``; without OpenCV, the same wrapper resizing with Pillow.

    Gymnasium's wrapper needs ``cv2`` only for its 84x84 ``INTER_AREA`` resize (``gymnasium[other]``).
    When OpenCV is missing we keep the library wrapper (no-op starts, frame skip, max-pooling, life
    handling) and swap that one resize for Pillow's ``BOX`` filter, which is also an area average.
    """
    from gymnasium.wrappers import AtariPreprocessing

    if _have_cv2():
        return AtariPreprocessing(env, **kwargs)

    class _PillowAtariPreprocessing(AtariPreprocessing):
        def _get_obs(self):
            from PIL import Image

            if self.frame_skip > 1:  # max over the last two frames (flicker), as the parent does
                np.maximum(self.obs_buffer[0], self.obs_buffer[1], out=self.obs_buffer[0])
            frame = Image.fromarray(self.obs_buffer[0]).resize(self.screen_size, Image.BOX)
            obs = np.asarray(frame, dtype=np.uint8)  # [84, 84]
            if self.scale_obs:
                obs = obs.astype(np.float32) / 255.0
            if self.grayscale_obs and self.grayscale_newaxis:
                obs = obs[..., None]
            return obs

    import sys
    import types

    # The parent's __init__ only checks that cv2 imports; give it a placeholder for that call.
    sys.modules["cv2"] = types.ModuleType("cv2")
    try:
        return _PillowAtariPreprocessing(env, **kwargs)
    finally:
        del sys.modules["cv2"]


def make_breakout_env(seed: int | None = None, render: bool = False,
                      max_episode_steps: int = BREAKOUT_MAX_EPISODE_STEPS, **kwargs) -> gym.Env:
    """``BreakoutNoFrameskip-v4`` preprocessed as in HOML/DQN: ``[84, 84, 4]`` uint8 observations.

    ``AtariPreprocessing`` (30 no-op starts, 4-frame skip with max-pooling, grayscale 84x84,
    no scaling so frames stay uint8: 28 KB per observation instead of 113 KB in float32),
    FIRE at start and after each lost life, ``FrameStackObservation(4)`` moved channels-last
    for the conv net, and a limit of ``max_episode_steps`` agent steps.

    Also usable as ``env_factory`` for :func:`agents.evaluation.evaluate`.

    Raises:
        ValueError: ale-py is not installed (from :func:`agents.envs.make_env`).
    """
    from gymnasium.wrappers import FrameStackObservation, TimeLimit, TransformObservation

    env = make_env(BREAKOUT_ID, seed=seed, render=render, **kwargs)
    env = _atari_preprocessing(env, noop_max=30, frame_skip=4, screen_size=84, terminal_on_life_loss=False,
                               grayscale_obs=True, scale_obs=False)
    env = FireOnStartAndLifeLoss(env)
    env = FrameStackObservation(env, stack_size=FRAME_STACK)  # [4, 84, 84]
    channels_last = gym.spaces.Box(0, 255, (84, 84, 4), np.uint8)
    env = TransformObservation(env, lambda obs: np.transpose(obs, (1, 2, 0)), channels_last)  # [84, 84, 4]
    env = TimeLimit(env, max_episode_steps=max_episode_steps)
    if seed is not None:
        env.action_space.seed(int(seed))
    return env


# ----------------------------------------------------------------------------------------------
# One env maker for every agent: Breakout preprocessed, image observations never raw
# ----------------------------------------------------------------------------------------------

PREPROCESSED_SHAPE = (84, 84, FRAME_STACK)


def make_agent_env(env_id: str, seed: int | None = None, render: bool = False, **kwargs) -> gym.Env:
    """The env an agent plays: ``BreakoutNoFrameskip-v4`` (alias ``breakout``) through
    :func:`make_breakout_env`, every other id through :func:`agents.envs.make_env`."""
    if resolve_env_id(env_id) == BREAKOUT_ID:
        return make_breakout_env(seed=seed, render=render, **kwargs)
    return make_env(env_id, seed=seed, render=render, **kwargs)


def check_q_learnable(env_id: str, observation_space) -> None:
    """Refuse image observations that were not preprocessed (a conv net on raw 210x160 RGB frames
    would take them for 3 stacked frames, use gigabytes and learn nothing).

    Raises:
        ValueError: a 3-D observation space other than the preprocessed ``[84, 84, 4]`` uint8 stack.
    """
    shape = tuple(getattr(observation_space, "shape", None) or ())
    if len(shape) == 3 and shape != PREPROCESSED_SHAPE:
        raise ValueError(f"Received an invalid value for argument `env`: {env_id!r} gives raw image observations "
                         f"{shape}; DQN needs Atari preprocessing (84x84 grey, 4-frame stack): use --env breakout")


def atari_policy_extra(env_id: str) -> dict:
    """What a saved policy's ``policy.json`` needs to be played again: Breakout's preprocessing."""
    return {"env_factory": "agents.atari:make_breakout_env"} if resolve_env_id(env_id) == BREAKOUT_ID else {}
