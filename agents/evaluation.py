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

A stochastic policy samples from the model's distribution with its own seeded generator
(:func:`stochastic`), so a seeded evaluation stays deterministic. On the command line::

    kcourse eval runs/policy-gradient__1__.../policy --episodes 100 --seed 0 --render gif
    kcourse eval random --env CartPole-v1 --episodes 20

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


STOCHASTIC_KINDS = ("softmax", "bernoulli-left")


def stochastic(model, kind: str = "softmax", seed: int = 0) -> Policy:
    """Sample actions from a policy model's distribution (seeded: deterministic per seed).

    Args:
        model: a Keras model; ``kind="softmax"``: ``[N, A]`` logits; ``kind="bernoulli-left"``:
            ``[N, 1]`` P(action 0) (HOML's CartPole net).
        kind: which output the model has.
        seed: seeds the generator the actions are drawn with.
    """
    if kind not in STOCHASTIC_KINDS:
        raise ValueError(f"Received an invalid value for argument `kind`: expected one of {', '.join(STOCHASTIC_KINDS)}, "
                         f"got {kind!r} (an 'argmax' policy has no action distribution to sample)")
    rng = np.random.default_rng(seed)

    def policy(obs_batch):
        out = np.asarray(model(np.asarray(obs_batch, dtype="float32"), training=False), dtype=np.float64)
        if kind == "bernoulli-left":
            return (rng.random(len(out)) > out[:, 0]).astype(np.int64)  # P(left) -> action 0
        probs = np.exp(out - out.max(axis=-1, keepdims=True))  # softmax of the logits  [N, A]
        cdf = np.cumsum(probs, axis=-1)
        u = rng.random((len(out), 1)) * cdf[:, -1:]
        return np.minimum((cdf <= u).sum(axis=-1), out.shape[-1] - 1)

    return policy


_sampling_policy = stochastic  # `load_policy` has an argument named `stochastic`

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
# Kinds of saved Keras 3 models: "argmax" (Q-values or scores; greedy only), "softmax" (logits of a
# softmax policy: greedy = argmax, stochastic = a sample), "bernoulli-left" (HOML's sigmoid P(left)).
KERAS_KINDS = ("argmax", "softmax", "bernoulli-left")
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
        model: a Keras 3 model mapping ``[N, *obs]`` to ``[N, A]`` scores (``kind="argmax"``), to
            ``[N, A]`` logits of a softmax policy (``kind="softmax"``) or to ``[N, 1]`` P(action 0)
            (``kind="bernoulli-left"``, HOML's CartPole policy).
        env_id, env_kwargs: the environment the policy was trained on.
        config: the training config (dataclass or dict); evaluation: its evaluation result.
    """
    from keras_impl import runtime

    if kind not in KERAS_KINDS:
        raise ValueError(f"Received an invalid value for argument `kind`: expected one of {', '.join(KERAS_KINDS)}, "
                         f"got {kind!r}")
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
    if meta["kind"] in ("argmax", "softmax"):  # greedy: the highest score / logit
        return greedy(model)

    def bernoulli_left(obs_batch):  # P(left) > 0.5 -> action 0 (left)
        p_left = np.asarray(model(np.asarray(obs_batch, dtype="float32"), training=False))[:, 0]
        return (p_left <= 0.5).astype(np.int64)

    return bernoulli_left


POLICY_LOADERS["argmax"] = _load_keras
POLICY_LOADERS["bernoulli-left"] = _load_keras
POLICY_LOADERS["softmax"] = _load_keras


def load_policy(path: str | os.PathLike, stochastic: bool = False, seed: int = 0) -> tuple[Policy, dict]:
    """Load a saved policy folder: ``(batched policy, metadata)``.

    Args:
        path: the folder written by :func:`save_policy` (or a run directory holding ``policy/``).
        stochastic: sample actions from the policy's distribution instead of acting greedily
            (``softmax`` and ``bernoulli-left`` kinds only).
        seed: seeds the sampling when ``stochastic``.
    """
    path = Path(path)
    if not (path / POLICY_FILE).is_file() and (path / "policy" / POLICY_FILE).is_file():
        path = path / "policy"  # a run directory of an exercise that saved its policy
    meta = read_policy_metadata(path)
    if stochastic:
        if meta["kind"] not in STOCHASTIC_KINDS:
            raise ValueError(f"{path}: a {meta['kind']!r} policy cannot be evaluated stochastically "
                             f"(only {', '.join(STOCHASTIC_KINDS)} policies have an action distribution)")
        import keras

        try:
            model = keras.models.load_model(path / MODEL_FILE, compile=False)
        except Exception as err:
            raise ValueError(f"cannot load the policy model {path / MODEL_FILE}: {err}") from None
        return _sampling_policy(model, meta["kind"], seed), meta
    loader = POLICY_LOADERS.get(meta["kind"])
    if loader is None and meta["kind"].startswith("tf-agents"):
        import agents.tfa  # noqa: F401  (registers the TF-Agents SavedModel loader)

        loader = POLICY_LOADERS.get(meta["kind"])
    if loader is None:
        raise ValueError(f"{path}: unknown policy kind {meta['kind']!r}; known: {', '.join(sorted(POLICY_LOADERS))}")
    return loader(path, meta), meta


# ----------------------------------------------------------------------------------------------
# kcourse eval POLICY
# ----------------------------------------------------------------------------------------------


def _check_spaces(meta: dict, env_id: str, env_kwargs: dict) -> None:
    """A clear error when ``--env`` names an env whose spaces differ from the policy's."""
    env = make_env(env_id, **env_kwargs)
    try:
        for key, space in (("observation_space", env.observation_space), ("action_space", env.action_space)):
            saved = meta.get(key)
            here = _space_to_dict(space)
            if saved and (saved.get("shape") != here.get("shape") or saved.get("n") != here.get("n")):
                raise ValueError(f"the policy was trained on {meta['env_id']} and cannot act in {env_id}: its "
                                 f"{key.replace('_', ' ')} differs (saved {saved}, {env_id} has {here})")
    finally:
        env.close()


def eval_main(args) -> int:
    """``kcourse eval``: evaluate a saved policy (or ``random``) and print the result."""
    seed = int(args.seed)
    if args.episodes < 1:
        raise ValueError(f"Received an invalid value for argument `--episodes`: expected >= 1, got {args.episodes}")
    if args.policy == "random":
        if not args.env:
            raise ValueError("`kcourse eval random` needs --env ID")
        env_id, env_kwargs = resolve_env_id(args.env), {}
        probe = make_env(env_id, seed=seed)
        policy, meta = random_policy(probe.action_space, seed), {"kind": "random", "env_id": env_id}
        probe.close()
    else:
        policy, meta = load_policy(args.policy, stochastic=args.stochastic, seed=seed)
        env_kwargs = dict(meta.get("env_kwargs") or {})
        env_id = meta["env_id"]
        if args.env and resolve_env_id(args.env) != env_id:
            env_id, env_kwargs = resolve_env_id(args.env), {}
            _check_spaces(meta, env_id, env_kwargs)
    result = evaluate(policy, env_id, episodes=args.episodes, seed=seed, env_kwargs=env_kwargs)
    mode = "stochastic" if args.stochastic else "greedy"
    print(f"{args.policy} ({meta['kind']}, {mode}) on {result.summary()}")
    print("returns: [" + ", ".join(f"{r:g}" for r in result.returns) + "]")
    if args.render:
        from agents import render

        out = Path(args.render_out) if args.render_out else Path(f"eval_{env_id}_seed{seed}.{args.render}")
        if out.suffix.lower() != f".{args.render}":
            raise ValueError(f"Received an invalid value for argument `--render-out`: expected a .{args.render} file, "
                             f"got {str(out)!r}")
        frames = render.record_episode(policy, env_id, seed=seed, env_kwargs=env_kwargs, max_steps=args.render_steps)
        render.write_video(frames, out)
        print(f"wrote {out} ({len(frames)} frames, episode seed {seed})")
    if args.json:
        from keras_impl import runtime

        runtime.atomic_write_json(args.json, {"policy": str(args.policy), "mode": mode, **dataclasses.asdict(result)})
    if args.min_mean is not None and not result.mean >= args.min_mean:
        print(f"FAIL: mean {result.mean:.2f} < --min-mean {args.min_mean:g}")
        return 1
    return 0


def _configure_eval(sub) -> None:
    sub.add_argument("policy", help="saved policy folder (or a run directory holding policy/), or `random`")
    sub.add_argument("--env", default=None, help="environment id or alias (default: the one the policy was trained on)")
    sub.add_argument("--episodes", type=int, default=100, help="episodes (default: 100)")
    sub.add_argument("--seed", type=int, default=0, help="episode i is reset with seed + i (default: 0)")
    sub.add_argument("--stochastic", action="store_true",
                     help="sample actions from the policy's distribution (softmax / bernoulli-left policies)")
    sub.add_argument("--render", choices=("gif", "mp4"), default=None,
                     help="also record the first episode (seed S) as a GIF or MP4")
    sub.add_argument("--render-out", default=None, help="video path (default: eval_{env}_seed{S}.{gif,mp4})")
    sub.add_argument("--render-steps", type=int, default=1000, help="the most steps to record (default: 1000)")
    sub.add_argument("--json", default=None, metavar="PATH", help="also write the result as JSON")
    sub.add_argument("--min-mean", type=float, default=None, help="exit with code 1 when the mean is below this")
    sub.set_defaults(handler=eval_main)


def _register_command() -> None:
    from keras_impl.registry import command

    command("eval", help="evaluate a saved policy: kcourse eval POLICY [--env ID] [--episodes N] [--seed S] "
                         "[--render gif]")(_configure_eval)


_register_command()
