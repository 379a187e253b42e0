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
import os
from typing import Sequence

import numpy as np

FIELDS = ("obs", "actions", "rewards", "next_obs", "terminated", "truncated", "horizons")


# ----------------------------------------------------------------------------------------------
# Sizes, checked before anything is allocated
# ----------------------------------------------------------------------------------------------


def available_memory() -> int | None:
    """Bytes a new allocation can take (Linux ``MemAvailable``), or None where that is not known (no check)."""
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _gib(nbytes: float) -> str:
    return f"{nbytes / 2**30:,.1f} GiB" if nbytes >= 2**30 else f"{nbytes / 2**20:,.0f} MiB"


def check_memory(nbytes: int, argument: str, value, what: str) -> None:
    """Refuse ``value`` of ``argument`` when ``what`` needs more than the available memory (before allocating it).

    Raises:
        ValueError: one line naming the argument, the value and both sizes.
    """
    available = available_memory()
    if available is not None and nbytes > available:
        raise ValueError(f"Received an invalid value for argument `{argument}`: {value:,} needs {_gib(nbytes)} for "
                         f"{what}, more than the {_gib(available)} of memory available")


def replay_nbytes(capacity: int, obs_shape: Sequence[int], obs_dtype="float32") -> int:
    """Bytes the replay memory of ``capacity`` transitions allocates: :class:`FrameReplay` for stacked frames
    ``[H, W, stack]`` (one frame and 11 bytes a row), else :class:`ReplayBuffer` (obs and next obs a row)."""
    if len(obs_shape) == 3:
        return int(capacity) * (int(obs_shape[0]) * int(obs_shape[1]) + 11)
    return int(capacity) * (2 * int(np.prod(obs_shape)) * np.dtype(obs_dtype).itemsize + 24)


def check_replay_sizes(buffer_size: int, batch_size: int, gradient_steps: int, n_step: int,
                       obs_shape: Sequence[int], obs_dtype="float32") -> None:
    """The DQN memory and batch sizes, checked before allocating: one line naming the argument to change.

    ``buffer_size`` must hold one complete window of stacked frames (``stack + n_step + 1`` rows; less
    makes :class:`FrameReplay` refuse an internal ``capacity``), and the memory and one training
    round's batches (``gradient_steps x batch_size`` samples, observations and next observations,
    and their float32 copies in the network) must fit in the available memory.

    Raises:
        ValueError: naming ``buffer_size`` or ``batch_size`` (and ``n_step``) and the value.
    """
    obs_shape = tuple(int(d) for d in obs_shape)
    if len(obs_shape) == 3 and buffer_size < obs_shape[2] + n_step + 1:
        raise ValueError(f"Received an invalid value for argument `buffer_size`: expected >= {obs_shape[2] + n_step + 1} "
                         f"(n_step {n_step} + a {obs_shape[2]}-frame stack + 1: one complete window), got {buffer_size}")
    check_memory(replay_nbytes(buffer_size, obs_shape, obs_dtype), "buffer_size", buffer_size, "the replay memory")
    sampled = int(gradient_steps) * int(batch_size) * 2 * int(np.prod(obs_shape)) * (np.dtype(obs_dtype).itemsize + 4)
    check_memory(sampled, "batch_size", batch_size,
                 f"a training round's {gradient_steps:,} x {batch_size:,} sampled transitions (gradient_steps x batch_size)")


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


class _NpzState:
    """Checkpointing shared by the replay memories: the filled rows of their ``ARRAYS`` and the
    counters, as one ``.npz``."""

    ARRAYS: tuple[str, ...] = ()
    capacity: int
    pos: int
    size: int

    def state_dict(self) -> dict:
        """Arrays and counters needed to restore the buffer exactly (only the filled rows)."""
        out = {name: getattr(self, name)[: self.size] for name in self.ARRAYS}
        out.update(capacity=np.int64(self.capacity), pos=np.int64(self.pos), size=np.int64(self.size))
        return out

    def load_state_dict(self, state: dict) -> None:
        """Restore what :meth:`state_dict` returned, after checking it fits this buffer.

        Raises:
            ValueError: naming the field: another capacity, counters out of range or inconsistent
                (``pos`` must be ``size`` until the ring is full), or arrays of another length or shape.
        """
        counters = {}
        for name in ("capacity", "size", "pos"):
            value = np.asarray(state.get(name))
            if value.shape != () or not np.issubdtype(value.dtype, np.integer):
                raise ValueError(f"the saved replay buffer's field `{name}` is not an integer: {state.get(name)!r:.40}")
            counters[name] = int(value)
        if counters["capacity"] != self.capacity:
            raise ValueError(f"replay buffer capacity mismatch: checkpoint has {counters['capacity']}, "
                             f"this buffer has {self.capacity}")
        size, pos = counters["size"], counters["pos"]
        if not 0 <= size <= self.capacity:
            raise ValueError(f"the saved replay buffer's field `size` is {size}, outside 0..{self.capacity}")
        if not (0 <= pos < self.capacity and (size == self.capacity or pos == size % self.capacity)):
            raise ValueError(f"the saved replay buffer's field `pos` is {pos}: expected {size % self.capacity} for "
                             f"{size} rows" + (f" (a full ring: 0..{self.capacity - 1})" if size == self.capacity else ""))
        for name in self.ARRAYS:
            if name not in state:  # checkpoints of older versions have no horizons: all 1-step transitions
                continue
            want = (size, *getattr(self, name).shape[1:])
            if np.shape(state[name]) != want:
                raise ValueError(f"the saved replay buffer's field `{name}` has shape {list(np.shape(state[name]))}, "
                                 f"expected {list(want)}")
        self.size, self.pos = size, pos
        for name in self.ARRAYS:
            if name in state:
                getattr(self, name)[: self.size] = state[name]

    def save_npz(self, path) -> None:
        """Write :meth:`state_dict` to ``path`` (views of the filled rows: no in-memory copy of the buffer)."""
        with open(path, "wb") as handle:
            np.savez(handle, **self.state_dict())

    def load_npz(self, path: str | os.PathLike) -> None:
        """Restore what :meth:`save_npz` wrote; a file that does not fit is a ``ValueError`` naming it."""
        with np.load(path) as arrays:
            state = {k: arrays[k] for k in arrays.files}
        try:
            self.load_state_dict(state)
        except ValueError as err:
            raise ValueError(f"{path}: {err}") from None


class ReplayBuffer(_NpzState):
    """Fixed-capacity FIFO replay memory in preallocated NumPy arrays.

    Args:
        capacity: the number of transitions kept; the oldest is overwritten first.
        obs_shape: shape of one observation (``()`` for a discrete state such as FrozenLake's).
        obs_dtype: dtype of the stored observations (``float32``, ``int32`` for discrete states,
            ``uint8`` for Atari frames).
        action_dtype: dtype of the stored actions.
        seed: seed of the sampling generator (its state is saved by :meth:`state_dict`).
    """

    ARRAYS = FIELDS

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

    def sample_many(self, gradient_steps: int, batch_size: int) -> tuple:
        """``(obs, actions, rewards, next_obs, terminated, horizons)``, each ``[G, B, ...]`` (:meth:`DQNAgent.learn`)."""
        idx = self.sample_indices(gradient_steps * batch_size).reshape(gradient_steps, batch_size)  # [G, B]
        return tuple(getattr(self, name)[idx] for name in ("obs", "actions", "rewards", "next_obs", "terminated",
                                                             "horizons"))


# ----------------------------------------------------------------------------------------------
# n-step transitions
# ----------------------------------------------------------------------------------------------


def n_step_windows(rewards, cut, ended, written, gamma: float):
    """The n-step rule, once for every replay memory: what a window of ``n`` steps from state ``s_0`` sums.

    Step ``i`` goes from state ``s_i`` to ``s_(i+1)``. A window sums rewards from step 0 on and stops

    * **after** a step that ``cut`` the TD chain (a termination, or a lost life in Atari training):
      the transition is terminal, nothing is bootstrapped;
    * **before** a state that ``ended`` its episode (a final state: terminated or truncated, no
      action): bootstrap from it (a time limit is not a terminal state);
    * before a step that is not ``written`` yet (its successor state is not stored): the window is
      not complete and must not be used;
    * after ``n`` steps: bootstrap from ``s_n``.

    Args:
        rewards, cut, ended, written: ``[B, n]`` each, for steps (states) ``0 .. n - 1``.
        gamma: the discount inside the sum.

    Returns:
        ``(returns [B] float32, horizons [B] k, terminated [B] bool, complete [B] bool)``: ``returns``
        ``= sum_{i < k} gamma^i r_i``, the window bootstraps from ``s_k`` with ``gamma^k`` unless
        ``terminated``; ``complete`` is false when it stopped at an unwritten step (or has ``k = 0``).
    """
    rewards, cut = np.asarray(rewards, np.float64), np.asarray(cut, bool)
    ended, written = np.asarray(ended, bool), np.asarray(written, bool)
    n = rewards.shape[1]
    has_action = ~ended & written  # [B, n]: step i exists
    taken = np.zeros_like(has_action)  # [B, n]: step i's reward is in the sum
    taken[:, 0] = has_action[:, 0]
    for i in range(1, n):
        taken[:, i] = taken[:, i - 1] & ~cut[:, i - 1] & has_action[:, i]
    horizons = taken.sum(axis=1)  # [B] k
    rows = np.arange(len(rewards))
    terminated = cut[rows, np.maximum(horizons - 1, 0)] & (horizons > 0)
    stopped_at = np.minimum(horizons, n - 1)  # the step after the last one taken (when k < n)
    complete = (horizons > 0) & ((horizons == n) | terminated | ended[rows, stopped_at])
    returns = (rewards * gamma ** np.arange(n) * taken).sum(axis=1).astype(np.float32)
    return returns, horizons, terminated, complete


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

    def add(self, obs, action, reward, next_obs, terminated: bool, truncated: bool,
            episode_end: bool | None = None) -> None:
        """One environment step; stores the transitions it completes.

        ``terminated`` may be a training terminal that is not the env's (a lost life): either way
        every open transition ends here. ``episode_end`` is accepted for :class:`FrameReplay`'s
        interface; the window needs no more than ``terminated`` and ``truncated``.
        """
        self._pending.append((obs, action, float(reward)))
        if terminated or truncated:
            while self._pending:
                self._emit(next_obs, terminated, truncated)
        elif len(self._pending) == self.n:
            self._emit(next_obs, False, False)

    def _emit(self, next_obs, terminated: bool, truncated: bool) -> None:
        """Store the oldest open transition: its window is the open steps, the last of them ending the
        episode when ``terminated`` (cut) or ``truncated`` (the next state is final), by :func:`n_step_windows`."""
        obs, action, _ = self._pending[0]
        k = len(self._pending)
        rewards, cut = np.zeros((1, self.n)), np.zeros((1, self.n), bool)
        ended, written = np.zeros((1, self.n), bool), np.zeros((1, self.n), bool)
        rewards[0, :k] = [r for _, _, r in self._pending]
        written[0, :k] = True
        cut[0, k - 1] = terminated
        ended[0, k:] = truncated  # after a time limit comes the final state (its successor is not ours)
        ret, horizon, _, _ = n_step_windows(rewards, cut, ended, written, self.gamma)
        self.buffer.add(obs, action, float(ret[0]), next_obs, terminated, truncated, horizon=int(horizon[0]))
        self._pending.pop(0)


# ----------------------------------------------------------------------------------------------
# Atari: each frame stored once, stacks and n-step returns rebuilt at sampling time
# ----------------------------------------------------------------------------------------------


class FrameReplay(_NpzState):
    """Replay memory for stacked-frame observations that stores each 84x84 frame once (uint8).

    A stacked observation ``[84, 84, 4]`` shares 3 of its 4 frames with the next one, and
    :class:`ReplayBuffer` would store ``obs`` and ``next_obs``: 8 frames a transition. Here a row
    holds one state's newest frame, its action and reward, and three flags, and a sample rebuilds
    the stacks from row indices (Dopamine's ``OutOfGraphReplayBuffer`` does the same): 100,000
    transitions take 0.7 GB instead of 5.6 GB. We hand-write it because TF-Agents' buffers store
    whole observations and our agents checkpoint the memory to one ``.npz``.

    Rows, in time order. An episode of ``T`` steps writes ``T + 1`` rows: one per state, the
    last (the final state) with no action. Row ``j``:

    * ``frames[j]``: the newest frame of state ``s_j`` (``obs[..., -1]``);
    * ``actions[j]``, ``rewards[j]``: the action taken in ``s_j`` and the reward that followed;
    * ``cut[j]``: that step ended the TD chain: the episode terminated, or (Atari training) a life
      was lost; nothing is bootstrapped past it;
    * ``start[j]``: ``s_j`` is an episode's first state: the frame stack does not reach behind it
      (the env's ``FrameStackObservation`` pads with the reset frame, and so does :meth:`stacks`);
    * ``ended[j]``: ``s_j`` is an episode's final state (terminated or truncated): no action.

    A sample from row ``j`` sums up to ``n`` rewards, stopping after a ``cut`` (no bootstrap) or
    before an episode's final state (bootstrap from it: a time limit is not a terminal state), so
    an n-step return never crosses an episode or life boundary. Rows whose ``n`` steps are not all
    written yet are never sampled; nor are rows whose stack reaches into overwritten rows.

    Args:
        capacity: rows kept (about one per transition).
        frame_shape: shape of one frame.
        stack: frames per observation (the last axis of the observations).
        n: the most rewards a sample sums (n-step returns).
        gamma: the discount inside the sum.
        seed: the sampling generator's seed.
    """

    ARRAYS = ("frames", "actions", "rewards", "cut", "start", "ended")

    def __init__(self, capacity: int, frame_shape=(84, 84), stack: int = 4, n: int = 1, gamma: float = 0.99,
                 seed: int | None = None):
        if not isinstance(capacity, (int, np.integer)) or capacity < stack + n + 1:
            raise ValueError(f"Received an invalid value for argument `capacity`: expected an integer >= "
                             f"{stack + n + 1}, got {capacity!r}")
        if not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"Received an invalid value for argument `n`: expected an integer >= 1, got {n!r}")
        self.capacity, self.stack, self.n, self.gamma = int(capacity), int(stack), int(n), float(gamma)
        self.frames = np.zeros((self.capacity, *frame_shape), dtype=np.uint8)
        self.actions = np.zeros(self.capacity, dtype=np.int32)
        self.rewards = np.zeros(self.capacity, dtype=np.float32)
        self.cut = np.zeros(self.capacity, dtype=bool)
        self.start = np.zeros(self.capacity, dtype=bool)
        self.ended = np.zeros(self.capacity, dtype=bool)
        self.pos = 0  # next row to write
        self.size = 0  # rows written (<= capacity)
        self.open = False  # an episode is being written (its newest row has no action yet)
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return self.size

    @property
    def nbytes(self) -> int:
        return sum(getattr(self, name).nbytes for name in self.ARRAYS)

    def _write(self, frame, start: bool) -> None:
        i = self.pos
        self.frames[i] = frame
        self.actions[i], self.rewards[i] = 0, 0.0
        self.cut[i], self.start[i], self.ended[i] = False, start, False
        self.pos = (i + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def add(self, obs, action, reward, next_obs, terminated: bool, truncated: bool,
            episode_end: bool | None = None) -> None:
        """One environment step (the :class:`NStepWindow` interface).

        ``terminated`` stops the TD chain here (pass ``True`` on a lost life to make it a training
        terminal); ``episode_end`` (default: ``terminated or truncated``) says the env was reset
        after this step, so the next ``add`` starts a new episode.
        """
        if episode_end is None:
            episode_end = terminated or truncated
        if not self.open:  # the first step of an episode: its first state
            self._write(np.asarray(obs)[..., -1], start=True)
            self.open = True
        last = (self.pos - 1) % self.capacity  # s_t's row
        self.actions[last], self.rewards[last], self.cut[last] = action, reward, bool(terminated)
        self._write(np.asarray(next_obs)[..., -1], start=False)
        if episode_end:
            self.ended[(self.pos - 1) % self.capacity] = True
            self.open = False

    # -- sampling ---------------------------------------------------------------------------------

    def _age(self, rows: np.ndarray) -> np.ndarray:
        """Each row's place in time order: 0 for the oldest row kept, ``size - 1`` for the newest."""
        oldest = self.pos if self.size == self.capacity else 0
        return (rows - oldest) % self.capacity

    def stack_rows(self, rows: np.ndarray) -> np.ndarray:
        """``[B, stack]`` row indices of the frames of states ``rows`` (oldest first), padded at episode starts."""
        out = (rows[:, None] - np.arange(self.stack - 1, -1, -1)) % self.capacity  # [B, stack]
        for t in range(self.stack - 1, 0, -1):  # an episode start repeats its frame to the left
            first = self.start[out[:, t]]
            out[first, :t] = out[first, t][:, None]
        return out

    def stacks(self, rows: np.ndarray) -> np.ndarray:
        """Observations ``[B, *frame_shape, stack]`` of states ``rows``."""
        return np.moveaxis(self.frames[self.stack_rows(rows)], 1, -1)

    def windows(self, rows: np.ndarray):
        """n-step windows from ``rows``: ``(returns [B], next rows [B], terminated [B], horizons [B], valid [B])``."""
        steps = (rows[:, None] + np.arange(self.n)) % self.capacity  # [B, n]
        written = self._age(steps) < self.size - 1  # the step's successor row is written (ages wrap at size)
        written &= np.cumprod(written, axis=1).astype(bool)  # and so are the steps before it
        returns, horizons, terminated, complete = n_step_windows(self.rewards[steps], self.cut[steps],
                                                                 self.ended[steps], written, self.gamma)
        next_rows = (rows + horizons) % self.capacity
        ages = self._age(self.stack_rows(rows))  # the stack must not reach into overwritten rows
        valid = complete & np.all(ages <= self._age(rows)[:, None], axis=1)
        return returns, next_rows, terminated, horizons, valid

    def sample_rows(self, count: int, max_tries: int = 100) -> np.ndarray:
        """``count`` uniformly drawn rows that are valid sample starts (rejection sampling)."""
        if self.size < self.stack + 1:
            raise ValueError("cannot sample from an empty replay buffer; add transitions first")
        rows = np.empty(count, dtype=np.int64)
        todo = np.arange(count)
        for _ in range(max_tries):
            draw = self.rng.integers(0, self.size, size=len(todo))
            draw = (draw + (self.pos if self.size == self.capacity else 0)) % self.capacity
            ok = self.windows(draw)[4]
            rows[todo[ok]] = draw[ok]
            todo = todo[~ok]
            if not len(todo):
                return rows
        if self.size == self.capacity:  # full, and still no window: more steps cannot help
            raise ValueError(f"the replay memory is full ({self.capacity} rows) but holds no complete {self.n}-step "
                             f"window: it is too small for n-step returns of {self.n} steps; raise buffer_size well "
                             f"above n_step + {self.stack} (or lower n_step)")
        raise ValueError("the replay buffer holds no complete n-step transition yet; collect more steps first")

    def sample_many(self, gradient_steps: int, batch_size: int) -> tuple:
        """``(obs, actions, returns, next_obs, terminated, horizons)``, each ``[G, B, ...]`` (:meth:`DQNAgent.learn`)."""
        rows = self.sample_rows(gradient_steps * batch_size)
        returns, next_rows, terminated, horizons, _ = self.windows(rows)
        shape = (gradient_steps, batch_size)
        out = (self.stacks(rows), self.actions[rows], returns, self.stacks(next_rows), terminated.astype(np.float32),
               horizons.astype(np.float32))
        return tuple(a.reshape(shape + a.shape[1:]) for a in out)

    # -- checkpointing ---------------------------------------------------------------------------

    def state_dict(self) -> dict:
        return {**super().state_dict(), "open": np.bool_(self.open)}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        # A resumed run starts a fresh episode in a fresh env: close the one the checkpoint was
        # writing, so no n-step window or frame stack joins the two.
        self.open = False
        if bool(state["open"]) and self.size:
            self.ended[(self.pos - 1) % self.capacity] = True

