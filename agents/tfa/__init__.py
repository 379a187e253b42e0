"""TF-Agents pipelines (HOML ch. 18): DqnAgent on CartPole, FrozenLake and Breakout.

* :mod:`agents.tfa.envs` -- Gymnasium -> TF-Agents ``PyEnvironment`` adapter, HOML's 4x4 grid env;
* :mod:`agents.tfa.components` -- the QNetwork, DqnAgent, replay buffer, metrics and drivers;
* :mod:`agents.tfa.pipeline` -- ``train_eval`` and ``kcourse run tfa-dqn``.

The config is :class:`agents.configs.TfaDqnConfig`, Breakout's preprocessing :mod:`agents.atari`,
and exported policies load with :func:`agents.policy_files.load_policy` (no TF-Agents needed).

TF-Agents needs Keras 2 (``tf_keras``) as ``tf.keras``: this package sets ``TF_USE_LEGACY_KERAS=1``
(unless set; :func:`keras_impl.process.use_legacy_keras`) before any of its modules imports TF-Agents,
and checks that it took effect, with a message saying what to do when it is too late (``tf.keras``
was already used as Keras 3 in this process).
"""
from keras_impl import process

process.use_legacy_keras()

from keras_impl import runtime  # noqa: E402  (after the variable)

runtime.require_legacy_keras()
