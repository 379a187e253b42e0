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
:data:`ENV_FACTORIES`, ``env_id`` through Gymnasium's registry. A TensorFlow SavedModel runs its
own graph, so evaluate TF-Agents policies only from a source you trust.

Example:
    >>> from agents.policy_files import load_policy                     # doctest: +SKIP
    >>> from agents.evaluation import evaluate, assert_policy_return   # doctest: +SKIP
    >>> policy, meta = load_policy("agents/trained/cartpole-v1-dqn")    # doctest: +SKIP
    >>> assert_policy_return(policy, meta["env_id"], min_mean=475)      # doctest: +SKIP
"""
from __future__ import annotations

import functools
import json
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
            that is unreadable, not a JSON object, or lacks ``kind``/``env_id``.
    """
    path = Path(path)
    meta_file = path / POLICY_FILE
    if not path.exists():
        raise FileNotFoundError(f"no saved policy at {path}")
    if not meta_file.is_file():
        raise ValueError(f"{path} is not a saved policy: {POLICY_FILE} is missing")
    meta = files.read_json(meta_file, "the policy's metadata")
    if not isinstance(meta, dict):
        raise ValueError(f"{meta_file} is corrupt: expected a JSON object, got {type(meta).__name__} {meta!r:.40}")
    for key in ("kind", "env_id"):
        if not isinstance(meta.get(key), str):
            raise ValueError(f"{meta_file} is missing the {key!r} entry")
    if meta.get("env_factory") is not None:  # refused here, before any model or module is loaded
        names.check(MOVED_FACTORIES.get(meta["env_factory"], meta["env_factory"]), ENV_FACTORIES,
                    f"{meta_file}: field `env_factory`")
    if not isinstance(meta.get("env_kwargs") or {}, dict):
        raise ValueError(f"{meta_file}: field `env_kwargs` must be a JSON object, got {meta['env_kwargs']!r:.60}")
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
    if meta["kind"] not in LOADERS:
        raise ValueError(f"{path}: unknown policy kind {meta['kind']!r}; known: {', '.join(sorted(LOADERS))}")
    return names.resolve(LOADERS[meta["kind"]], LOADERS.values(), "policy loader")(path, meta), meta


def eval_epsilon(meta: dict, override: float | None = None) -> float:
    """The probability of a random action to evaluate a policy with: ``override`` when given, else the
    ``eval_epsilon`` its run reported with (``policy.json``; 0.001 for Breakout), else 0 (greedy)."""
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
