"""DQN, Double DQN, Dueling DQN and Dueling Double DQN in Keras 3, one file, top to bottom.

The course's three CartPole DQNs (HOML chapter 18, the Keras tutorial, the PyTorch tutorial) in
one CleanRL-style agent; every option is a field of :class:`DQNConfig`:

* target network updated hard (copy every ``target_update_interval`` env steps, HOML / SB3) or
  soft (``tau``, Polyak averaging, the PyTorch tutorial's TAU = 0.005);
* ``variant``: ``double`` changes only the next-Q function (:func:`next_q_double`), ``dueling``
  only the network head (:func:`agents.networks.dueling_combine`);
* Huber or MSE loss, gradient clipping by global norm;
* epsilon schedules: linear by step (SB3), linear by episode (HOML), exponential by step
  (PyTorch tutorial), multiplicative per episode (Keras tutorial / exam FrozenLake);
* train frequency, gradient steps per training round, learning starts.

Correctness rules the course code breaks and this file keeps:

* bootstrap on ``terminated`` only: a time-limit truncation still has a future (``truncated`` is
  stored in the replay buffer but never zeroes the target);
* each sample uses its *own* ``terminated`` flag (the exam's FrozenLake used the agent's current one);
* acting never calls ``model.predict`` (tens of ms a call): a ``tf.function`` returns Q-values;
* the update step is compiled with ``tf.function``.

Checkpoints (``run_dir/checkpoints/ckpt-EEEEEE``, every ``checkpoint_every`` episodes and on
Ctrl-C) hold both networks' weights, the optimiser's state, the replay buffer, epsilon, the
counters and the random generators, written atomically with a ``COMPLETE`` sentinel and a SHA-256
manifest. ``--resume RUN_DIR`` continues the run; a corrupt checkpoint is refused with a message
and the previous good one is used.

Run it::

    kcourse run dqn --env CartPole-v1 --variant dueling-double
    kcourse run dqn --resume runs/dqn__0__20260101-120000
"""
from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import math
import os
import re
import time
from pathlib import Path
from typing import Callable, Optional

import numpy as np

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

from agents.envs import make_env, resolve_env_id  # noqa: E402
from agents.networks import build_q_network  # noqa: E402
from agents.replay import ReplayBuffer  # noqa: E402
from keras_impl import runtime  # noqa: E402
from keras_impl.config import arg  # noqa: E402
from keras_impl.registry import exercise  # noqa: E402

VARIANTS = ("dqn", "double", "dueling", "dueling-double")
EPSILON_SCHEDULES = ("linear", "linear-episode", "exponential", "multiplicative")
EVAL_SEED = 10_000  # evaluation episodes use seeds EVAL_SEED + i, never the training seeds


# ----------------------------------------------------------------------------------------------
# Config
# ----------------------------------------------------------------------------------------------


@dataclasses.dataclass
class DQNConfig:
    """Hyperparameters. Defaults: SB3 zoo's tuned CartPole-v1 DQN (rl-baselines3-zoo dqn.yml)."""

    env: str = arg("CartPole-v1", "Gymnasium environment id or alias")
    variant: str = arg("dqn", "which DQN: next-Q by max (dqn) or Double; plain or dueling head", choices=VARIANTS)
    total_timesteps: int = arg(50_000, "environment steps to train for")
    learning_rate: float = arg(2.3e-3, "optimizer learning rate")
    optimizer: str = arg("adam", "adam (SB3, HOML) or adamw with amsgrad (PyTorch tutorial)", choices=("adam", "adamw"))
    buffer_size: int = arg(100_000, "replay buffer capacity (transitions)")
    batch_size: int = arg(64, "transitions per gradient step")
    gamma: float = arg(0.99, "discount factor")
    hidden: tuple[int, ...] = arg((256, 256), "hidden layer sizes of the Q-network, e.g. 256,256")
    activation: str = arg("relu", "hidden activation (HOML: elu)")
    learning_starts: int = arg(1_000, "env steps of pure collection before the first update")
    train_frequency: int = arg(256, "train every this many env steps")
    gradient_steps: int = arg(128, "gradient steps per training round")
    target_update: str = arg("hard", "hard: copy the online net; soft: Polyak with tau", choices=("hard", "soft"))
    target_update_interval: int = arg(10, "env steps between target-network updates")
    tau: float = arg(0.005, "soft-update rate (PyTorch tutorial: 0.005); ignored for hard updates")
    loss: str = arg("huber", "TD loss", choices=("huber", "mse"))
    max_grad_norm: float = arg(10.0, "clip gradients to this global norm (0: no clipping)")
    epsilon_schedule: str = arg("linear", "linear (by step, SB3), linear-episode (HOML), exponential (by step, "
                                "PyTorch tutorial), multiplicative (per episode, Keras tutorial/exam)",
                                choices=EPSILON_SCHEDULES)
    epsilon_start: float = arg(1.0, "initial exploration rate")
    epsilon_end: float = arg(0.04, "final exploration rate")
    exploration_fraction: float = arg(0.16, "linear: fraction of total_timesteps to decay over")
    epsilon_decay_episodes: int = arg(500, "linear-episode: episodes to decay over (HOML: 500)")
    epsilon_decay_steps: float = arg(1000.0, "exponential: EPS_DECAY in steps (PyTorch tutorial: 1000)")
    epsilon_decay_rate: float = arg(0.995, "multiplicative: epsilon *= rate after each episode")
    eval_interval: int = arg(2_000, "env steps between greedy evaluations (0: only at the end)")
    eval_episodes: int = arg(100, "episodes per greedy evaluation")
    target_return: Optional[float] = arg(None, "stop when the greedy evaluation mean reaches this "
                                         "(default: the env's reward_threshold, CartPole-v1: 475; none: never)")
    early_stop: bool = arg(True, "stop training once target_return is reached")
    checkpoint_every: int = arg(50, "save a checkpoint every this many episodes (0: only on Ctrl-C)")
    keep_checkpoints: int = arg(2, "how many recent checkpoints to keep")
    gif: bool = arg(True, "record a GIF of one greedy episode at the end")
    resume: str = arg("", "run dir to resume")
    deterministic: bool = arg(False, "TensorFlow op determinism (same seed, same run)")
    seed: int = arg(0, "random seed")

    @property
    def double(self) -> bool:
        return self.variant in ("double", "dueling-double")

    @property
    def dueling(self) -> bool:
        return self.variant in ("dueling", "dueling-double")

    def validate(self) -> "DQNConfig":
        """Raise ``ValueError`` naming the first invalid field."""
        positive = ("total_timesteps", "buffer_size", "batch_size", "train_frequency", "gradient_steps",
                    "target_update_interval", "eval_episodes", "keep_checkpoints", "epsilon_decay_episodes")
        for name in positive:
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"Received an invalid value for argument `{name}`, expected an integer >= 1, got {value!r}")
        for name in ("learning_starts", "eval_interval", "checkpoint_every"):
            if getattr(self, name) < 0:
                raise ValueError(f"Received an invalid value for argument `{name}`, expected >= 0, got {getattr(self, name)!r}")
        if not 0.0 <= self.gamma <= 1.0:
            raise ValueError(f"Received an invalid value for argument `gamma`, expected 0 <= gamma <= 1, got {self.gamma!r}")
        if not 0.0 < self.tau <= 1.0:
            raise ValueError(f"Received an invalid value for argument `tau`, expected 0 < tau <= 1, got {self.tau!r}")
        if not 0.0 <= self.epsilon_end <= self.epsilon_start <= 1.0:
            raise ValueError("Received invalid values for arguments `epsilon_start`/`epsilon_end`, expected "
                             f"0 <= end <= start <= 1, got start={self.epsilon_start!r}, end={self.epsilon_end!r}")
        if self.learning_rate <= 0:
            raise ValueError(f"Received an invalid value for argument `learning_rate`, expected > 0, got {self.learning_rate!r}")
        return self


# ----------------------------------------------------------------------------------------------
# The math, as small pure functions (tested against hand-worked numbers)
# ----------------------------------------------------------------------------------------------


def epsilon_at(cfg: DQNConfig, step: int, episode: int) -> float:
    """Exploration rate after ``step`` env steps and ``episode`` finished episodes.

    * ``linear``: from start to end over ``exploration_fraction * total_timesteps`` steps (SB3).
    * ``linear-episode``: from start to end over ``epsilon_decay_episodes`` episodes (HOML:
      ``max(1 - episode / 500, 0.01)``).
    * ``exponential``: ``end + (start - end) * exp(-step / epsilon_decay_steps)`` (PyTorch tutorial).
    * ``multiplicative``: ``max(end, start * rate ** episode)`` (Keras tutorial, exam FrozenLake).
    """
    start, end = cfg.epsilon_start, cfg.epsilon_end
    if cfg.epsilon_schedule == "linear":
        span = max(cfg.exploration_fraction * cfg.total_timesteps, 1.0)
        return start + (end - start) * min(1.0, step / span)
    if cfg.epsilon_schedule == "linear-episode":
        return start + (end - start) * min(1.0, episode / cfg.epsilon_decay_episodes)
    if cfg.epsilon_schedule == "exponential":
        return end + (start - end) * math.exp(-step / cfg.epsilon_decay_steps)
    if cfg.epsilon_schedule == "multiplicative":
        return max(end, start * cfg.epsilon_decay_rate ** episode)
    raise ValueError(f"Received an invalid value for argument `epsilon_schedule`, expected one of "
                     f"{', '.join(EPSILON_SCHEDULES)}, got {cfg.epsilon_schedule!r}")


def _tf():
    import tensorflow as tf

    return tf


def next_q_max(q_next_target, q_next_online):
    """DQN: ``max_a' Q_target(s', a')`` -> ``[B]``. (``q_next_online`` is unused.)"""
    return _tf().reduce_max(q_next_target, axis=1)


def next_q_double(q_next_target, q_next_online):
    """Double DQN: the online net picks ``a* = argmax_a' Q_online(s', a')``, the target net values it:
    ``Q_target(s', a*)`` -> ``[B]`` (van Hasselt et al. 2016)."""
    tf = _tf()
    best = tf.argmax(q_next_online, axis=1, output_type=tf.int32)  # [B]
    return tf.gather(q_next_target, best, axis=1, batch_dims=1)  # [B]


def td_target(rewards, next_q, terminated, gamma: float):
    """``r + gamma * (1 - terminated) * next_q`` -> ``[B]``.

    Only ``terminated`` stops the bootstrap; a truncated transition keeps ``gamma * next_q``.
    """
    tf = _tf()
    rewards = tf.cast(rewards, tf.float32)
    terminated = tf.cast(terminated, tf.float32)
    return rewards + gamma * (1.0 - terminated) * tf.cast(next_q, tf.float32)


def td_loss(q_taken, targets, kind: str = "huber"):
    """Mean TD loss over the batch: Huber (delta 1, = PyTorch ``SmoothL1Loss``) or MSE."""
    tf = _tf()
    error = tf.cast(targets, tf.float32) - tf.cast(q_taken, tf.float32)  # [B]
    if kind == "mse":
        return tf.reduce_mean(tf.square(error))
    if kind == "huber":
        abs_error = tf.abs(error)
        quadratic = tf.minimum(abs_error, 1.0)
        return tf.reduce_mean(0.5 * tf.square(quadratic) + (abs_error - quadratic))
    raise ValueError(f"Received an invalid value for argument `loss`, expected 'huber' or 'mse', got {kind!r}")


# ----------------------------------------------------------------------------------------------
# The agent: online + target Q-networks, optimizer, compiled update, acting
# ----------------------------------------------------------------------------------------------


class DQNAgent:
    """Online and target Q-networks with a compiled TD update.

    Args:
        cfg: the config (variant, loss, gamma, optimizer...).
        observation_space, action_space: the environment's spaces.
    """

    def __init__(self, cfg: DQNConfig, observation_space, action_space, embedding_dim: int = 16):
        import keras

        tf = _tf()
        self.cfg = cfg
        self.n_actions = int(action_space.n)
        net_kwargs = dict(hidden=cfg.hidden, dueling=cfg.dueling, activation=cfg.activation, embedding_dim=embedding_dim)
        self.q_net = build_q_network(observation_space, action_space, **net_kwargs)
        self.target_net = build_q_network(observation_space, action_space, **net_kwargs)
        self.target_net.set_weights(self.q_net.get_weights())
        if cfg.optimizer == "adamw":  # the PyTorch tutorial's AdamW(amsgrad=True); torch's weight decay 0.01
            self.optimizer = keras.optimizers.AdamW(cfg.learning_rate, weight_decay=0.01, amsgrad=True)
        else:
            self.optimizer = keras.optimizers.Adam(cfg.learning_rate)
        self.optimizer.build(self.q_net.trainable_variables)  # slots exist before a checkpoint restore
        # Double DQN changes only this function (TF-Agents' DdqnAgent overrides only _compute_next_q_values).
        self.next_q: Callable = next_q_double if cfg.double else next_q_max
        self.rng = np.random.default_rng(cfg.seed)  # exploration
        obs_shape = tuple(observation_space.shape or ())
        obs_dtype = tf.int32 if not obs_shape else tf.as_dtype(self.q_net.inputs[0].dtype)
        spec = tf.TensorSpec((None, *obs_shape), obs_dtype)
        self.obs_dtype = obs_dtype.as_numpy_dtype
        # One trace for any batch size: acting (batch 1) and evaluation (batch N) share it.
        self._q_values = tf.function(lambda obs: self.q_net(obs, training=False), input_signature=[spec])
        self._train_steps = tf.function(self.train_steps, reduce_retracing=True)
        self._update_target = tf.function(self.update_target)
        numpy_ok = self.q_net.name in ("mlp_q_network", "embedding_q_network")
        self._numpy_mlp = self._ACTIVATIONS.get(cfg.activation) if numpy_ok else None
        self._snapshot_stale = True

    # -- acting ---------------------------------------------------------------------------------

    def q_values(self, obs_batch) -> np.ndarray:
        """Q-values ``[N, A]`` of a batch of observations (compiled; no ``model.predict``)."""
        return self._q_values(np.asarray(obs_batch, dtype=self.obs_dtype)).numpy()

    def greedy_policy(self, obs_batch) -> np.ndarray:
        """Batched greedy policy ``[N, *obs] -> [N]`` for :func:`agents.evaluation.evaluate`."""
        return np.argmax(self.q_values(obs_batch), axis=1)

    def act(self, obs, epsilon: float) -> int:
        """Epsilon-greedy action for one observation."""
        if self.rng.random() < epsilon:
            return int(self.rng.integers(self.n_actions))
        if self._numpy_mlp is not None:
            return int(np.argmax(self._numpy_q(np.asarray(obs))))
        return int(np.argmax(self.q_values(np.asarray(obs)[None])[0]))

    # Acting one observation at a time is the hot loop of DQN. Even a compiled tf.function call
    # costs ~0.3-1 ms of Python/runtime dispatch on a CPU, about 30x the arithmetic of a 4-64-64-2
    # MLP, so for MLP Q-networks we act with a NumPy copy of the weights, refreshed lazily after
    # each training round (the weights change only there). The same for Embedding Q-networks
    # (a table lookup, then the MLP). Convolutional networks use the tf.function.
    _ACTIVATIONS = {"relu": lambda x: np.maximum(x, 0.0), "tanh": np.tanh, "linear": lambda x: x,
                    "elu": lambda x: np.where(x > 0, x, np.expm1(np.minimum(x, 0.0)))}

    def weights_changed(self) -> None:
        """Call after setting the online net's weights by hand (refreshes the acting snapshot)."""
        self._snapshot_stale = True

    def _numpy_q(self, obs) -> np.ndarray:
        """Q-values ``[A]`` of one observation from the NumPy weight snapshot (see above)."""
        if self._snapshot_stale:
            layers = [self.q_net.get_layer(f"hidden_{i}") for i in range(len(self.cfg.hidden))]
            heads = ("value", "advantage") if self.cfg.dueling else ("q_values",)
            table = (self.q_net.get_layer("state_embedding").weights[0].numpy()
                     if self.q_net.name == "embedding_q_network" else None)
            self._snapshot = (table, [[w.numpy() for w in layer.weights] for layer in layers],
                              [[w.numpy() for w in self.q_net.get_layer(name).weights] for name in heads])
            self._snapshot_stale = False
        table, hidden, heads = self._snapshot
        x = table[int(obs)] if table is not None else obs.astype(np.float32)
        for kernel, bias in hidden:
            x = self._numpy_mlp(x @ kernel + bias)
        if self.cfg.dueling:
            (wv, bv), (wa, ba) = heads
            advantages = x @ wa + ba
            return x @ wv + bv + advantages - advantages.mean()
        (wq, bq), = heads
        return x @ wq + bq

    # -- learning -------------------------------------------------------------------------------

    def compute_loss(self, obs, actions, rewards, next_obs, terminated):
        """``(loss, td_targets [B], q_taken [B])`` for a batch; the TD target is not differentiated."""
        tf = _tf()
        q_next_target = self.target_net(next_obs, training=False)  # [B, A]
        q_next_online = self.q_net(next_obs, training=False) if self.cfg.double else q_next_target  # [B, A]
        targets = tf.stop_gradient(td_target(rewards, self.next_q(q_next_target, q_next_online), terminated,
                                             self.cfg.gamma))  # [B]
        q_all = self.q_net(obs, training=True)  # [B, A]
        q_taken = tf.gather(q_all, tf.cast(actions, tf.int32), axis=1, batch_dims=1)  # [B]
        return td_loss(q_taken, targets, self.cfg.loss), targets, q_taken

    def train_step(self, obs, actions, rewards, next_obs, terminated):
        """One gradient step; returns ``(loss, mean Q of the taken actions)``. Compiled as ``_train_step``."""
        tf = _tf()
        variables = self.q_net.trainable_variables
        with tf.GradientTape() as tape:
            loss, _, q_taken = self.compute_loss(obs, actions, rewards, next_obs, terminated)
        grads = tape.gradient(loss, variables)
        if self.cfg.max_grad_norm > 0:
            grads, _ = tf.clip_by_global_norm(grads, self.cfg.max_grad_norm)
        self.optimizer.apply_gradients(zip(grads, variables))
        return loss, tf.reduce_mean(q_taken)

    def train_steps(self, obs, actions, rewards, next_obs, terminated):
        """``G`` gradient steps in one compiled call; inputs are ``[G, B, ...]``, returns losses and mean Qs ``[G]``.

        One ``tf.function`` call per training round instead of one per step: on a CPU the Python
        dispatch of a call costs about as much as a small network's gradient step.
        """
        tf = _tf()
        steps = tf.shape(actions)[0]
        losses = tf.TensorArray(tf.float32, size=steps)
        q_means = tf.TensorArray(tf.float32, size=steps)
        for g in tf.range(steps):
            loss, q_mean = self.train_step(obs[g], actions[g], rewards[g], next_obs[g], terminated[g])
            losses = losses.write(g, loss)
            q_means = q_means.write(g, q_mean)
        return losses.stack(), q_means.stack()

    def learn(self, buffer: ReplayBuffer, batch_size: int, gradient_steps: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """``gradient_steps`` updates on uniformly sampled replay batches (one compiled call).

        Returns:
            ``(losses [G], mean Q of the taken actions [G])`` as NumPy arrays.
        """
        idx = buffer.sample_indices(gradient_steps * batch_size).reshape(gradient_steps, batch_size)  # [G, B]
        self._snapshot_stale = True
        losses, q_means = self._train_steps(buffer.obs[idx].astype(self.obs_dtype, copy=False), buffer.actions[idx],
                                            buffer.rewards[idx], buffer.next_obs[idx].astype(self.obs_dtype, copy=False),
                                            buffer.terminated[idx])
        return losses.numpy(), q_means.numpy()

    def update_target(self, tau: float = 1.0):
        """``target <- tau * online + (1 - tau) * target`` (tau = 1: hard copy)."""
        for target, online in zip(self.target_net.weights, self.q_net.weights):
            target.assign(tau * online + (1.0 - tau) * target)

    def sync_target(self) -> None:
        """The configured target update: hard copy or soft with ``cfg.tau``."""
        self._update_target(1.0 if self.cfg.target_update == "hard" else float(self.cfg.tau))

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


# ----------------------------------------------------------------------------------------------
# Training state, checkpoints and resume
# ----------------------------------------------------------------------------------------------


@dataclasses.dataclass
class TrainState:
    """Counters and histories saved with every checkpoint."""

    global_step: int = 0
    episode: int = 0
    updates: int = 0
    epsilon: float = 1.0
    train_seconds: float = 0.0
    cpu_seconds: float = 0.0  # process CPU time of training (evaluation excluded): wall time on an idle core
    returns: list = dataclasses.field(default_factory=list)
    lengths: list = dataclasses.field(default_factory=list)
    evals: list = dataclasses.field(default_factory=list)  # [step, episode, mean, std]
    solved_step: Optional[int] = None
    solved_seconds: Optional[float] = None
    best_eval: float = -math.inf


CKPT_PATTERN = re.compile(r"^ckpt-(\d{6,})$")
MANIFEST = "manifest.json"


class CorruptCheckpointError(ValueError):
    """A checkpoint folder that is incomplete or whose files do not match their checksums."""


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def save_checkpoint(run_dir: Path, agent: DQNAgent, buffer: ReplayBuffer, state: TrainState, cfg: DQNConfig,
                    keep: int = 2, best_weights: Optional[list] = None) -> Path:
    """Write ``checkpoints/ckpt-EEEEEE`` atomically and prune older ones (keeping ``keep``)."""
    ckpt_root = Path(run_dir) / "checkpoints"
    path = ckpt_root / f"ckpt-{state.episode:06d}"
    with runtime.atomic_directory(path) as tmp:
        agent.q_net.save_weights(tmp / "q_net.weights.h5")
        agent.target_net.save_weights(tmp / "target_net.weights.h5")
        if best_weights is not None:  # the best evaluated online weights so far
            best = agent.q_net.get_weights()
            agent.q_net.set_weights(best_weights)
            agent.q_net.save_weights(tmp / "best.weights.h5")
            agent.q_net.set_weights(best)
        np.savez(tmp / "optimizer.npz", **agent.optimizer_state())
        (tmp / "replay.npz").write_bytes(buffer.to_bytes())
        meta = {"state": dataclasses.asdict(state), "config": dataclasses.asdict(cfg),
                "rng": {"explore": agent.rng.bit_generator.state, "replay": buffer.rng.bit_generator.state}}
        (tmp / "state.json").write_text(runtime.to_json(meta) + "\n")
        files = sorted(p.name for p in tmp.iterdir())
        (tmp / MANIFEST).write_text(json.dumps({name: _sha256(tmp / name) for name in files}, indent=2) + "\n")
    for old in list_checkpoints(run_dir)[keep:]:
        import shutil

        shutil.rmtree(old, ignore_errors=True)
    return path


def list_checkpoints(run_dir) -> list[Path]:
    """Checkpoint folders of a run, newest first (complete or not)."""
    root = Path(run_dir) / "checkpoints"
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.is_dir() and CKPT_PATTERN.match(p.name)]
    return sorted(found, key=lambda p: int(CKPT_PATTERN.match(p.name).group(1)), reverse=True)


def verify_checkpoint(path: Path) -> dict:
    """Check the ``COMPLETE`` sentinel and every file's SHA-256; return ``state.json``'s content.

    Raises:
        CorruptCheckpointError: saying which check failed.
    """
    path = Path(path)
    if not runtime.is_complete(path):
        raise CorruptCheckpointError(f"checkpoint {path} is incomplete (no {runtime.COMPLETE_MARKER} sentinel: "
                                     f"the save was interrupted)")
    try:
        manifest = json.loads((path / MANIFEST).read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise CorruptCheckpointError(f"checkpoint {path} is corrupt: unreadable {MANIFEST} ({err})") from None
    for name, digest in manifest.items():
        file = path / name
        if not file.is_file():
            raise CorruptCheckpointError(f"checkpoint {path} is corrupt: {name} is missing")
        if _sha256(file) != digest:
            raise CorruptCheckpointError(f"checkpoint {path} is corrupt: {name} does not match its SHA-256 "
                                         f"in {MANIFEST} (truncated or modified)")
    try:
        return json.loads((path / "state.json").read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise CorruptCheckpointError(f"checkpoint {path} is corrupt: state.json ({err})") from None


def latest_good_checkpoint(run_dir, log: Callable[[str], None] = print) -> tuple[Path, dict]:
    """The newest checkpoint that verifies; corrupt newer ones are reported and skipped (kept on disk).

    Raises:
        FileNotFoundError: the run has no checkpoint.
        CorruptCheckpointError: every checkpoint is corrupt (the message lists why).
    """
    candidates = list_checkpoints(run_dir)
    if not candidates:
        raise FileNotFoundError(f"--resume {run_dir}: no checkpoint in {Path(run_dir) / 'checkpoints'}")
    problems = []
    for path in candidates:
        try:
            meta = verify_checkpoint(path)
        except CorruptCheckpointError as err:
            problems.append(str(err))
            log(f"[dqn] refusing {err}; trying the previous checkpoint")
            continue
        return path, meta
    raise CorruptCheckpointError(f"--resume {run_dir}: no usable checkpoint; " + "; ".join(problems))


def load_checkpoint(path: Path, meta: dict, agent: DQNAgent, buffer: ReplayBuffer) -> tuple[TrainState, list]:
    """Restore weights, optimizer, replay buffer and generators.

    Returns:
        ``(saved TrainState, best evaluated weights)``.
    """
    best_weights = None
    if (path / "best.weights.h5").is_file():
        agent.q_net.load_weights(path / "best.weights.h5")
        best_weights = agent.q_net.get_weights()
    agent.q_net.load_weights(path / "q_net.weights.h5")
    agent.target_net.load_weights(path / "target_net.weights.h5")
    agent.weights_changed()
    with np.load(path / "optimizer.npz") as arrays:
        agent.load_optimizer_state({k: arrays[k] for k in arrays.files})
    buffer.from_bytes((path / "replay.npz").read_bytes())
    agent.rng.bit_generator.state = meta["rng"]["explore"]
    buffer.rng.bit_generator.state = meta["rng"]["replay"]
    saved = dict(meta["state"])
    if saved.get("best_eval") is None:
        saved["best_eval"] = -math.inf
    state = TrainState(**saved)
    return state, (best_weights if best_weights is not None else agent.q_net.get_weights())


def merge_resume_config(cfg: DQNConfig, saved: dict) -> DQNConfig:
    """The saved run's config, except fields given a non-default value now (e.g. a larger
    ``--total-timesteps``); ``resume`` is always the new one."""
    defaults = DQNConfig()
    values = {}
    for f in dataclasses.fields(DQNConfig):
        new = getattr(cfg, f.name)
        if f.name in saved and new == getattr(defaults, f.name) and f.name != "resume":
            old = saved[f.name]
            values[f.name] = tuple(old) if isinstance(old, list) else old
        else:
            values[f.name] = new
    return DQNConfig(**values)


# ----------------------------------------------------------------------------------------------
# Training loop
# ----------------------------------------------------------------------------------------------


def resolve_target_return(cfg: DQNConfig, env) -> Optional[float]:
    if cfg.target_return is not None:
        return float(cfg.target_return)
    threshold = getattr(getattr(env, "spec", None), "reward_threshold", None)
    return None if threshold is None else float(threshold)


def train(cfg: DQNConfig, run_dir, log: Callable[[str], None] = print,
          on_update: Optional[Callable[[int, float], None]] = None) -> tuple[DQNAgent, TrainState]:
    """Train (or resume) a DQN agent; checkpoints and TensorBoard logs go to ``run_dir``.

    Args:
        cfg: the config; ``cfg.resume`` set means continue the run in ``run_dir``.
        run_dir: the run directory (created if needed).
        log: where progress lines go.
        on_update: called with ``(update_index, loss)`` for every gradient step, after its training
            round (tests use it to record losses or to simulate Ctrl-C).

    Returns:
        ``(agent, state)``; the agent holds the best evaluated weights when the target was not reached.
    """
    cfg.validate()
    run_dir = Path(run_dir)
    (run_dir / "checkpoints").mkdir(parents=True, exist_ok=True)

    # -- seeding: one block. The env is seeded through its first reset only (Gymnasium's rule).
    runtime.seed_everything(cfg.seed, deterministic=cfg.deterministic)
    env = make_env(cfg.env, seed=cfg.seed)
    agent = DQNAgent(cfg, env.observation_space, env.action_space)
    obs_shape = tuple(env.observation_space.shape or ())
    buffer = ReplayBuffer(cfg.buffer_size, obs_shape, obs_dtype=agent.obs_dtype, seed=cfg.seed + 1)
    state = TrainState(epsilon=cfg.epsilon_start)
    best_weights = agent.q_net.get_weights()
    if cfg.resume:
        path, meta = latest_good_checkpoint(run_dir, log=log)
        state, best_weights = load_checkpoint(path, meta, agent, buffer)
        log(f"[dqn] resumed from {path}: episode {state.episode}, step {state.global_step}, "
            f"epsilon {state.epsilon:.3f}, replay {len(buffer)}")
    target_return = resolve_target_return(cfg, env)
    train_writer, eval_writer = runtime.summary_writers(run_dir)

    def evaluate_now() -> bool:
        """Greedy evaluation: 10 episodes first, all ``eval_episodes`` only if those reach the target."""
        from agents.evaluation import evaluate

        env_kwargs = {}
        screen = evaluate(agent.greedy_policy, cfg.env, episodes=min(10, cfg.eval_episodes), seed=EVAL_SEED,
                          env_kwargs=env_kwargs)
        result = screen
        if cfg.eval_episodes > 10 and (target_return is None or screen.mean >= target_return):
            result = evaluate(agent.greedy_policy, cfg.env, episodes=cfg.eval_episodes, seed=EVAL_SEED,
                              env_kwargs=env_kwargs)
        n = len(result.returns)
        state.evals.append([state.global_step, state.episode, result.mean, result.std, n])
        runtime.log_scalars(eval_writer, state.global_step, {"eval/mean_return": result.mean,
                                                             "eval/episodes": n})
        nonlocal best_weights
        if result.mean > state.best_eval:
            state.best_eval = result.mean
            best_weights = agent.q_net.get_weights()
        log(f"[dqn] step {state.global_step}: greedy eval mean {result.mean:.1f} +/- {result.std:.1f} "
            f"over {n} episodes")
        solved = (target_return is not None and n >= cfg.eval_episodes and result.mean >= target_return)
        if solved and state.solved_step is None:
            state.solved_step = state.global_step
            state.solved_seconds = state.train_seconds + (time.perf_counter() - t_start - t_eval)
        return solved

    obs, _ = env.reset(seed=cfg.seed + state.episode)
    episode_return, episode_length = 0.0, 0
    t_start, t_eval = time.perf_counter(), 0.0
    c_start, c_eval = time.process_time(), 0.0
    last_loss = float("nan")
    try:
        while state.global_step < cfg.total_timesteps:
            # -- act and store
            state.epsilon = epsilon_at(cfg, state.global_step, state.episode)
            action = agent.act(obs, state.epsilon)
            next_obs, reward, terminated, truncated, _ = env.step(action)
            buffer.add(obs, action, reward, next_obs, terminated, truncated)
            obs = next_obs
            state.global_step += 1
            episode_return += float(reward)
            episode_length += 1

            # -- learn: gradient_steps updates every train_frequency steps, after learning_starts
            if state.global_step > cfg.learning_starts and state.global_step % cfg.train_frequency == 0:
                losses, q_means = agent.learn(buffer, cfg.batch_size, cfg.gradient_steps)
                if on_update is not None:
                    for i, loss in enumerate(losses, state.updates + 1):
                        on_update(i, float(loss))
                state.updates += cfg.gradient_steps
                last_loss = float(losses[-1])
                runtime.log_scalars(train_writer, state.global_step, {"losses/td_loss": float(losses.mean()),
                                                                      "losses/q_values": float(q_means.mean())})
            if state.global_step % cfg.target_update_interval == 0:
                agent.sync_target()

            # -- episode end
            if terminated or truncated:
                state.episode += 1
                state.returns.append(episode_return)
                state.lengths.append(episode_length)
                elapsed = state.train_seconds + time.perf_counter() - t_start - t_eval
                runtime.log_scalars(train_writer, state.global_step, {
                    "charts/episodic_return": episode_return, "charts/episodic_length": episode_length,
                    "charts/epsilon": state.epsilon, "charts/mean_return_100": np.mean(state.returns[-100:]),
                    "charts/SPS": state.global_step / max(elapsed, 1e-9)})
                if state.episode % 20 == 0:
                    log(f"[dqn] episode {state.episode} step {state.global_step}: return {episode_return:.1f}, "
                        f"mean100 {np.mean(state.returns[-100:]):.1f}, epsilon {state.epsilon:.3f}, "
                        f"loss {last_loss:.4f}")
                if cfg.checkpoint_every and state.episode % cfg.checkpoint_every == 0:
                    _save(run_dir, agent, buffer, state, cfg, best_weights, t_start, t_eval)
                obs, _ = env.reset()
                episode_return, episode_length = 0.0, 0

            # -- periodic greedy evaluation (its time is not training time)
            if cfg.eval_interval and state.global_step % cfg.eval_interval == 0 and state.global_step > cfg.learning_starts:
                t0, c0 = time.perf_counter(), time.process_time()
                solved = evaluate_now()
                t_eval += time.perf_counter() - t0
                c_eval += time.process_time() - c0
                if solved and cfg.early_stop:
                    log(f"[dqn] solved: greedy mean >= {target_return:g} at step {state.global_step}")
                    break
    except KeyboardInterrupt:
        path = _save(run_dir, agent, buffer, state, cfg, best_weights, t_start, t_eval)
        log(f"[dqn] interrupted: checkpoint {path} saved; continue with "
            f"`kcourse run dqn --resume {run_dir}`")
        raise
    state.train_seconds += time.perf_counter() - t_start - t_eval
    state.cpu_seconds += time.process_time() - c_start - c_eval
    if state.solved_step is None:
        if not state.evals or state.evals[-1][0] != state.global_step:
            evaluate_now()
        if state.best_eval > -math.inf:  # keep the best evaluated weights (HOML keeps best_weights)
            agent.q_net.set_weights(best_weights)
            agent.weights_changed()
    _save(run_dir, agent, buffer, state, cfg, best_weights, None)
    env.close()
    return agent, state


def _save(run_dir, agent, buffer, state, cfg, best_weights, t_start, t_eval: float = 0.0) -> Path:
    saved = dataclasses.replace(state)
    if t_start is not None:  # time so far in this session, without evaluation
        saved.train_seconds = state.train_seconds + time.perf_counter() - t_start - t_eval
    return save_checkpoint(run_dir, agent, buffer, saved, cfg, keep=cfg.keep_checkpoints, best_weights=best_weights)


# ----------------------------------------------------------------------------------------------
# Artifacts: learning curve, GIF
# ----------------------------------------------------------------------------------------------


def moving_mean(values, window: int = 100) -> np.ndarray:
    """Mean of the last ``window`` values at each index (fewer at the start)."""
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return values
    cums = np.cumsum(np.insert(values, 0, 0.0))
    idx = np.arange(1, values.size + 1)
    lo = np.maximum(idx - window, 0)
    return (cums[idx] - cums[lo]) / (idx - lo)


def plot_learning_curve(returns, evals, path, title: str, target: Optional[float] = None) -> Path:
    """Return per episode, its 100-episode mean and the greedy evaluations, against env steps."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    episodes = np.arange(1, len(returns) + 1)
    ax.plot(episodes, returns, color="tab:blue", alpha=0.35, lw=0.8, label="return per episode")
    ax.plot(episodes, moving_mean(returns), color="tab:blue", lw=2, label="100-episode mean")
    if evals:
        ev = np.asarray(evals, dtype=float)
        ax.plot(ev[:, 1], ev[:, 2], "o-", color="tab:red", ms=3, label="greedy evaluation mean")
    if target is not None:
        ax.axhline(target, color="gray", ls="--", lw=1, label=f"target {target:g}")
    ax.set_xlabel("episode")
    ax.set_ylabel("return")
    ax.set_title(title)
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return Path(path)


def record_gif(policy, env_id: str, path, seed: int = 0, env_kwargs: dict | None = None, max_steps: int = 500,
               every: int = 2, scale: int = 2, fps: int = 25) -> tuple[Path, int]:
    """Play one greedy episode (:func:`agents.render.record_episode`) and write it as a GIF.

    Keeps every ``every``-th frame (and the last), downscaled ``scale`` times, so a 500-step
    CartPole episode stays a few hundred KB. Returns ``(path, number of steps played)``.
    """
    from agents import render

    frames = render.record_episode(policy, env_id, seed=seed, max_steps=max_steps, env_kwargs=env_kwargs)
    kept = frames[::every] + ([frames[-1]] if (len(frames) - 1) % every else [])
    render.write_gif([f[::scale, ::scale] for f in kept], path, fps=fps)
    return Path(path), len(frames) - 1


def write_returns_csv(state: TrainState, path) -> Path:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["episode", "return", "length", "mean_100"])
        for i, (ret, length, mean) in enumerate(zip(state.returns, state.lengths, moving_mean(state.returns)), 1):
            writer.writerow([i, ret, length, round(float(mean), 3)])
    return Path(path)


# ----------------------------------------------------------------------------------------------
# The exercise
# ----------------------------------------------------------------------------------------------


@exercise("dqn", config=DQNConfig, section="reinforcement learning",
          summary="DQN / Double / Dueling / Dueling-Double DQN (Keras 3, hand-written) on CartPole-v1",
          reference="HOML: CartPole balanced after ~600 episodes; PyTorch tutorial: 600 episodes on GPU",
          quick={"total_timesteps": 2000, "learning_starts": 500, "eval_interval": 1000, "eval_episodes": 10,
                 "checkpoint_every": 20, "hidden": (64, 64)})
def run(cfg: DQNConfig, run_dir: Path) -> dict:
    """Train, evaluate greedily, write the learning curve, GIF, saved policy and metrics."""
    from agents.evaluation import evaluate, save_policy

    run_dir = Path(run_dir)
    if cfg.resume:
        _, meta = latest_good_checkpoint(run_dir, log=lambda line: None)  # train() reports refusals
        cfg = merge_resume_config(cfg, meta["config"])
        runtime.atomic_write_json(run_dir / "config.json", cfg)
    env_id = resolve_env_id(cfg.env)
    agent, state = train(cfg, run_dir)
    target = resolve_target_return(cfg, make_env(env_id))
    final = evaluate(agent.greedy_policy, env_id, episodes=cfg.eval_episodes, seed=EVAL_SEED)
    artifacts = []
    plot_learning_curve(state.returns, state.evals, run_dir / "learning_curve.png",
                        f"{env_id} {cfg.variant} (seed {cfg.seed})", target)
    write_returns_csv(state, run_dir / "returns.csv")
    artifacts += ["learning_curve.png", "returns.csv"]
    if cfg.gif:
        record_gif(agent.greedy_policy, env_id, run_dir / "agent.gif", seed=EVAL_SEED)
        artifacts.append("agent.gif")
    save_policy(run_dir / "policy", agent.q_net, env_id, config=cfg, evaluation=final,
                extra={"algorithm": f"keras-{cfg.variant}", "env_steps": state.global_step})
    artifacts.append("policy")
    sps = state.global_step / max(state.train_seconds, 1e-9)
    if state.solved_step is not None:
        headline = (f"{cfg.variant}: greedy {cfg.eval_episodes}-episode mean {final.mean:.1f} >= {target:g} "
                    f"at {state.solved_step:,} env steps ({state.solved_seconds:.0f}s, {sps:.0f} steps/s)")
    else:
        headline = (f"{cfg.variant}: greedy {cfg.eval_episodes}-episode mean {final.mean:.1f} after "
                    f"{state.global_step:,} env steps (target {target} not reached; {sps:.0f} steps/s)")
    metrics = {"variant": cfg.variant, "env_steps": state.global_step, "episodes": state.episode,
               "updates": state.updates, "solved_step": state.solved_step, "solved_seconds": state.solved_seconds,
               "train_seconds": state.train_seconds, "train_cpu_seconds": state.cpu_seconds, "steps_per_second": sps, "eval_mean": final.mean,
               "eval_std": final.std, "best_eval": state.best_eval,
               "mean_return_100": float(np.mean(state.returns[-100:])) if state.returns else None}
    return {"headline": headline, "metrics": metrics, "artifacts": artifacts}
