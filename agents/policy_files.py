"""Saved policies: one folder format for the hand-written agents and the TF-Agents export.

A policy folder holds ``policy.json`` (the format ``kcourse-policy/1``: kind, env id and kwargs,
spaces, training config, evaluation result, extras) beside the model:

* ``model.keras`` for the Keras 3 kinds ``argmax`` (Q-values or scores; greedy), ``softmax``
  (logits: greedy = argmax, stochastic = a sample) and ``bernoulli-left`` (HOML's P(left));
* a TF-Agents ``PolicySaver`` SavedModel for the kind ``tf-agents-saved-policy``, loaded with
  ``tf.saved_model.load`` alone (:func:`load_tfa_saved_policy`: no TF-Agents import);
* ``manifest.json``, the SHA-256 of the model's files, checked before loading (a truncated file
  is named in a one-line error instead of failing deep inside Keras or TensorFlow).

:data:`LOADERS` maps each kind to its loader as a ``"module:function"`` string (a project of
yours can add a kind by adding an entry; nothing registers itself by being imported).

What loading a folder can do (``docs/reliability.md``): ``.keras`` files load in Keras' safe mode
(no Python code from the file runs); ``policy.json`` (not covered by the manifest) is data whose
names resolve only through allow-lists: ``kind`` through :data:`LOADERS`, ``env_factory`` through
:data:`ENV_FACTORIES`, ``env_id`` through Gymnasium's registry. Every field is checked when the file
is read, in one place (:func:`check_metadata`), with one line naming the field and the file; the
file may not choose how episodes are played (``env_kwargs`` cannot set the seed, rendering or an
episode cap). A TensorFlow SavedModel runs its own graph, so evaluate TF-Agents policies only from
a source you trust.

Example:
    >>> from agents.policy_files import load_policy                     # doctest: +SKIP
    >>> from agents.evaluation import evaluate, assert_policy_return   # doctest: +SKIP
    >>> policy, meta = load_policy("agents/trained/cartpole-v1-dqn")    # doctest: +SKIP
    >>> assert_policy_return(policy, meta["env_id"], min_mean=475)      # doctest: +SKIP
"""
from __future__ import annotations

import functools
import inspect
import json
import math
import os
from pathlib import Path
from typing import Any, Callable

import keras
import numpy as np
import tensorflow as tf

from agents.envs import make_env, resolve_env_id
from agents.evaluation import STOCHASTIC_KINDS, Policy, greedy
from agents.evaluation import stochastic as sampling_policy
from keras_impl import files, names
from keras_impl.checkpoints import MANIFEST, verify_manifest, write_manifest

FORMAT = "kcourse-policy/1"
POLICY_FILE = "policy.json"
MODEL_FILE = "model.keras"
KERAS_KINDS = ("argmax", "softmax", "bernoulli-left")
TFA_KIND = "tf-agents-saved-policy"

# kind -> "module:function" loader(path, metadata) -> Policy
LOADERS: dict[str, str] = {
    **{kind: "agents.policy_files:load_keras_policy" for kind in KERAS_KINDS},
    TFA_KIND: "agents.policy_files:load_tfa_saved_policy",
}

# The only functions a policy.json may name as its ``env_factory`` (checked before any import).
# Each is called as ``factory(env_id, seed=..., **env_kwargs)``.
ENV_FACTORIES = ("agents.atari:make_atari_env",)
# Factories named by policy files of older kcourse versions, and where they live now.
MOVED_FACTORIES = {"agents.tfa.atari:make_breakout_env": "agents.atari:make_atari_env",
                   "agents.atari:make_breakout_env": "agents.atari:make_atari_env"}


def space_to_dict(space) -> dict:
    """A Gymnasium space as JSON: type, ``n``, shape, bounds (when small) and dtype."""
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


def policy_metadata(kind: str, env_id: str, env_kwargs: dict | None = None, config: Any = None,
                    evaluation: Any = None, extra: dict | None = None) -> dict:
    """The content of ``policy.json`` (the env is made once to read its spaces)."""
    env_id = resolve_env_id(env_id)
    factory = env_factory_for({**(extra or {}), "env_id": env_id}) or make_env
    env = factory(env_id, **(env_kwargs or {})) if factory is make_env else factory(**(env_kwargs or {}))
    meta = {"format": FORMAT, "kind": kind, "env_id": env_id, "env_kwargs": dict(env_kwargs or {}),
            "observation_space": space_to_dict(env.observation_space),
            "action_space": space_to_dict(env.action_space),
            "config": json.loads(files.to_json(config)) if config is not None else None,
            "evaluation": json.loads(files.to_json(evaluation)) if evaluation is not None else None,
            **(extra or {})}
    env.close()
    return meta


def save_policy(path: str | os.PathLike, model, env_id: str, kind: str = "argmax", env_kwargs: dict | None = None,
                config: Any = None, evaluation: Any = None, extra: dict | None = None) -> Path:
    """Save a Keras 3 policy model and its metadata into folder ``path`` (atomically).

    Args:
        model: a Keras 3 model mapping ``[N, *obs]`` to ``[N, A]`` scores (``kind="argmax"``), to
            ``[N, A]`` logits of a softmax policy (``kind="softmax"``) or to ``[N, 1]`` P(action 0)
            (``kind="bernoulli-left"``, HOML's CartPole policy).
        env_id, env_kwargs: the environment the policy was trained on.
        config: the training config (dataclass or dict); evaluation: its evaluation result.
    """
    if kind not in KERAS_KINDS:
        raise ValueError(f"Received an invalid value for argument `kind`: expected one of {', '.join(KERAS_KINDS)}, "
                         f"got {kind!r}")
    meta = policy_metadata(kind, env_id, env_kwargs, config, evaluation, extra)
    with files.atomic_directory(path) as tmp:
        model.save(tmp / MODEL_FILE)
        (tmp / POLICY_FILE).write_text(files.to_json(meta) + "\n")
        write_manifest(tmp, exclude=(POLICY_FILE,))
    return Path(path)


def write_metadata(folder: str | os.PathLike, meta: dict) -> Path:
    """(Re)write ``policy.json`` in ``folder`` atomically (e.g. beside a TF-Agents SavedModel)."""
    return files.atomic_write_json(Path(folder) / POLICY_FILE, meta)


def policy_folder(path: str | os.PathLike) -> Path:
    """``path`` itself, or ``path/policy`` when ``path`` is a run directory that saved its policy."""
    path = Path(path)
    if not (path / POLICY_FILE).is_file() and (path / "policy" / POLICY_FILE).is_file():
        return path / "policy"
    return path


def read_policy_metadata(path: str | os.PathLike) -> dict:
    """The ``policy.json`` of a saved policy folder, with a one-line error for anything else.

    Raises:
        FileNotFoundError: no such folder. ValueError: not a policy folder, or a ``policy.json``
            that is unreadable or has a bad field (:func:`check_metadata`).
    """
    path = Path(path)
    meta_file = path / POLICY_FILE
    if not path.exists():
        raise FileNotFoundError(f"no saved policy at {path}")
    if not meta_file.is_file():
        raise ValueError(f"{path} is not a saved policy: {POLICY_FILE} is missing")
    return check_metadata(files.read_json(meta_file, "the policy's metadata"), meta_file)


# env_kwargs a policy.json may not set: how an episode is seeded, shown or cut is the evaluation's choice.
EPISODE_CONTROLS = {
    "seed": "the evaluation seeds each episode", "render_mode": "the evaluation decides what is shown",
    "render": "the evaluation decides what is shown", "max_episode_steps": "an episode cap",
    "max_steps": "an episode cap", "max_episode_seconds": "an episode cap",
    "protocol": "the evaluation picks the Atari protocol (kcourse eval --protocol)",
}


def _field_error(meta_file: Path, name: str, expected: str, value) -> ValueError:
    return ValueError(f"{meta_file}: field `{name}`: expected {expected}, got {json.dumps(value, default=str)[:80]}")


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _check_env_kwargs(meta_file: Path, env_id: str, kwargs) -> None:
    """``env_kwargs``: a JSON object of arguments the env takes, none of them an :data:`EPISODE_CONTROLS`."""
    if not isinstance(kwargs, dict):
        raise _field_error(meta_file, "env_kwargs", "a JSON object of the env's arguments", kwargs)
    for key in kwargs:
        if key in EPISODE_CONTROLS:
            raise ValueError(f"{meta_file}: field `env_kwargs` may not set `{key}` ({EPISODE_CONTROLS[key]}); "
                             f"remove it from the file")
    import gymnasium as gym  # the env's own constructor says which arguments it takes

    try:
        creator = gym.envs.registration.load_env_creator(gym.spec(env_id).entry_point)
        parameters = inspect.signature(creator).parameters
    except (gym.error.Error, ImportError, AttributeError, TypeError, ValueError):  # not registered yet (Atari)
        return
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return
    unknown = sorted(set(kwargs) - set(parameters))
    if unknown:
        known = [name for name in parameters if name not in ("self", "render_mode")]
        raise ValueError(f"{meta_file}: field `env_kwargs`: {env_id} takes no argument `{unknown[0]}` "
                         f"(it takes {', '.join(known) or 'none'})")


def check_metadata(meta, meta_file: Path) -> dict:
    """Check every field of a ``policy.json`` before anything uses it; returns ``meta``.

    ``format`` (when present) is :data:`FORMAT`; ``kind`` one of :data:`LOADERS`; ``env_id`` a
    string, an Atari game when ``env_factory`` (a string on :data:`ENV_FACTORIES`) names the Atari
    factory; ``env_kwargs`` as :func:`_check_env_kwargs` says (an Atari factory takes none);
    ``action_space`` a space with ``n >= 1`` (every kind acts in a discrete space); ``eval_epsilon``
    a number in [0, 1]; ``train_seconds`` a number >= 0 and ``env_steps`` an integer >= 0, or absent;
    ``preprocessing`` (Atari) the one this kcourse applies; ``protocol`` one of the Atari protocols;
    ``observation_space``, ``config``, ``evaluation`` JSON objects (or null).

    Raises:
        ValueError: one line naming the first bad field, its value and the file.
    """
    if not isinstance(meta, dict):
        raise ValueError(f"{meta_file} is corrupt: expected a JSON object, got {type(meta).__name__} {meta!r:.40}")
    if "format" in meta and meta["format"] != FORMAT:
        raise _field_error(meta_file, "format", repr(FORMAT), meta["format"])
    for key in ("kind", "env_id"):
        if key not in meta:
            raise ValueError(f"{meta_file} is missing the {key!r} entry")
    if meta["kind"] not in LOADERS:
        raise _field_error(meta_file, "kind", f"one of {', '.join(sorted(LOADERS))}", meta["kind"])
    if not isinstance(meta["env_id"], str) or not meta["env_id"]:
        raise _field_error(meta_file, "env_id", "an environment id", meta["env_id"])
    factory = meta.get("env_factory")
    if factory is not None:  # refused here, before any model or module is loaded
        if not isinstance(factory, str):
            raise _field_error(meta_file, "env_factory", f"one of {', '.join(ENV_FACTORIES)}", factory)
        names.check(MOVED_FACTORIES.get(factory, factory), ENV_FACTORIES, f"{meta_file}: field `env_factory`")
        from agents.atari import check_preprocessing, is_atari

        if not is_atari(meta["env_id"]):
            raise ValueError(f"{meta_file}: field `env_id` is {meta['env_id']!r}, but `env_factory` "
                             f"{factory!r} makes Atari games: the file was edited or mixes two policies")
        if meta.get("env_kwargs"):
            raise _field_error(meta_file, "env_kwargs", "{} for an Atari policy (the factory takes no argument "
                               "from the file)", meta["env_kwargs"])
        check_preprocessing(meta, str(meta_file))
    _check_env_kwargs(meta_file, meta["env_id"], meta.get("env_kwargs") or {})
    space = meta.get("action_space")
    if not isinstance(space, dict) or isinstance(space.get("n"), bool) or not isinstance(space.get("n"), int) \
            or space["n"] < 1:
        raise _field_error(meta_file, "action_space", 'a discrete space {"type": "Discrete", "n": N >= 1}', space)
    epsilon = meta.get("eval_epsilon", 0.0)
    if not (_number(epsilon) and 0 <= epsilon <= 1):
        raise _field_error(meta_file, "eval_epsilon", "a probability in [0, 1]", epsilon)
    if "train_seconds" in meta and not (_number(meta["train_seconds"]) and meta["train_seconds"] >= 0):
        raise _field_error(meta_file, "train_seconds", "a number of seconds >= 0 (or no such field)",
                           meta["train_seconds"])
    steps = meta.get("env_steps", 0)
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise _field_error(meta_file, "env_steps", "an integer >= 0 (or no such field)", steps)
    if "protocol" in meta:
        from agents.atari import PROTOCOLS

        if meta["protocol"] not in PROTOCOLS:
            raise _field_error(meta_file, "protocol", f"one of {', '.join(PROTOCOLS)}", meta["protocol"])
    for key in ("observation_space", "config", "evaluation"):
        if meta.get(key) is not None and not isinstance(meta[key], dict):
            raise _field_error(meta_file, key, "a JSON object", meta[key])
    for key in ("algorithm", "preprocessing"):
        if key in meta and not isinstance(meta[key], str):
            raise _field_error(meta_file, key, "a string", meta[key])
    return meta


def load_keras_model(path: Path):
    """``model.keras`` of a policy folder in Keras' safe mode, or a ``ValueError`` naming the file."""
    try:
        return keras.models.load_model(path / MODEL_FILE, compile=False, safe_mode=True)
    except Exception as err:  # Keras says "File not found" for a corrupt zip: name the file and the cause
        raise ValueError(f"cannot load the policy model {path / MODEL_FILE}: it is missing or corrupt "
                         f"({type(err).__name__})") from None


def load_keras_policy(path: Path, meta: dict) -> Policy:
    """The greedy policy of a Keras policy folder."""
    model = load_keras_model(path)
    if meta["kind"] in ("argmax", "softmax"):  # greedy: the highest score / logit
        return greedy(model)

    def bernoulli_left(obs_batch):  # P(left) > 0.5 -> action 0 (left)
        p_left = np.asarray(model(np.asarray(obs_batch, dtype="float32"), training=False))[:, 0]
        return (p_left <= 0.5).astype(np.int64)

    return bernoulli_left


# ----------------------------------------------------------------------------------------------
# TF-Agents PolicySaver SavedModels, without TF-Agents
# ----------------------------------------------------------------------------------------------


def _load_saved_model(path: Path):
    """``tf.saved_model.load``, registering TFP's type specs first when the model needs them.

    PolicySaver also saves ``policy.distribution()``, whose output is a TFP distribution; TensorFlow
    refuses to load a SavedModel that names a composite type nobody registered. Importing
    TensorFlow Probability (a dependency of its own, not TF-Agents) registers those types.
    """
    try:
        return tf.saved_model.load(str(path))
    except ValueError as err:
        if "has not been registered" not in str(err):
            raise
    import tensorflow_probability  # noqa: F401  (registers tfp.distributions.*_ACTTypeSpec)

    return tf.saved_model.load(str(path))


def load_tfa_saved_policy(path: Path, meta: dict) -> Policy:
    """A batched greedy policy ``[N, *obs] -> [N]`` from a ``PolicySaver`` folder (no TF-Agents import).

    Raises:
        ValueError: the folder holds no readable SavedModel with an ``action`` signature (a
            truncated ``variables/`` file included); the message names the folder.
    """
    try:
        saved = _load_saved_model(path)
        action_fn = saved.signatures["action"]
    except Exception as err:  # TensorFlow raises many types for a damaged SavedModel: one line names it
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ValueError(f"cannot load the TF-Agents policy SavedModel in {path} (missing or corrupt files: "
                         f"{first[:200]})") from None
    # Inputs are the flattened TimeStep, named like 'arg_0_observation' / '0/observation'.
    specs = action_fn.structured_input_signature[1]  # {arg name: TensorSpec}
    fields = {}
    for arg_name, spec in specs.items():
        field = arg_name.rsplit("_0_", 1)[-1]
        if field not in ("step_type", "reward", "discount", "observation"):
            raise ValueError(f"{path}: unexpected input {arg_name!r} in the action signature "
                             f"(a policy with state is not supported)")
        fields[field] = (arg_name, spec)

    def policy(obs_batch):
        obs = np.asarray(obs_batch)
        n = obs.shape[0]
        values = {
            "step_type": np.ones(n, np.int32),  # MID: a feed-forward Q-network ignores it
            "reward": np.zeros(n, np.float32),
            "discount": np.ones(n, np.float32),
            "observation": obs,
        }
        feed = {arg_name: tf.convert_to_tensor(values[field], dtype=spec.dtype)
                for field, (arg_name, spec) in fields.items()}
        return action_fn(**feed)["action"].numpy()  # [N]

    policy.__name__ = f"tfa_policy_{Path(path).name}"
    return policy


# ----------------------------------------------------------------------------------------------
# Loading any kind
# ----------------------------------------------------------------------------------------------


def load_policy(path: str | os.PathLike, stochastic: bool = False, seed: int = 0) -> tuple[Policy, dict]:
    """Load a saved policy folder: ``(batched policy, metadata)``.

    Args:
        path: the folder written by :func:`save_policy` or a TF-Agents export (or a run directory
            holding ``policy/``).
        stochastic: sample actions from the policy's distribution instead of acting greedily
            (``softmax`` and ``bernoulli-left`` kinds only).
        seed: seeds the sampling when ``stochastic``.
    """
    path = policy_folder(path)
    meta = read_policy_metadata(path)
    if (path / MANIFEST).is_file():  # folders saved by kcourse: a damaged model file is named, not loaded
        verify_manifest(path, "saved policy")
    if stochastic:
        if meta["kind"] not in STOCHASTIC_KINDS:
            raise ValueError(f"{path}: a {meta['kind']!r} policy cannot be evaluated stochastically "
                             f"(only {', '.join(STOCHASTIC_KINDS)} policies have an action distribution)")
        return sampling_policy(load_keras_model(path), meta["kind"], seed), meta
    return names.resolve(LOADERS[meta["kind"]], LOADERS.values(), "policy loader")(path, meta), meta


def eval_epsilon(meta: dict, override: float | None = None) -> float:
    """The probability of a random action to evaluate a policy with: ``override`` when given, else the
    ``eval_epsilon`` its run reported with (``policy.json``, checked by :func:`check_metadata`; 0.001 for
    Breakout), else 0 (greedy)."""
    return float(meta.get("eval_epsilon", 0.0) if override is None else override)


def env_factory_for(meta: dict) -> Callable[..., Any] | None:
    """The ``env_factory`` named in ``policy.json`` (``"module:function"``, e.g. Breakout's), or None.

    Only the names in :data:`ENV_FACTORIES` (and their old names in :data:`MOVED_FACTORIES`) are
    resolved; any other string is refused before anything is imported or called.

    Raises:
        ValueError: one line naming the field: a name not on the allow-list.
    """
    name = meta.get("env_factory")
    if name is None:
        return None
    factory = names.resolve(MOVED_FACTORIES.get(name, name), ENV_FACTORIES, "the policy's field `env_factory`")
    from agents.atari import check_preprocessing

    check_preprocessing(meta)  # the only factory is Atari's: frames preprocessed as the policy learned them
    return functools.partial(factory, resolve_env_id(meta.get("env_id") or "breakout"))
