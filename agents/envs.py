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

import gymnasium as gym

# Short names accepted wherever an env id is (CLI flags, configs).
ALIASES = {
    "cartpole": "CartPole-v1",
    "frozenlake": "FrozenLake-v1",
    "frozenlake8x8": "FrozenLake8x8-v1",
    "lunarlander": "LunarLander-v3",
    "breakout": "BreakoutNoFrameskip-v4",
    "movielens": "MovieLensRecommendation-v0",
}

# The environments the course uses, with the extra each needs (None: always installed).
COURSE_ENVS = {
    "CartPole-v1": None,
    "FrozenLake-v1": None,
    "FrozenLake8x8-v1": None,
    "LunarLander-v3": "box2d",
    "BreakoutNoFrameskip-v4": "atari",
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


def resolve_env_id(env_id: str) -> str:
    """Map an alias (``cartpole``) to its id (``CartPole-v1``); ids pass through unchanged."""
    if not isinstance(env_id, str) or not env_id:
        raise ValueError(f"Received an invalid value for argument `env_id`: expected a non-empty string, got {env_id!r}")
    return ALIASES.get(env_id.lower(), env_id)


def available_envs() -> list[str]:
    """The course's environment ids and aliases."""
    return list(COURSE_ENVS) + sorted(ALIASES)


def make_env(env_id: str, seed: int | None = None, render: bool = False, **kwargs) -> gym.Env:
    """Create a Gymnasium environment by id or alias.

    Args:
        env_id: a course id (``CartPole-v1``, ``FrozenLake-v1``, ``LunarLander-v3``,
            ``BreakoutNoFrameskip-v4``...), an alias (``cartpole``, ``frozenlake``...) or any id
            registered with Gymnasium.
        seed: seeds the action and observation spaces; pass it to the first ``reset`` too.
        render: create the env with ``render_mode="rgb_array"`` (works headless).
        **kwargs: passed to ``gymnasium.make`` (``map_name="8x8"``, ``is_slippery=False``...).

    Raises:
        ValueError: unknown id (the message lists the available ones) or a missing extra
            (the message names the pip extra to install).
    """
    env_id = resolve_env_id(env_id)
    extra = COURSE_ENVS.get(env_id)
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
