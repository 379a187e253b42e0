"""TF-Agents pipelines (HOML ch. 18): DqnAgent on CartPole, FrozenLake and Breakout.

* :mod:`agents.tfa.envs` -- Gymnasium -> TF-Agents ``PyEnvironment`` adapter, HOML's 4x4 grid env.
* :mod:`agents.tfa.atari` -- Breakout preprocessing (no TF-Agents import).
* :mod:`agents.tfa.config` -- the ``tfa-dqn`` config and its presets.
* :mod:`agents.tfa.pipeline` -- ``train_eval``.
* :mod:`agents.tfa.saved_policy` -- loads an exported policy without TF-Agents.

Importing this package stays cheap (no TensorFlow, no TF-Agents): it registers the ``tfa-dqn``
exercise and the ``tf-agents-saved-policy`` loader of :func:`agents.evaluation.load_policy`.
The heavy names (``train_eval``, ``GymnasiumPyEnvironment``, ``GridEnvironment``, ``make_py_env``)
are imported on first use.
"""
from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

from keras_impl.registry import exercise  # noqa: E402

from agents.tfa import saved_policy  # noqa: E402,F401  (registers the policy loader)
from agents.tfa.config import PRESETS, TfaDqnConfig, resolve  # noqa: E402,F401

_LAZY = {
    "train_eval": "agents.tfa.pipeline",
    "GymnasiumPyEnvironment": "agents.tfa.envs",
    "GridEnvironment": "agents.tfa.envs",
    "make_py_env": "agents.tfa.envs",
    "make_breakout_env": "agents.tfa.atari",
}


def __getattr__(name):  # PEP 562: import TF-Agents only when its names are used
    if name in _LAZY:
        import importlib

        from keras_impl import runtime

        runtime.require_legacy_keras()
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'agents.tfa' has no attribute {name!r}")


@exercise("tfa-dqn", config=TfaDqnConfig, section="reinforcement learning",
          summary="TF-Agents DqnAgent (HOML ch.18) on CartPole / FrozenLake / Breakout: replay buffer, drivers, "
                  "metrics, checkpoints with resume, PolicySaver export, GIF",
          reference="HOML: Breakout average return 7.8 after ~200k agent steps (human ~30); "
                    "CartPole solved = 475+",
          quick={"budget": "quick"})
def run(cfg: TfaDqnConfig, run_dir: Path) -> dict:
    """``kcourse run tfa-dqn``: see :func:`agents.tfa.pipeline.train_eval`."""
    from keras_impl import runtime

    runtime.require_legacy_keras()
    from agents.tfa.pipeline import train_eval

    return train_eval(cfg, run_dir)
