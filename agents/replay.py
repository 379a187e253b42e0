"""Experience replay: a NumPy ring buffer with uniform sampling.

HOML keeps its replay memory in a ``collections.deque``: appending is fast but indexing a deque
is O(n) away from its ends, so sampling a batch from a large memory is slow (see
``benchmarks/replay.py``). Here every field lives in its own preallocated array and a write
pointer goes round: appending writes one row, sampling is one fancy-indexing call per field.

``terminated`` and ``truncated`` are stored apart because they mean different things for the
TD target: a *terminated* transition ends the MDP (no future value), a *truncated* one was cut
by a time limit and its ``next_obs`` still has a future, so DQN must bootstrap through it.

We hand-write this (instead of TF-Agents' ``TFUniformReplayBuffer``) because the hand-written
agents are NumPy-in / tensors-out and must checkpoint the buffer to a plain ``.npz`` file.

Example:
    >>> import numpy as np
    >>> from agents.replay import ReplayBuffer
    >>> buf = ReplayBuffer(capacity=3, obs_shape=(2,), seed=0)
    >>> for i in range(5):
    ...     buf.add(np.full(2, i), i % 2, 1.0, np.full(2, i + 1), terminated=False, truncated=i == 4)
    >>> len(buf), buf.obs[:, 0].tolist()      # the two oldest rows were overwritten
    (3, [3.0, 4.0, 2.0])
    >>> batch = buf.sample(4)
    >>> batch.obs.shape, batch.actions.shape
    ((4, 2), (4,))
"""
from __future__ import annotations

import dataclasses
import io
from typing import Sequence

import numpy as np

FIELDS = ("obs", "actions", "rewards", "next_obs", "terminated", "truncated", "horizons")


@dataclasses.dataclass
class Batch:
    """A sampled batch; every array has the batch size ``B`` as its first dimension."""

    obs: np.ndarray  # [B, *obs_shape]
    actions: np.ndarray  # [B]
    rewards: np.ndarray  # [B] float32
    next_obs: np.ndarray  # [B, *obs_shape]
    terminated: np.ndarray  # [B] float32 (1.0: the episode ended in a terminal state)
    truncated: np.ndarray  # [B] float32 (1.0: cut by a time limit; still bootstrapped)
    horizons: np.ndarray  # [B] float32: how many rewards ``rewards`` sums (1, or k <= n for n-step returns)


class ReplayBuffer:
    """Fixed-capacity FIFO replay memory in preallocated NumPy arrays.

    Args:
        capacity: the number of transitions kept; the oldest is overwritten first.
        obs_shape: shape of one observation (``()`` for a discrete state such as FrozenLake's).
        obs_dtype: dtype of the stored observations (``float32``, ``int32`` for discrete states,
            ``uint8`` for Atari frames).
        action_dtype: dtype of the stored actions.
        seed: seed of the sampling generator (its state is saved by :meth:`state_dict`).
    """

    def __init__(self, capacity: int, obs_shape: Sequence[int] = (), obs_dtype="float32",
                 action_dtype="int64", seed: int | None = None):
        if not isinstance(capacity, (int, np.integer)) or isinstance(capacity, bool) or capacity < 1:
            raise ValueError(f"Received an invalid value for argument `capacity`: expected an integer >= 1, got {capacity!r}")
        self.capacity = int(capacity)
        self.obs_shape = tuple(int(d) for d in obs_shape)
        self.obs = np.zeros((self.capacity, *self.obs_shape), dtype=obs_dtype)
        self.next_obs = np.zeros((self.capacity, *self.obs_shape), dtype=obs_dtype)
        self.actions = np.zeros(self.capacity, dtype=action_dtype)
        self.rewards = np.zeros(self.capacity, dtype=np.float32)
        self.terminated = np.zeros(self.capacity, dtype=np.float32)
        self.truncated = np.zeros(self.capacity, dtype=np.float32)
        self.horizons = np.ones(self.capacity, dtype=np.float32)
        self.pos = 0  # next row to write
        self.size = 0  # rows filled so far (<= capacity)
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return self.size

    def add(self, obs, action, reward, next_obs, terminated: bool, truncated: bool, horizon: int = 1) -> None:
        """Store one transition, overwriting the oldest when the buffer is full.

        ``horizon`` is the number of rewards ``reward`` sums (an n-step transition from
        :class:`NStepWindow`); the TD target then discounts ``next_obs`` by ``gamma ** horizon``.
        """
        i = self.pos
        self.obs[i] = obs
        self.actions[i] = action
        self.rewards[i] = reward
        self.next_obs[i] = next_obs
        self.terminated[i] = float(terminated)
        self.truncated[i] = float(truncated)
        self.horizons[i] = float(horizon)
        self.pos = (i + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def sample_indices(self, batch_size: int) -> np.ndarray:
        """``batch_size`` row indices drawn uniformly with replacement (as HOML and SB3 do)."""
        if self.size == 0:
            raise ValueError("cannot sample from an empty replay buffer; add transitions first")
        return self.rng.integers(0, self.size, size=batch_size)

    def sample(self, batch_size: int) -> Batch:
        """A uniformly sampled :class:`Batch` of ``batch_size`` transitions."""
        idx = self.sample_indices(batch_size)
        return Batch(*(getattr(self, name)[idx] for name in FIELDS))

    # -- checkpointing ---------------------------------------------------------------------------

    def state_dict(self) -> dict:
        """Arrays and counters needed to restore the buffer exactly (only the filled rows)."""
        out = {name: getattr(self, name)[: self.size] for name in FIELDS}
        out.update(capacity=np.int64(self.capacity), pos=np.int64(self.pos), size=np.int64(self.size))
        return out

    def load_state_dict(self, state: dict) -> None:
        """Restore what :meth:`state_dict` returned (the capacity must match)."""
        if int(state["capacity"]) != self.capacity:
            raise ValueError(f"replay buffer capacity mismatch: checkpoint has {int(state['capacity'])}, "
                             f"this buffer has {self.capacity}")
        self.size, self.pos = int(state["size"]), int(state["pos"])
        for name in FIELDS:
            if name in state:  # checkpoints of older versions have no horizons: all 1-step transitions
                getattr(self, name)[: self.size] = state[name]

    def to_bytes(self) -> bytes:
        """The buffer as ``.npz`` bytes (for an atomic checkpoint write)."""
        handle = io.BytesIO()
        np.savez(handle, **self.state_dict())
        return handle.getvalue()

    def from_bytes(self, data: bytes) -> None:
        """Restore from :meth:`to_bytes` output."""
        with np.load(io.BytesIO(data)) as arrays:
            self.load_state_dict({k: arrays[k] for k in arrays.files})


# ----------------------------------------------------------------------------------------------
# n-step transitions
# ----------------------------------------------------------------------------------------------


def n_step_return(rewards, gamma: float) -> float:
    """``r_0 + gamma r_1 + ... + gamma^(k-1) r_(k-1)`` for ``rewards = [r_0, ..., r_(k-1)]``.

    Example:
        >>> n_step_return([1.0, 1.0, 1.0], 0.5)   # 1 + 0.5 + 0.25
        1.75
    """
    return float(sum(r * gamma ** i for i, r in enumerate(rewards)))


class NStepWindow:
    """Turns a stream of 1-step transitions into n-step ones (Sutton & Barto 7.1; Rainbow's "multi-step").

    Each stored transition starts at ``(s_t, a_t)``, carries ``R = n_step_return(r_t .. r_(t+k-1))``,
    ends at ``s_(t+k)`` with that step's ``terminated``/``truncated``, and its horizon ``k``: ``k = n``
    inside an episode, fewer at its end (every pending transition is flushed when the episode
    terminates or is truncated, so a time limit still bootstraps, from ``s_(t+k)`` with ``gamma ** k``).
    ``n = 1`` passes transitions through unchanged.

    Args:
        buffer: where the n-step transitions go (:class:`ReplayBuffer`).
        n: the number of rewards summed.
        gamma: the discount inside the sum.
    """

    def __init__(self, buffer: ReplayBuffer, n: int, gamma: float):
        if not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"Received an invalid value for argument `n`: expected an integer >= 1, got {n!r}")
        self.buffer, self.n, self.gamma = buffer, int(n), float(gamma)
        self._pending: list = []  # [(obs, action, reward)] of the open transitions, oldest first

    def add(self, obs, action, reward, next_obs, terminated: bool, truncated: bool) -> None:
        """One environment step; stores the transitions it completes."""
        self._pending.append((obs, action, float(reward)))
        if terminated or truncated:
            while self._pending:
                self._emit(next_obs, terminated, truncated)
        elif len(self._pending) == self.n:
            self._emit(next_obs, False, False)

    def _emit(self, next_obs, terminated: bool, truncated: bool) -> None:
        obs, action, _ = self._pending[0]
        ret = n_step_return([r for _, _, r in self._pending], self.gamma)
        self.buffer.add(obs, action, ret, next_obs, terminated, truncated, horizon=len(self._pending))
        self._pending.pop(0)
