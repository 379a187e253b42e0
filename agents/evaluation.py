"""Evaluation and policy-regression helpers users can import into their own pytest suites.

A *policy* here is a callable that maps a **batch** of observations ``[N, *obs_shape]`` to a
batch of actions ``[N]`` (batching is what makes evaluating a neural policy fast: one model call
per step for all episodes, never ``model.predict`` per step). Wrap a one-observation function
with :func:`from_single`, a Keras Q-network with :func:`greedy`.

Example:
    >>> from agents.evaluation import evaluate, assert_policy_return, from_single
    >>> angle = from_single(lambda obs: 0 if obs[2] < 0 else 1)
    >>> result = evaluate(angle, "CartPole-v1", episodes=20, seed=0)
    >>> result.mean > 30
    True
    >>> assert_policy_return(angle, "CartPole-v1", min_mean=30, episodes=20, seed=0)

Saved policies are folders holding ``policy.json`` (metadata: env id and kwargs, spaces, kind,
training config, evaluation result) and the model; :func:`save_policy` / :func:`load_policy`.
"""
from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any, Callable

import numpy as np

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

from agents.envs import make_env, resolve_env_id  # noqa: E402

Policy = Callable[[np.ndarray], np.ndarray]


# ----------------------------------------------------------------------------------------------
# Policy adapters
# ----------------------------------------------------------------------------------------------


def from_single(fn: Callable[[Any], Any]) -> Policy:
    """Turn ``fn(obs) -> action`` into a batched policy ``[N, ...] -> [N]``."""

    def policy(obs_batch):
        return np.asarray([fn(obs) for obs in obs_batch])

    policy.__name__ = getattr(fn, "__name__", "policy")
    return policy


def greedy(model) -> Policy:
    """``argmax`` over a model's outputs (Q-values or logits), one model call per batch."""

    def policy(obs_batch):
        scores = model(np.asarray(obs_batch), training=False)  # [N, A]
        return np.argmax(np.asarray(scores), axis=-1)

    return policy


def random_policy(action_space, seed: int = 0) -> Policy:
    """Uniformly random actions (a baseline; seeded)."""
    rng = np.random.default_rng(seed)

    def policy(obs_batch):
        return rng.integers(action_space.n, size=len(obs_batch))

    return policy


# ----------------------------------------------------------------------------------------------
# Evaluation
# ----------------------------------------------------------------------------------------------


@dataclasses.dataclass
class EvalResult:
    """The outcome of :func:`evaluate`. ``returns[i]`` is episode ``i``'s (seed ``seed + i``)."""

    mean: float
    std: float
    min: float
    max: float
    returns: list[float]
    lengths: list[int]
    env_id: str
    seed: int

    def __iter__(self):  # allows `mean, std, mn, mx, returns = evaluate(...)`
        return iter((self.mean, self.std, self.min, self.max, self.returns))

    def summary(self) -> str:
        return (f"{self.env_id}: mean {self.mean:.2f} +/- {self.std:.2f} (min {self.min:.1f}, "
                f"max {self.max:.1f}) over {len(self.returns)} episodes, seed {self.seed}")


def evaluate(policy: Policy, env_id: str, episodes: int = 100, seed: int = 0, env_kwargs: dict | None = None,
             max_steps: int | None = None, env_factory: Callable[..., Any] | None = None) -> EvalResult:
    """Run ``episodes`` episodes in lockstep and return their undiscounted returns.

    Episode ``i`` is the first episode of its own environment, reset with ``seed + i``, so the
    result is deterministic for a deterministic policy and independent of ``episodes`` ordering.

    Args:
        policy: batched policy ``[N, *obs] -> [N]`` (greedy or stochastic; a stochastic policy
            should carry its own seeded generator).
        env_id: environment id or alias (see :func:`agents.envs.make_env`).
        episodes: number of episodes (>= 1).
        seed: base seed.
        env_kwargs: passed to ``make_env``.
        max_steps: optional cap on steps per episode, on top of the env's own time limit.
        env_factory: build envs with this instead of ``make_env`` (wrapped envs, e.g. Atari).
    """
    if not isinstance(episodes, (int, np.integer)) or episodes < 1:
        raise ValueError(f"Received an invalid value for argument `episodes`: expected an integer >= 1, got {episodes!r}")
    env_id = resolve_env_id(env_id)
    env_kwargs = dict(env_kwargs or {})
    factory = env_factory or (lambda **kw: make_env(env_id, **kw))
    envs = [factory(seed=seed + i, **env_kwargs) for i in range(episodes)]
    try:
        obs = [env.reset(seed=seed + i)[0] for i, env in enumerate(envs)]
        returns = np.zeros(episodes, dtype=np.float64)
        lengths = np.zeros(episodes, dtype=np.int64)
        live = np.ones(episodes, dtype=bool)
        while live.any():
            idx = np.flatnonzero(live)
            actions = np.asarray(policy(np.stack([obs[i] for i in idx])))
            if actions.shape[0] != len(idx):
                raise ValueError(f"policy returned {actions.shape[0]} actions for a batch of {len(idx)} observations")
            for i, action in zip(idx, actions):
                action = action.item() if np.ndim(action) == 0 else action
                obs[i], reward, terminated, truncated, _ = envs[i].step(action)
                returns[i] += float(reward)
                lengths[i] += 1
                if terminated or truncated or (max_steps is not None and lengths[i] >= max_steps):
                    live[i] = False
    finally:
        for env in envs:
            env.close()
    return EvalResult(mean=float(returns.mean()), std=float(returns.std()), min=float(returns.min()),
                      max=float(returns.max()), returns=returns.tolist(), lengths=lengths.tolist(),
                      env_id=env_id, seed=seed)


def assert_policy_return(policy: Policy, env_id: str, min_mean: float, episodes: int = 100, seed: int = 0,
                         **kwargs) -> EvalResult:
    """Fail (``AssertionError``) unless the policy's mean return is at least ``min_mean``.

    The message shows the mean, the threshold and every episode's return, so a regression in CI
    says how far off the policy is. Returns the :class:`EvalResult` when it passes.
    """
    result = evaluate(policy, env_id, episodes=episodes, seed=seed, **kwargs)
    if not result.mean >= min_mean:
        shown = ", ".join(f"{r:g}" for r in result.returns)
        raise AssertionError(
            f"policy mean return {result.mean:.2f} < required {min_mean:g} on {result.env_id} "
            f"({episodes} episodes, seed {seed}); returns: [{shown}]"
        )
    return result


# ----------------------------------------------------------------------------------------------
# Saving and loading policies with their metadata
# ----------------------------------------------------------------------------------------------

POLICY_FILE = "policy.json"
MODEL_FILE = "model.keras"

# kind -> loader(path, metadata) -> Policy. Other modules add kinds (e.g. TF-Agents' SavedModel).
POLICY_LOADERS: dict[str, Callable[[Path, dict], Policy]] = {}


def _space_to_dict(space) -> dict:
    out = {"type": type(space).__name__}
    if hasattr(space, "n"):
        out["n"] = int(space.n)
    if getattr(space, "shape", None) is not None:
        out["shape"] = list(space.shape)
    if hasattr(space, "low") and np.size(space.low) <= 64:
        out["low"] = np.asarray(space.low).tolist()
        out["high"] = np.asarray(space.high).tolist()
    if getattr(space, "dtype", None) is not None:
        out["dtype"] = str(space.dtype)
    return out


def save_policy(path: str | os.PathLike, model, env_id: str, kind: str = "argmax", env_kwargs: dict | None = None,
                config: Any = None, evaluation: EvalResult | dict | None = None, extra: dict | None = None) -> Path:
    """Save a Keras 3 policy model and its metadata into folder ``path`` (atomically).

    Args:
        model: a Keras 3 model mapping ``[N, *obs]`` to ``[N, A]`` scores (``kind="argmax"``) or to
            ``[N, 1]`` P(action 0) (``kind="bernoulli-left"``, HOML's CartPole policy).
        env_id, env_kwargs: the environment the policy was trained on.
        config: the training config (dataclass or dict); evaluation: its evaluation result.
    """
    from keras_impl import runtime

    if kind not in ("argmax", "bernoulli-left"):
        raise ValueError(f"Received an invalid value for argument `kind`: expected 'argmax' or 'bernoulli-left', got {kind!r}")
    env_id = resolve_env_id(env_id)
    env = make_env(env_id, **(env_kwargs or {}))
    meta = {
        "format": "kcourse-policy/1",
        "kind": kind,
        "env_id": env_id,
        "env_kwargs": dict(env_kwargs or {}),
        "observation_space": _space_to_dict(env.observation_space),
        "action_space": _space_to_dict(env.action_space),
        "config": json.loads(runtime.to_json(config)) if config is not None else None,
        "evaluation": json.loads(runtime.to_json(evaluation)) if evaluation is not None else None,
        **(extra or {}),
    }
    env.close()
    with runtime.atomic_directory(path) as tmp:
        model.save(tmp / MODEL_FILE)
        (tmp / POLICY_FILE).write_text(runtime.to_json(meta) + "\n")
    return Path(path)


def read_policy_metadata(path: str | os.PathLike) -> dict:
    """The ``policy.json`` of a saved policy folder, with clear errors for bad folders."""
    path = Path(path)
    meta_file = path / POLICY_FILE
    if not path.exists():
        raise FileNotFoundError(f"no saved policy at {path}")
    if not meta_file.is_file():
        raise ValueError(f"{path} is not a saved policy: {POLICY_FILE} is missing")
    try:
        meta = json.loads(meta_file.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{meta_file} is corrupt: {err}") from None
    for key in ("kind", "env_id"):
        if key not in meta:
            raise ValueError(f"{meta_file} is missing the {key!r} entry")
    return meta


def _load_keras(path: Path, meta: dict) -> Policy:
    import keras

    try:
        model = keras.models.load_model(path / MODEL_FILE, compile=False)
    except Exception as err:
        raise ValueError(f"cannot load the policy model {path / MODEL_FILE}: {err}") from None
    if meta["kind"] == "argmax":
        return greedy(model)

    def bernoulli_left(obs_batch):  # P(left) > 0.5 -> action 0 (left)
        p_left = np.asarray(model(np.asarray(obs_batch, dtype="float32"), training=False))[:, 0]
        return (p_left <= 0.5).astype(np.int64)

    return bernoulli_left


POLICY_LOADERS["argmax"] = _load_keras
POLICY_LOADERS["bernoulli-left"] = _load_keras


def load_policy(path: str | os.PathLike) -> tuple[Policy, dict]:
    """Load a saved policy folder: ``(batched greedy policy, metadata)``."""
    path = Path(path)
    meta = read_policy_metadata(path)
    loader = POLICY_LOADERS.get(meta["kind"])
    if loader is None and meta["kind"].startswith("tf-agents"):
        import agents.tfa  # noqa: F401  (registers the TF-Agents SavedModel loader)

        loader = POLICY_LOADERS.get(meta["kind"])
    if loader is None:
        raise ValueError(f"{path}: unknown policy kind {meta['kind']!r}; known: {', '.join(sorted(POLICY_LOADERS))}")
    return loader(path, meta), meta
