"""Load a TF-Agents ``PolicySaver`` SavedModel as a batched policy, without TF-Agents.

A saved policy folder holds the SavedModel (``saved_model.pb``, ``variables/``) and a
``policy.json`` in the format of :func:`agents.evaluation.save_policy` with kind
``"tf-agents-saved-policy"``. :func:`load_tfa_saved_policy` is registered in
:data:`agents.evaluation.POLICY_LOADERS`, so::

    from agents.evaluation import load_policy, evaluate
    policy, meta = load_policy("runs/tfa-dqn__0__.../policy")
    evaluate(policy, meta["env_id"], env_kwargs=meta["env_kwargs"], episodes=100)

works in a process that never imports ``tf_agents``: the loader calls ``tf.saved_model.load`` and
builds the ``TimeStep`` inputs of the ``action`` signature by hand. Breakout policies name their
environment factory in ``policy.json`` (``env_factory``); pass it as ``env_factory=``
(:func:`env_factory_for` reads it).
"""
from __future__ import annotations

import importlib
import json
import os
from pathlib import Path
from typing import Any, Callable

import numpy as np

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

from agents import evaluation  # noqa: E402

KIND = "tf-agents-saved-policy"


def write_metadata(path: str | os.PathLike, env_id: str, env_kwargs: dict, observation_space, action_space,
                   config: Any = None, evaluation_result: Any = None, extra: dict | None = None) -> Path:
    """Write ``policy.json`` next to a SavedModel, in :func:`agents.evaluation.save_policy`'s format."""
    from keras_impl import runtime

    meta = {
        "format": "kcourse-policy/1",
        "kind": KIND,
        "env_id": env_id,
        "env_kwargs": dict(env_kwargs or {}),
        "observation_space": evaluation._space_to_dict(observation_space),
        "action_space": evaluation._space_to_dict(action_space),
        "config": json.loads(runtime.to_json(config)) if config is not None else None,
        "evaluation": json.loads(runtime.to_json(evaluation_result)) if evaluation_result is not None else None,
        **(extra or {}),
    }
    return runtime.atomic_write_bytes(Path(path) / evaluation.POLICY_FILE, (runtime.to_json(meta) + "\n").encode())


def _load_saved_model(tf, path: Path):
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


def load_tfa_saved_policy(path: Path, meta: dict) -> evaluation.Policy:
    """A batched greedy policy ``[N, *obs] -> [N]`` from a ``PolicySaver`` folder (no TF-Agents import).

    Raises:
        ValueError: the folder holds no SavedModel with an ``action`` signature.
    """
    import tensorflow as tf

    try:
        saved = _load_saved_model(tf, path)
        action_fn = saved.signatures["action"]
    except (OSError, KeyError, ValueError) as err:
        raise ValueError(f"cannot load the TF-Agents policy SavedModel in {path}: {err}") from None
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


def env_factory_for(meta: dict) -> Callable[..., Any] | None:
    """The ``env_factory`` named in ``policy.json`` (``"module:function"``), or None."""
    name = meta.get("env_factory")
    if not name:
        return None
    module, _, attr = name.partition(":")
    return getattr(importlib.import_module(module), attr)


evaluation.POLICY_LOADERS[KIND] = load_tfa_saved_policy
