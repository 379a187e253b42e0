"""Environment construction shared by every agent (Gymnasium 1.x API).

Example:
    >>> from agents.envs import make_env
    >>> env = make_env("CartPole-v1", seed=0)
    >>> obs, info = env.reset(seed=0)   # seed once, through reset(seed=...)
    >>> obs.shape
    (4,)

Seeding follows Gymnasium: ``make_env`` seeds the action and observation spaces; the caller
passes the same seed to the *first* ``reset(seed=...)`` only, later resets take no seed.
"""
from __future__ import annotations

import functools
import re

import gymnasium as gym

# Short names accepted wherever an env id is (CLI flags, configs).
ALIASES = {
    "cartpole": "CartPole-v1",
    "frozenlake": "FrozenLake-v1",
    "frozenlake8x8": "FrozenLake8x8-v1",
    "lunarlander": "LunarLander-v3",
    "movielens": "MovieLensRecommendation-v0",
}

# The environments the course uses, with the extra each needs (None: always installed).
COURSE_ENVS = {
    "CartPole-v1": None,
    "FrozenLake-v1": None,
    "FrozenLake8x8-v1": None,
    "LunarLander-v3": "box2d",
    "MovieLensRecommendation-v0": None,
}

_EXTRA_MODULE = {"box2d": "Box2D", "atari": "ale_py"}


def _register_atari() -> None:
    """Register ale-py's Atari envs when ale-py is installed (an optional extra, imported on demand)."""
    try:
        import ale_py
    except ImportError:
        return
    gym.register_envs(ale_py)


# Atari games by their normalised name, when ale-py cannot be imported to list them all: enough to
# name the extra that is missing for the games the docs use.
_KNOWN_ATARI = {"breakout": "Breakout", "spaceinvaders": "SpaceInvaders", "pong": "Pong"}
_ATARI_NOISE = re.compile(r"^ale/|-v\d+$|noframeskip|deterministic|[^a-z0-9]")


@functools.lru_cache(maxsize=1)
def _atari_games() -> dict[str, str]:
    """``{normalised name: Gymnasium's game name}`` of every game ale-py registers (``ALE/{Game}-v5``)."""
    _register_atari()
    games = {k[4:-3].lower(): k[4:-3] for k in gym.registry if k.startswith("ALE/") and k.endswith("-v5")}
    return games or dict(_KNOWN_ATARI)


def atari_env_id(env_id: str) -> str | None:
    """``ALE/{Game}-v5`` when ``env_id`` names an Atari game in any spelling, else None.

    ``breakout``, ``BREAKOUT``, ``Breakout-v4``, ``BreakoutNoFrameskip-v4`` and ``ALE/Breakout-v5``
    all give ``ALE/Breakout-v5``; :func:`agents.atari.make_atari_env` creates it with one frame per
    step and the protocol's sticky-action probability set explicitly (never an id's default). RAM
    ids (``Breakout-ram-v4``) are not games in this sense: their observations are not frames.
    """
    if not isinstance(env_id, str) or "ram" in env_id.lower().split("-"):
        return None
    key = _ATARI_NOISE.sub("", env_id.lower())
    game = _atari_games().get(key) if key else None
    return None if game is None else f"ALE/{game}-v5"


def resolve_env_id(env_id: str) -> str:
    """Map an alias (``cartpole``) to its id (``CartPole-v1``) and any spelling of an Atari game to
    ``ALE/{Game}-v5`` (:func:`atari_env_id`); other ids pass through unchanged."""
    if not isinstance(env_id, str) or not env_id:
        raise ValueError(f"Received an invalid value for argument `env_id`: expected a non-empty string, got {env_id!r}")
    if env_id.lower() in ALIASES:
        return ALIASES[env_id.lower()]
    if env_id in COURSE_ENVS:
        return env_id
    return atari_env_id(env_id) or env_id


def available_envs() -> list[str]:
    """The course's environment ids and aliases."""
    return list(COURSE_ENVS) + sorted(ALIASES) + ["any Atari game (breakout, pong, ALE/SpaceInvaders-v5...)"]


def make_env(env_id: str, seed: int | None = None, render: bool = False, **kwargs) -> gym.Env:
    """Create a Gymnasium environment by id or alias.

    Args:
        env_id: a course id (``CartPole-v1``, ``FrozenLake-v1``, ``LunarLander-v3``,
            ``ALE/Breakout-v5``...), an alias (``cartpole``, ``frozenlake``...) or any id
            registered with Gymnasium.
        seed: seeds the action and observation spaces; pass it to the first ``reset`` too.
        render: create the env with ``render_mode="rgb_array"`` (works headless).
        **kwargs: passed to ``gymnasium.make`` (``map_name="8x8"``, ``is_slippery=False``...).

    Raises:
        ValueError: unknown id (the message lists the available ones) or a missing extra
            (the message names the pip extra to install).
    """
    env_id = resolve_env_id(env_id)
    extra = "atari" if env_id.startswith("ALE/") else COURSE_ENVS.get(env_id)
    if extra is not None:
        try:
            __import__(_EXTRA_MODULE[extra])
        except ImportError:
            raise ValueError(
                f"environment {env_id!r} needs the {extra!r} extra: pip install 'kcourse[{extra}]'"
            ) from None
    _register_atari()
    if env_id not in gym.registry:
        raise ValueError(
            f"unknown environment {env_id!r}; available: {', '.join(available_envs())} "
            f"(or any id registered with gymnasium)"
        )
    if render:
        kwargs.setdefault("render_mode", "rgb_array")
    try:
        env = gym.make(env_id, **kwargs)
    except TypeError as err:  # an unexpected keyword argument for this env
        raise ValueError(f"bad arguments for environment {env_id!r}: {err}") from None
    if seed is not None:
        env.action_space.seed(int(seed))
        env.observation_space.seed(int(seed))
    return env
