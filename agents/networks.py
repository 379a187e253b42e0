"""Q-networks for the hand-written DQN agents (Keras 3, functional API).

* :func:`mlp_q_network` -- vector observations (CartPole): Dense layers, one output per action.
* :func:`embedding_q_network` -- discrete observations (FrozenLake): the state is a category, not a
  number (state 2 is not "twice" state 1), so the first layer is an ``Embedding`` (exam hint 3).
* :func:`atari_q_network` -- stacked 84x84 frames: the Nature-DQN convolutions
  (32x8x8/4, 64x4x4/2, 64x3x3/1, Dense 512), as HOML's TF-Agents Breakout.
* ``dueling=True`` on any of them replaces the last layer by a dueling head
  ``Q = V + A - mean(A)`` (:func:`dueling_combine`; HOML subtracts ``max(A)``, Wang et al. 2016
  recommend the mean, which keeps the advantages' gradient smoother).

The dueling combination is written with ``keras.ops`` inside the functional graph, so a saved
model loads with plain ``keras.models.load_model`` (no custom objects to register).

Example:
    >>> from agents.networks import mlp_q_network
    >>> q_net = mlp_q_network(obs_dim=4, n_actions=2, hidden=(32, 32), dueling=True)
    >>> q_net.output_shape
    (None, 2)
"""
from __future__ import annotations

from typing import Callable, Sequence

import keras  # Keras 3, never tf.keras in hand-written models
import numpy as np
from keras import layers, ops

from keras_impl.config import invalid


def _check_positive(name: str, value) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise invalid(name, "an integer >= 1", value)


def _check_hidden(hidden) -> tuple[int, ...]:
    hidden = tuple(hidden)
    for units in hidden:
        if not isinstance(units, int) or units < 1:
            raise invalid("hidden", "positive layer sizes", hidden)
    return hidden


def dueling_combine(values, advantages):
    """``Q = V + (A - mean_a A)``: the dueling aggregation (Wang et al. 2016, eq. 9).

    Args:
        values: state values ``[B, 1]``.
        advantages: advantages ``[B, A]``.

    Returns:
        Q-values ``[B, A]``. Subtracting the mean makes V and A identifiable (adding a constant to
        every advantage no longer changes Q).
    """
    return values + (advantages - ops.mean(advantages, axis=-1, keepdims=True))


def q_head(features, n_actions: int, dueling: bool, name: str = "q_values"):
    """The output layer(s): ``Dense(n_actions)``, or a dueling head ``V + A - mean(A)``."""
    if not dueling:
        return layers.Dense(n_actions, name=name)(features)  # [B, A]
    values = layers.Dense(1, name="value")(features)  # [B, 1]
    advantages = layers.Dense(n_actions, name="advantage")(features)  # [B, A]
    return dueling_combine(values, advantages)  # [B, A]


def mlp_q_network(obs_dim: int, n_actions: int, hidden: Sequence[int] = (256, 256), activation: str = "relu",
                  dueling: bool = False, name: str = "mlp_q_network") -> keras.Model:
    """A multilayer-perceptron Q-network ``[B, obs_dim] -> [B, n_actions]``.

    Args:
        obs_dim: size of the observation vector (CartPole: 4).
        n_actions: number of discrete actions (CartPole: 2).
        hidden: units of each hidden layer (SB3 zoo's CartPole: 256, 256; HOML: 32, 32).
        activation: hidden activation (HOML uses ``elu``, the PyTorch tutorial ``relu``).
        dueling: use a dueling head.
    """
    _check_positive("obs_dim", obs_dim)
    _check_positive("n_actions", n_actions)
    hidden = _check_hidden(hidden)
    inputs = keras.Input((obs_dim,), name="obs")
    x = inputs
    for i, units in enumerate(hidden):
        x = layers.Dense(units, activation=activation, name=f"hidden_{i}")(x)
    return keras.Model(inputs, q_head(x, n_actions, dueling), name=name)


def embedding_q_network(n_states: int, n_actions: int, embedding_dim: int = 16, hidden: Sequence[int] = (64,),
                        activation: str = "relu", dueling: bool = False,
                        name: str = "embedding_q_network") -> keras.Model:
    """A Q-network for discrete states ``[B] int -> [B, n_actions]`` whose first layer is an Embedding.

    Args:
        n_states: number of states (FrozenLake 4x4: 16).
        n_actions: number of actions (FrozenLake: 4).
        embedding_dim: size of each state's learned vector.
        hidden: Dense layers after the embedding (may be empty).
        dueling: use a dueling head.
    """
    _check_positive("n_states", n_states)
    _check_positive("n_actions", n_actions)
    _check_positive("embedding_dim", embedding_dim)
    hidden = _check_hidden(hidden)
    inputs = keras.Input((), dtype="int32", name="state")  # [B]
    x = layers.Embedding(n_states, embedding_dim, name="state_embedding")(inputs)  # [B, E]
    for i, units in enumerate(hidden):
        x = layers.Dense(units, activation=activation, name=f"hidden_{i}")(x)
    return keras.Model(inputs, q_head(x, n_actions, dueling), name=name)


def atari_q_network(n_actions: int, frame_shape: Sequence[int] = (84, 84), frames: int = 4, dueling: bool = False,
                    name: str = "atari_q_network") -> keras.Model:
    """The Nature-DQN convolutional Q-network ``[B, 84, 84, 4] uint8 -> [B, n_actions]``.

    Frames arrive as ``uint8`` (4x less replay memory than float32) and are scaled to [0, 1]
    inside the model, so the replay buffer never stores floats.
    """
    _check_positive("n_actions", n_actions)
    _check_positive("frames", frames)
    inputs = keras.Input((*frame_shape, frames), dtype="uint8", name="frames")
    x = layers.Rescaling(1.0 / 255)(ops.cast(inputs, "float32"))
    x = layers.Conv2D(32, 8, strides=4, activation="relu", name="conv_0")(x)
    x = layers.Conv2D(64, 4, strides=2, activation="relu", name="conv_1")(x)
    x = layers.Conv2D(64, 3, strides=1, activation="relu", name="conv_2")(x)
    x = layers.Flatten()(x)
    x = layers.Dense(512, activation="relu", name="hidden_0")(x)
    return keras.Model(inputs, q_head(x, n_actions, dueling), name=name)


def build_q_network(observation_space, action_space, hidden: Sequence[int] = (256, 256), dueling: bool = False,
                    embedding_dim: int = 16, activation: str = "relu") -> keras.Model:
    """Pick the Q-network that fits a Gymnasium observation space.

    ``Discrete`` -> :func:`embedding_q_network`; a 1-D ``Box`` -> :func:`mlp_q_network`;
    a 3-D ``Box`` (stacked frames, channels last) -> :func:`atari_q_network`.

    Raises:
        ValueError: the action space is not ``Discrete`` or the observation space is unsupported.
    """
    if not hasattr(action_space, "n"):
        raise ValueError(f"DQN needs a discrete action space, got {action_space}")
    n_actions = int(action_space.n)
    if hasattr(observation_space, "n") and not getattr(observation_space, "shape", None):
        return embedding_q_network(int(observation_space.n), n_actions, embedding_dim=embedding_dim,
                                   hidden=hidden, activation=activation, dueling=dueling)
    shape = tuple(getattr(observation_space, "shape", ()) or ())
    if len(shape) == 1:
        return mlp_q_network(shape[0], n_actions, hidden=hidden, activation=activation, dueling=dueling)
    if len(shape) == 3:
        return atari_q_network(n_actions, frame_shape=shape[:2], frames=shape[2], dueling=dueling)
    raise ValueError(f"no Q-network for observation space {observation_space}: expected Discrete, a 1-D Box "
                     f"or a 3-D Box of stacked frames")


# ----------------------------------------------------------------------------------------------
# The same forward pass in NumPy, for acting one observation at a time
# ----------------------------------------------------------------------------------------------

NUMPY_ACTIVATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "relu": lambda x: np.maximum(x, 0.0), "tanh": np.tanh, "linear": lambda x: x,
    "elu": lambda x: np.where(x > 0, x, np.expm1(np.minimum(x, 0.0))),
}


def numpy_q_function(weights: Sequence[np.ndarray], activation: str = "relu", dueling: bool = False,
                     embedding: bool = False) -> Callable[[np.ndarray], np.ndarray]:
    """The forward pass of :func:`mlp_q_network` / :func:`embedding_q_network` in NumPy.

    A compiled TensorFlow call costs far more dispatch time than the arithmetic of a small MLP on
    one observation, so DQN acts through this copy (``tests/test_networks.py`` checks it equals
    the Keras model for every kind and head).

    Args:
        weights: the network's ``get_weights()``: ``[embedding table]``, then kernel and bias of
            each hidden layer, then the head's (``advantage`` then ``value`` when dueling: the order
            Keras lists a functional model's weights in, pinned by the tests).
        activation: the hidden layers' activation (a key of :data:`NUMPY_ACTIVATIONS`).
        dueling: the head is ``V + A - mean(A)``.
        embedding: the input is a state index looked up in the first weight.

    Returns:
        ``q(obs [N, obs_dim] or [N] state indices) -> [N, A]``.
    """
    weights = [np.asarray(w) for w in weights]
    act = NUMPY_ACTIVATIONS[activation]
    table, rest = (weights[0], weights[1:]) if embedding else (None, weights)
    head_size = 4 if dueling else 2
    hidden = [(rest[i], rest[i + 1]) for i in range(0, len(rest) - head_size, 2)]
    head = rest[len(rest) - head_size:]

    def q(obs):
        x = table[np.asarray(obs, dtype=np.int64)] if table is not None else np.asarray(obs, dtype=np.float32)
        for kernel, bias in hidden:
            x = act(x @ kernel + bias)
        if dueling:
            advantages, values = x @ head[0] + head[1], x @ head[2] + head[3]  # [N, A], [N, 1]
            return values + advantages - advantages.mean(axis=-1, keepdims=True)
        return x @ head[0] + head[1]  # [N, A]

    return q
