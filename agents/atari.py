"""Atari for DQN: one preprocessing (Gymnasium's ``AtariPreprocessing``), FIRE where a game needs it, 4-frame stack.

Any game ale-py ships, in any spelling (``breakout``, ``BreakoutNoFrameskip-v4``, ``ALE/Pong-v5``:
:func:`agents.envs.atari_env_id`), is created as ``ALE/{Game}-v5`` with one emulator frame per
``step`` and the **protocol's** sticky-action probability set explicitly:

* ``sticky``: ``repeat_action_probability=0.25`` (Machado et al. 2018, the ALE v5 default), up to
  30 no-op starts. The headline protocol, and the one every training and selection run uses.
* ``atari100k``: no sticky actions, up to 30 no-op starts: the setting of the DrQ/SPR tables'
  games (Dopamine's Atari 100k runs have neither sticky actions nor no-op starts, so their games
  are even more alike).

No TF-Agents import here: :func:`make_atari_env` is also the ``env_factory`` that evaluates an
exported Atari policy in a process without TF-Agents.

Example:
    >>> from agents.atari import make_atari_env
    >>> env = make_atari_env("breakout", seed=0, protocol="sticky")
    >>> obs, info = env.reset(seed=0)
    >>> obs.shape, obs.dtype
    ((84, 84, 4), dtype('uint8'))
"""
from __future__ import annotations

import gymnasium as gym
import numpy as np

from agents.envs import atari_env_id, make_env, resolve_env_id

# HOML: 27,000 agent steps per episode = 108,000 ALE frames (4 frames per step).
MAX_EPISODE_STEPS = 27_000
BREAKOUT_MAX_EPISODE_STEPS = MAX_EPISODE_STEPS  # the former name
BREAKOUT_ID = "ALE/Breakout-v5"
FIRE = 1  # the FIRE action's index in every game that has one (SB3's FireResetEnv rule)
FRAME_SKIP = 4  # ALE frames per agent step
FRAME_STACK = 4  # frames per observation (the newest last)
NOOP_MAX = 30  # no-op actions of random count at each reset (Mnih et al. 2015)
SCREEN = 84
PREPROCESSING = "gymnasium-atari-opencv-area-84"  # what policy.json records; a file without it means this one
# repeat_action_probability of each evaluation protocol (module docstring)
PROTOCOLS = {"sticky": 0.25, "atari100k": 0.0}
DEFAULT_PROTOCOL = "sticky"


def is_atari(env_id: str) -> bool:
    """Whether ``env_id`` names an Atari game (in any spelling)."""
    return atari_env_id(env_id) is not None


def protocol_kwargs(env_id: str, protocol: str | None = None) -> dict:
    """The env keyword arguments that choose an Atari game's protocol (``protocol``, default sticky);
    none for other envs. Every caller that makes an env for an agent goes through this one rule."""
    return {"protocol": protocol or DEFAULT_PROTOCOL} if is_atari(env_id) else {}


def check_protocol(protocol: str) -> float:
    """The sticky-action probability of ``protocol``; a one-line error for any other name."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"Received an invalid value for argument `protocol`: expected one of "
                         f"{', '.join(PROTOCOLS)}, got {protocol!r}")
    return PROTOCOLS[protocol]


def check_preprocessing(meta: dict, where: str = "policy.json") -> None:
    """Refuse a saved Atari policy trained on other frames than :data:`PREPROCESSING` gives.

    Raises:
        ValueError: one line naming the field, its value and the file.
    """
    value = meta.get("preprocessing", PREPROCESSING)
    if value != PREPROCESSING:
        raise ValueError(f"{where}: field `preprocessing` is {value!r}, but this kcourse preprocesses Atari frames "
                         f"only as {PREPROCESSING!r}; the policy would see other frames than it learned on")


def _require_cv2() -> None:
    try:
        import cv2  # noqa: F401
    except ImportError:
        raise ValueError("Atari preprocessing resizes frames with OpenCV (cv2), which is not installed: "
                         "pip install 'kcourse[atari]'") from None


# ----------------------------------------------------------------------------------------------


def has_fire(env: gym.Env) -> bool:
    """SB3's ``FireResetEnv`` rule: action 1 is FIRE and the game has at least 3 actions."""
    meanings = env.unwrapped.get_action_meanings()
    return len(meanings) >= 3 and meanings[FIRE] == "FIRE"


class FireOnStartAndLifeLoss(gym.Wrapper):
    """Press FIRE after every reset and after every lost life (HOML's ``AtariPreprocessingWithAutoFire``).

    Breakout waits for FIRE to launch the ball; a random agent rarely learns that pressing it
    matters, so HOML presses it automatically. Only for games where :func:`has_fire` holds. The
    FIRE step's reward is added to the step that lost the life (HOML dropped it; it is 0 in
    Breakout, but adding it keeps returns exact).
    """

    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        obs, _, terminated, truncated, info = self.env.step(FIRE)
        if terminated or truncated:  # can't happen in the games with FIRE; be safe anyway
            obs, info = self.env.reset()
        return obs, info

    def step(self, action):
        lives = self.env.unwrapped.ale.lives()
        obs, reward, terminated, truncated, info = self.env.step(action)
        life_lost = self.env.unwrapped.ale.lives() < lives
        if not (terminated or truncated) and life_lost:
            obs, fire_reward, terminated, truncated, info = self.env.step(FIRE)
            reward += fire_reward
        info = {**info, "life_lost": bool(life_lost)}
        return obs, reward, terminated, truncated, info


class LifeLossInfo(gym.Wrapper):
    """``info["life_lost"]`` for games without FIRE (training may end its TD chain there, Nature DQN)."""

    def step(self, action):
        lives = self.env.unwrapped.ale.lives()
        obs, reward, terminated, truncated, info = self.env.step(action)
        return obs, reward, terminated, truncated, {**info, "life_lost": self.env.unwrapped.ale.lives() < lives}


def make_atari_env(env_id: str = BREAKOUT_ID, seed: int | None = None, render: bool = False,
                   protocol: str = DEFAULT_PROTOCOL, max_episode_steps: int = MAX_EPISODE_STEPS) -> gym.Env:
    """An Atari game preprocessed as in DQN: ``[84, 84, 4]`` uint8 observations.

    ``ALE/{Game}-v5`` with ``frameskip=1`` and the protocol's ``repeat_action_probability``;
    Gymnasium's ``AtariPreprocessing`` (up to 30 no-op starts, 4-frame skip with max-pooling,
    grayscale 84x84 by OpenCV's ``INTER_AREA``, uint8); FIRE at start and after each lost life in
    games that need it; ``FrameStackObservation(4)`` moved channels-last for the conv net; a limit
    of ``max_episode_steps`` agent steps (108,000 frames).

    Raises:
        ValueError: not an Atari game, an unknown protocol, or ale-py / OpenCV not installed.
    """
    from gymnasium.wrappers import AtariPreprocessing, FrameStackObservation, TimeLimit, TransformObservation

    ale_id = atari_env_id(env_id)
    if ale_id is None:
        raise ValueError(f"Received an invalid value for argument `env_id`: {env_id!r} is not an Atari game")
    sticky = check_protocol(protocol)
    env = make_env(ale_id, seed=seed, render=render, frameskip=1, repeat_action_probability=sticky,
                   full_action_space=False)
    _require_cv2()
    env = AtariPreprocessing(env, noop_max=NOOP_MAX, frame_skip=FRAME_SKIP, screen_size=SCREEN,
                             terminal_on_life_loss=False, grayscale_obs=True, scale_obs=False)
    env = FireOnStartAndLifeLoss(env) if has_fire(env) else LifeLossInfo(env)
    env = FrameStackObservation(env, stack_size=FRAME_STACK)  # [4, 84, 84]
    channels_last = gym.spaces.Box(0, 255, PREPROCESSED_SHAPE, np.uint8)
    env = TransformObservation(env, lambda obs: np.transpose(obs, (1, 2, 0)), channels_last)  # [84, 84, 4]
    env = TimeLimit(env, max_episode_steps=max_episode_steps)
    if seed is not None:
        env.action_space.seed(int(seed))
    return env


def make_breakout_env(seed: int | None = None, render: bool = False, **kwargs) -> gym.Env:
    """Breakout through :func:`make_atari_env` (the ``env_factory`` older policy files name)."""
    return make_atari_env(BREAKOUT_ID, seed=seed, render=render, **kwargs)


# ----------------------------------------------------------------------------------------------
# One env maker for every agent: Atari preprocessed, image observations never raw
# ----------------------------------------------------------------------------------------------

PREPROCESSED_SHAPE = (SCREEN, SCREEN, FRAME_STACK)


def make_agent_env(env_id: str, seed: int | None = None, render: bool = False, **kwargs) -> gym.Env:
    """The env an agent plays: any Atari game through :func:`make_atari_env` (``kwargs``: ``protocol``,
    ``max_episode_steps``), every other id through :func:`agents.envs.make_env`."""
    if is_atari(env_id):
        return make_atari_env(env_id, seed=seed, render=render, **kwargs)
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
                         f"{shape}; DQN needs Atari preprocessing (84x84 grey, 4-frame stack): use --env breakout "
                         f"(or another Atari game by name)")


ATARI_FACTORY = "agents.atari:make_atari_env"


def atari_policy_extra(env_id: str) -> dict:
    """What a saved policy's ``policy.json`` needs to be played again: the Atari factory and preprocessing."""
    return {"env_factory": ATARI_FACTORY, "preprocessing": PREPROCESSING} if is_atari(env_id) else {}
