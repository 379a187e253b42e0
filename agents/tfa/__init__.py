"""TF-Agents pipelines (HOML ch. 18): DqnAgent on CartPole, FrozenLake and Breakout.

* :mod:`agents.tfa.envs` -- Gymnasium -> TF-Agents ``PyEnvironment`` adapter, HOML's 4x4 grid env;
* :mod:`agents.tfa.components` -- the QNetwork, DqnAgent, replay buffer, metrics and drivers;
* :mod:`agents.tfa.pipeline` -- ``train_eval`` and ``kcourse run tfa-dqn``.

The config is :class:`agents.configs.TfaDqnConfig`, Breakout's preprocessing :mod:`agents.atari`,
and exported policies load with :func:`agents.policy_files.load_policy` (no TF-Agents needed).

TF-Agents needs Keras 2 (``tf_keras``) as ``tf.keras``: ``agents/__init__.py`` sets
``TF_USE_LEGACY_KERAS=1`` before TensorFlow is imported, and this package checks it once, before
any of its modules imports TF-Agents, with a message saying what to do when it is too late.
"""
from keras_impl import runtime

runtime.require_legacy_keras()
