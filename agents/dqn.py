"""DQN, Double DQN, Dueling DQN and Dueling Double DQN in Keras 3: the math and the agent.

The course's three CartPole DQNs (HOML chapter 18, the Keras tutorial, the PyTorch tutorial) in
one CleanRL-style agent; every option is a field of :class:`agents.configs.DQNConfig`, the
training loop is :mod:`agents.dqn_train`. Variants differ in one function or hook each:

* ``double``: only the next-Q function (:func:`next_q_double` instead of :func:`next_q_max`);
* ``dueling``: only the network head (:func:`agents.networks.dueling_combine`);
* masked actions (MovieLens): only the ``splitter`` hook, as TF-Agents'
  ``observation_and_action_constraint_splitter``: it returns the network's input and a mask of
  legal actions, which :meth:`DQNAgent.act_batch` and the TD target's max respect.

Correctness rules the course code breaks and this file keeps:

* bootstrap on ``terminated`` only: a time-limit truncation still has a future;
* each sample uses its *own* ``terminated`` flag (the exam's FrozenLake used the agent's current one);
* acting never calls ``model.predict`` (tens of ms a call);
* the update step is compiled with ``tf.function``, ``gradient_steps`` of them per call.
"""
from __future__ import annotations

import math
from typing import Callable, Optional

import keras
import numpy as np
import tensorflow as tf

from agents.augment import random_shift
from agents.configs import EPSILON_SCHEDULES, DQNConfig
from agents.evaluation import epsilon_greedy
from agents.networks import NUMPY_ACTIVATIONS, build_q_network, numpy_q_function
from agents.replay import FrameReplay, ReplayBuffer
from keras_impl.config import invalid

# splitter(obs) -> (network input, legal-action mask [.., A] or None); works on NumPy and TF values.
Splitter = Callable[[object], tuple[object, Optional[object]]]

# ----------------------------------------------------------------------------------------------
# The math, as small pure functions (tested against hand-worked numbers)
# ----------------------------------------------------------------------------------------------


def linear_decay(start: float, end: float, t: float, span: float) -> float:
    """``start`` moving linearly to ``end`` over ``span`` units of ``t``, then ``end`` (``start`` while ``t <= 0``)."""
    return start + (end - start) * min(1.0, max(0.0, t / max(span, 1e-12)))


def epsilon_at(cfg: DQNConfig, step: int, episode: int, schedule_timesteps: int | None = None) -> float:
    """Exploration rate after ``step`` env steps and ``episode`` finished episodes.

    * ``linear``: from start to end over ``exploration_fraction * schedule_timesteps`` steps (SB3);
      ``schedule_timesteps`` is the run's ``total_timesteps`` when it started, so resuming with a
      larger total never moves epsilon back (or forward) in time;
    * ``linear-after-warmup``: ``start`` through the ``learning_starts`` warm-up steps, then linear as
      ``linear`` (Dopamine's ``linearly_decaying_epsilon``, DrQ(epsilon));
    * ``linear-episode``: from start to end over ``epsilon_decay_episodes`` episodes (HOML:
      ``max(1 - episode / 500, 0.01)``);
    * ``exponential``: ``end + (start - end) * exp(-step / epsilon_decay_steps)`` (PyTorch tutorial);
    * ``multiplicative``: ``max(end, start * rate ** episode)`` (Keras tutorial, exam FrozenLake).
    """
    start, end = cfg.epsilon_start, cfg.epsilon_end
    span = cfg.exploration_fraction * (schedule_timesteps or cfg.total_timesteps)
    if cfg.epsilon_schedule == "linear":
        return linear_decay(start, end, step, span)
    if cfg.epsilon_schedule == "linear-after-warmup":
        return linear_decay(start, end, step - cfg.learning_starts, span)
    if cfg.epsilon_schedule == "linear-episode":
        return linear_decay(start, end, episode, cfg.epsilon_decay_episodes)
    if cfg.epsilon_schedule == "exponential":
        return end + (start - end) * math.exp(-step / cfg.epsilon_decay_steps)
    if cfg.epsilon_schedule == "multiplicative":
        return max(end, start * cfg.epsilon_decay_rate ** episode)
    raise invalid("epsilon_schedule", f"one of {', '.join(EPSILON_SCHEDULES)}", cfg.epsilon_schedule)


def next_q_max(q_next_target, q_next_online):
    """DQN: ``max_a' Q_target(s', a')`` -> ``[B]``. (``q_next_online`` is unused.)"""
    return tf.reduce_max(q_next_target, axis=1)


def next_q_double(q_next_target, q_next_online):
    """Double DQN: the online net picks ``a* = argmax_a' Q_online(s', a')``, the target net values it:
    ``Q_target(s', a*)`` -> ``[B]`` (van Hasselt et al. 2016)."""
    best = tf.argmax(q_next_online, axis=1, output_type=tf.int32)  # [B]
    return tf.gather(q_next_target, best, axis=1, batch_dims=1)  # [B]


def mask_illegal(q, legal):
    """``q [B, A]`` with illegal actions (``legal`` 0/False) set to ``-inf``, so no max or argmax picks them."""
    return tf.where(tf.cast(legal, tf.bool), tf.cast(q, tf.float32), tf.fill(tf.shape(q), -np.inf))


def masked_next_q(next_q: Callable, q_next_target, q_next_online, legal):
    """``next_q`` (max or Double) over the legal next actions only -> ``[B]``.

    An action already taken (a film already recommended) must not leak its value into the target;
    a row with no legal action left (the end of an episode) has no future value: 0, not ``-inf``.
    """
    value = next_q(mask_illegal(q_next_target, legal), mask_illegal(q_next_online, legal))  # [B]
    return tf.where(tf.reduce_any(tf.cast(legal, tf.bool), axis=1), value, tf.zeros_like(value))


def td_target(rewards, next_q, terminated, gamma):
    """``r + gamma * (1 - terminated) * next_q`` -> ``[B]``.

    Only ``terminated`` stops the bootstrap; a truncated transition keeps ``gamma * next_q``.
    ``gamma`` is a number or ``[B]`` (``gamma ** k`` for n-step transitions of horizon ``k``).
    """
    rewards = tf.cast(rewards, tf.float32)
    terminated = tf.cast(terminated, tf.float32)
    return rewards + gamma * (1.0 - terminated) * tf.cast(next_q, tf.float32)


def td_loss(q_taken, targets, kind: str = "huber"):
    """Mean TD loss over the batch: Huber (delta 1, = PyTorch ``SmoothL1Loss``) or MSE."""
    error = tf.cast(targets, tf.float32) - tf.cast(q_taken, tf.float32)  # [B]
    if kind == "mse":
        return tf.reduce_mean(tf.square(error))
    if kind == "huber":
        abs_error = tf.abs(error)
        quadratic = tf.minimum(abs_error, 1.0)
        return tf.reduce_mean(0.5 * tf.square(quadratic) + (abs_error - quadratic))
    raise invalid("loss", "'huber' or 'mse'", kind)


def masked_argmax(scores: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """``argmax`` over legal actions only: ``scores [E, A]``, ``masks [E, A]`` (1 = legal) -> ``[E]``."""
    return np.argmax(np.where(np.asarray(masks) > 0, scores, -np.inf), axis=1)


def random_legal(masks: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One uniformly drawn legal action per row of ``masks [E, A]`` -> ``[E]``."""
    noise = rng.random(np.shape(masks))
    return np.argmax(np.where(np.asarray(masks) > 0, noise, -1.0), axis=1)


# ----------------------------------------------------------------------------------------------
# The agent: online + target Q-networks, optimizer, compiled update, acting
# ----------------------------------------------------------------------------------------------


class DQNAgent:
    """Online and target Q-networks with a compiled TD update.

    Args:
        cfg: the config (variant, loss, gamma, optimizer, gradient clipping, target update...).
        observation_space, action_space: the environment's spaces (the actions must be discrete).
        embedding_dim: the state embedding's size for discrete observations (FrozenLake).
        splitter: the action-mask hook: ``splitter(obs) -> (network input, legal mask [.., A])``.

    Raises:
        ValueError: a continuous (or otherwise non-discrete) action space.
    """

    def __init__(self, cfg: DQNConfig, observation_space, action_space, embedding_dim: int = 16,
                 splitter: Splitter | None = None):
        if not hasattr(action_space, "n"):
            raise invalid("env", "an environment with a discrete action space (DQN picks one of n actions)",
                          f"{cfg.env} with {action_space}")
        self.cfg, self.splitter = cfg, splitter
        self.n_actions = int(action_space.n)
        net_kwargs = dict(hidden=cfg.hidden, dueling=cfg.dueling, activation=cfg.activation, embedding_dim=embedding_dim)
        self.q_net = build_q_network(observation_space, action_space, **net_kwargs)
        self.target_net = build_q_network(observation_space, action_space, **net_kwargs)
        self.target_net.set_weights(self.q_net.get_weights())
        # DrQ(epsilon)'s target is the online net of the previous step: with a hard copy after every
        # env step and one gradient step per update, the target net equals the online net whenever a
        # TD target is computed. Then the online net gives the target (the same numbers: identical
        # weights, identical ops) and no copy of the weights is made each step.
        self.target_is_online = (cfg.target_update == "hard" and cfg.target_update_interval == 1
                                 and cfg.gradient_steps == 1 and not cfg.target_update_updates)
        if cfg.optimizer == "adamw":  # the PyTorch tutorial's AdamW(amsgrad=True); torch's weight decay 0.01
            self.optimizer = keras.optimizers.AdamW(cfg.learning_rate, weight_decay=0.01, amsgrad=True)
        elif cfg.optimizer == "rmsprop":  # HOML's Breakout (Nature DQN's centered RMSProp)
            self.optimizer = keras.optimizers.RMSprop(cfg.learning_rate, rho=0.95, epsilon=1e-5, centered=True)
        else:
            self.optimizer = keras.optimizers.Adam(cfg.learning_rate, epsilon=cfg.adam_epsilon)
        self.optimizer.build(self.q_net.trainable_variables)  # slots exist before a checkpoint restore
        # Double DQN changes only this function (TF-Agents' DdqnAgent overrides only _compute_next_q_values).
        self.next_q: Callable = next_q_double if cfg.double else next_q_max
        self.rng = np.random.default_rng(cfg.seed)  # exploration
        # DrQ: training batches (never acting) see randomly shifted frames; its own seeded stream.
        self.augment_rng = tf.random.Generator.from_seed(cfg.seed + 2) if cfg.augment_pad else None
        obs_shape = tuple(observation_space.shape or ())
        obs_dtype = tf.int32 if not obs_shape else tf.as_dtype(self.q_net.inputs[0].dtype)
        self.obs_dtype = obs_dtype.as_numpy_dtype
        # One trace for any batch size: acting (batch 1) and evaluation (batch N) share it.
        spec = tf.TensorSpec((None, *obs_shape), obs_dtype)
        self._q_values = tf.function(lambda obs: self.q_net(obs, training=False), input_signature=[spec])
        self._train_steps = tf.function(self.train_steps, reduce_retracing=True, jit_compile=cfg.jit_compile or None)
        self._update_target = tf.function(self.update_target)
        # Acting one observation at a time is DQN's hot loop, and a compiled TensorFlow call's
        # dispatch costs far more than a small MLP's arithmetic there (docs/dqn.md measures it): MLP
        # and Embedding networks act through a NumPy copy of the weights, refreshed after each
        # training round. Convolutional networks use the tf.function.
        self._numpy_ok = len(obs_shape) <= 1 and cfg.activation in NUMPY_ACTIVATIONS
        self._numpy_q = None
        self._numpy_stale = True

    # -- acting ---------------------------------------------------------------------------------

    def q_values(self, obs_batch) -> np.ndarray:
        """Q-values ``[N, A]`` of a batch of observations (compiled; no ``model.predict``)."""
        return self._q_values(np.asarray(obs_batch, dtype=self.obs_dtype)).numpy()

    def greedy_policy(self, obs_batch) -> np.ndarray:
        """Batched greedy policy ``[N, *obs] -> [N]`` for :func:`agents.evaluation.evaluate` (one compiled call)."""
        net_obs, legal = self.splitter(np.asarray(obs_batch)) if self.splitter else (obs_batch, None)
        q = self.q_values(net_obs)  # [N, A]
        return masked_argmax(q, legal) if legal is not None else np.argmax(q, axis=1)

    def epsilon_policy(self, epsilon: float, seed: int = 0):
        """Batched epsilon-greedy policy with its own seeded generator (Atari evaluation's small epsilon)."""
        return epsilon_greedy(self.greedy_policy, self.n_actions, epsilon, seed)

    def weights_changed(self) -> None:
        """Call after setting the online net's weights by hand (refreshes the acting copy)."""
        self._numpy_stale = True

    def _fast_q(self, obs_batch) -> np.ndarray:
        """``[N, A]`` Q-values from the NumPy copy when the network has one, else the tf.function."""
        if not self._numpy_ok:
            return self.q_values(obs_batch)
        if self._numpy_stale:
            self._numpy_q = numpy_q_function(self.q_net.get_weights(), self.cfg.activation, dueling=self.cfg.dueling,
                                             embedding=self.obs_dtype == np.int32)
            self._numpy_stale = False
        return self._numpy_q(np.asarray(obs_batch, dtype=self.obs_dtype))

    def act(self, obs, epsilon: float) -> int:
        """Epsilon-greedy action for one observation (of an environment without action masks)."""
        if self.rng.random() < epsilon:
            return int(self.rng.integers(self.n_actions))
        return int(np.argmax(self._fast_q(np.asarray(obs)[None])[0]))

    def act_batch(self, obs_batch, epsilon: float) -> np.ndarray:
        """Epsilon-greedy actions ``[E]`` for ``E`` observations, legal ones only when there is a splitter."""
        obs_batch = np.asarray(obs_batch)
        net_obs, legal = self.splitter(obs_batch) if self.splitter else (obs_batch, None)
        q = self._fast_q(net_obs)  # [E, A]
        greedy = masked_argmax(q, legal) if legal is not None else np.argmax(q, axis=1)
        if epsilon <= 0:
            return greedy
        legal = legal if legal is not None else np.ones_like(q)
        return np.where(self.rng.random(len(greedy)) < epsilon, random_legal(legal, self.rng), greedy)

    # -- learning -------------------------------------------------------------------------------

    def compute_loss(self, obs, actions, rewards, next_obs, terminated, horizons=None):
        """``(loss, td_targets [B], q_taken [B])`` for a batch; the TD target is not differentiated.

        ``horizons [B]``: how many rewards each ``rewards`` entry sums (n-step returns); the bootstrap
        is then discounted by ``gamma ** horizon``. None: one-step transitions.
        """
        next_in, next_legal = self.splitter(next_obs) if self.splitter else (next_obs, None)
        if self.target_is_online:  # one forward pass serves both (Double DQN's argmax then equals the max)
            q_next_target = q_next_online = self.q_net(next_in, training=False)  # [B, A]
        else:
            q_next_target = self.target_net(next_in, training=False)  # [B, A]
            q_next_online = self.q_net(next_in, training=False) if self.cfg.double else q_next_target  # [B, A]
        if next_legal is None:
            next_q = self.next_q(q_next_target, q_next_online)  # [B]
        else:
            next_q = masked_next_q(self.next_q, q_next_target, q_next_online, next_legal)  # [B]
        gamma = self.cfg.gamma if horizons is None else self.cfg.gamma ** tf.cast(horizons, tf.float32)  # [] or [B]
        targets = tf.stop_gradient(td_target(rewards, next_q, terminated, gamma))  # [B]
        obs_in = self.splitter(obs)[0] if self.splitter else obs
        q_all = self.q_net(obs_in, training=True)  # [B, A]
        q_taken = tf.gather(q_all, tf.cast(actions, tf.int32), axis=1, batch_dims=1)  # [B]
        return td_loss(q_taken, targets, self.cfg.loss), targets, q_taken

    def train_step(self, obs, actions, rewards, next_obs, terminated, horizons):
        """One gradient step; returns ``(loss, mean Q of the taken actions)``."""
        variables = self.q_net.trainable_variables
        if self.augment_rng is not None:  # observations and next observations, each its own shift
            obs = random_shift(obs, self.cfg.augment_pad, self.augment_rng)
            next_obs = random_shift(next_obs, self.cfg.augment_pad, self.augment_rng)
        with tf.GradientTape() as tape:
            loss, _, q_taken = self.compute_loss(obs, actions, rewards, next_obs, terminated, horizons)
        grads = tape.gradient(loss, variables)
        if self.cfg.max_grad_norm > 0:
            grads, _ = tf.clip_by_global_norm(grads, self.cfg.max_grad_norm)
        self.optimizer.apply_gradients(zip(grads, variables))
        return loss, tf.reduce_mean(tf.cast(q_taken, tf.float32))  # (float32 also under mixed_bfloat16)

    def train_steps(self, obs, actions, rewards, next_obs, terminated, horizons):
        """``G`` gradient steps in one compiled call; inputs are ``[G, B, ...]``, returns losses and mean Qs ``[G]``.

        One ``tf.function`` call per training round instead of one per step: on a CPU the Python
        dispatch of a call costs about as much as a small network's gradient step.
        """
        steps = tf.shape(actions)[0]
        losses = tf.TensorArray(tf.float32, size=steps)
        q_means = tf.TensorArray(tf.float32, size=steps)
        period = self.cfg.target_update_updates
        for g in tf.range(steps):
            loss, q_mean = self.train_step(obs[g], actions[g], rewards[g], next_obs[g], terminated[g], horizons[g])
            losses = losses.write(g, loss)
            q_means = q_means.write(g, q_mean)
            if period and self.optimizer.iterations % period == 0:  # target updates between gradient steps
                self.update_target(self._tau)
        return losses.stack(), q_means.stack()

    def learn(self, buffer: ReplayBuffer | FrameReplay, batch_size: int, gradient_steps: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """``gradient_steps`` updates on uniformly sampled replay batches (one compiled call).

        Returns:
            ``(losses [G], mean Q of the taken actions [G])`` as NumPy arrays.
        """
        obs, actions, rewards, next_obs, terminated, horizons = buffer.sample_many(gradient_steps, batch_size)
        self._numpy_stale = True
        losses, q_means = self._train_steps(obs.astype(self.obs_dtype, copy=False), actions, rewards,
                                            next_obs.astype(self.obs_dtype, copy=False), terminated, horizons)
        return losses.numpy(), q_means.numpy()

    def update_target(self, tau: float = 1.0):
        """``target <- tau * online + (1 - tau) * target`` (tau = 1: hard copy)."""
        for target, online in zip(self.target_net.weights, self.q_net.weights):
            target.assign(tau * online + (1.0 - tau) * target)

    @property
    def _tau(self) -> float:
        return 1.0 if self.cfg.target_update == "hard" else float(self.cfg.tau)

    def sync_target(self) -> None:
        """The configured target update: hard copy or soft with ``cfg.tau`` (nothing to copy while
        :attr:`target_is_online`: the target net is only brought up to date for checkpoints)."""
        if not self.target_is_online:
            self._update_target(self._tau)

    # -- state for checkpoints --------------------------------------------------------------------

    def optimizer_state(self) -> dict[str, np.ndarray]:
        return {f"{i:04d}": np.asarray(v.numpy()) for i, v in enumerate(self.optimizer.variables)}

    def load_optimizer_state(self, arrays: dict[str, np.ndarray]) -> None:
        variables = self.optimizer.variables
        if len(arrays) != len(variables):
            raise ValueError(f"optimizer state mismatch: checkpoint has {len(arrays)} variables, "
                             f"this optimizer has {len(variables)} (different network or optimizer?)")
        for i, v in enumerate(variables):
            value = arrays[f"{i:04d}"]
            if tuple(value.shape) != tuple(v.shape):
                raise ValueError(f"optimizer variable {v.path}: checkpoint shape {value.shape} != {tuple(v.shape)}")
            v.assign(value)
