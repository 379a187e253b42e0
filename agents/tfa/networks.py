"""A dueling Q-network for TF-Agents, with DrQ's random shift as a layer that respects ``training``.

TF-Agents 0.19 has ``QNetwork`` (one Dense head) but no dueling head, so the data-efficient
Breakout preset uses this small ``Network``: the Nature-DQN convolutions and Dense 512 of
HOML's QNetwork, then ``Q = V + A - mean(A)`` (Wang et al. 2016), as
:func:`agents.networks.dueling_combine` does for the hand-written agents.

``DqnAgent``/``DdqnAgent`` call the online network with ``training=True`` for the TD loss's
``Q(s, a)`` only; the next-state values (online argmax and target) are computed with
``training=False``, so in TF-Agents the shift applies to the current observations, not to the
next ones as in Dopamine's DrQ. The collect and greedy policies never shift.
"""
from __future__ import annotations

import tensorflow as tf
from tf_agents.networks import network

from agents.augment import random_shift


class RandomShift(tf.keras.layers.Layer):
    """Shift each stacked frame by up to ``pad`` pixels (edges repeated) when ``training`` is true."""

    def __init__(self, pad: int, seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.pad, self.seed = int(pad), int(seed)
        self._generator = tf.random.Generator.from_seed(self.seed) if self.pad else None

    def call(self, frames, training=False):
        if not training or self._generator is None:
            return frames
        return random_shift(frames, self.pad, self._generator)

    def get_config(self):
        return {**super().get_config(), "pad": self.pad, "seed": self.seed}


class AtariQNetwork(network.Network):
    """``[B, 84, 84, 4] uint8 -> [B, A]``: shift (training only), scale, convolutions, Dense, dueling or plain head."""

    def __init__(self, observation_spec, action_spec, conv_layer_params, fc_units: int = 512, dueling: bool = True,
                 augment_pad: int = 0, seed: int = 0, name: str = "AtariQNetwork"):
        super().__init__(input_tensor_spec=observation_spec, state_spec=(), name=name)
        n_actions = int(action_spec.maximum - action_spec.minimum + 1)
        self._q_action_spec = action_spec
        self._conv_layer_params, self._fc_units, self._dueling = conv_layer_params, fc_units, dueling
        self._augment_pad, self._seed = augment_pad, seed
        self._shift = RandomShift(augment_pad, seed=seed)
        self._convs = [tf.keras.layers.Conv2D(filters, kernel, strides=stride, activation="relu")
                       for filters, kernel, stride in conv_layer_params]
        self._flatten = tf.keras.layers.Flatten()
        self._hidden = tf.keras.layers.Dense(fc_units, activation="relu")
        self._advantage = tf.keras.layers.Dense(n_actions)
        self._value = tf.keras.layers.Dense(1) if dueling else None

    def copy(self, **kwargs):  # DqnAgent copies the online network into its target network
        kwargs.setdefault("name", self.name + "_copy")
        return type(self)(self.input_tensor_spec, self._q_action_spec, self._conv_layer_params, self._fc_units,
                          self._dueling, self._augment_pad, self._seed, **kwargs)

    def call(self, observation, step_type=None, network_state=(), training=False):
        x = self._shift(observation, training=training)
        x = tf.cast(x, tf.float32) / 255.0  # frames stay uint8 in the replay buffer
        for conv in self._convs:
            x = conv(x)
        x = self._hidden(self._flatten(x))
        advantages = self._advantage(x)  # [B, A]
        if self._value is None:
            return advantages, network_state
        q = self._value(x) + advantages - tf.reduce_mean(advantages, axis=-1, keepdims=True)  # [B, A]
        return q, network_state
