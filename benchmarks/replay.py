"""HOML's replay-memory comparison: a ``deque`` vs a rotating array, on 1,000,000 items.

HOML (chapter 18, "Deque vs rotating list") fills both with 1,000,000 items and times an append
and sampling 5 random items. A deque is fast at its ends but indexing it is O(n) away from them,
so random sampling gets slow on a large memory; an array indexes in O(1). We also time the
realistic case: sampling a 64-transition batch of CartPole-sized transitions from
:class:`agents.replay.ReplayBuffer` vs a deque of tuples (HOML's ``sample_experiences``).

Usage::

    python benchmarks/replay.py
"""
from __future__ import annotations

import sys
import timeit
from collections import deque
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agents.replay import ReplayBuffer  # noqa: E402

N = 1_000_000


class ReplayMemory:
    """HOML's rotating list (``np.empty(max_size, dtype=object)``; ``np.object`` is gone in NumPy 2)."""

    def __init__(self, max_size):
        self.buffer = np.empty(max_size, dtype=object)
        self.max_size = max_size
        self.index = 0
        self.size = 0

    def append(self, obj):
        self.buffer[self.index] = obj
        self.size = min(self.size + 1, self.max_size)
        self.index = (self.index + 1) % self.max_size

    def sample(self, batch_size):
        indices = np.random.randint(self.size, size=batch_size)
        return self.buffer[indices]


def per_call(stmt, number: int, glb) -> float:
    """Best of 5 repeats, in microseconds per call."""
    return min(timeit.repeat(stmt, number=number, repeat=5, globals=glb)) / number * 1e6


def main() -> int:
    np.random.seed(42)
    mem = deque(maxlen=N)
    for i in range(N):
        mem.append(i)
    rot = ReplayMemory(max_size=N)
    for i in range(N):
        rot.append(i)
    glb = {"mem": mem, "rot": rot, "np": np, "N": N}
    rows = [
        ("deque (HOML)", per_call("mem.append(1)", 100_000, glb),
         per_call("[mem[i] for i in np.random.randint(N, size=5)]", 2_000, glb)),
        ("rotating array (HOML)", per_call("rot.append(1)", 100_000, glb), per_call("rot.sample(5)", 20_000, glb)),
    ]
    # Transitions: CartPole-sized (obs 4 floats), batch 64, 1,000,000 stored.
    rng = np.random.default_rng(0)
    obs = rng.normal(size=(N, 4)).astype(np.float32)
    tuples = deque(((obs[i], i % 2, 1.0, obs[(i + 1) % N], False) for i in range(N)), maxlen=N)
    ring = ReplayBuffer(N, obs_shape=(4,), seed=0)
    ring.obs[:] = obs
    ring.next_obs[:] = np.roll(obs, -1, axis=0)
    ring.size, ring.pos = N, 0
    glb.update(tuples=tuples, ring=ring, one=obs[0])

    def deque_batch():
        batch = [tuples[i] for i in np.random.randint(N, size=64)]
        return [np.array([t[k] for t in batch]) for k in range(5)]

    glb["deque_batch"] = deque_batch
    batch_rows = [
        ("deque of tuples (HOML)", per_call("tuples.append((one, 0, 1.0, one, False))", 100_000, glb),
         per_call("deque_batch()", 500, glb)),
        ("agents.replay.ReplayBuffer", per_call("ring.add(one, 0, 1.0, one, False, False)", 100_000, glb),
         per_call("ring.sample(64)", 5_000, glb)),
    ]
    print(f"{N:,} items stored; microseconds per call (best of 5)\n")
    print(f"{'memory':<30}{'append':>10}{'sample 5':>12}")
    for name, append, sample in rows:
        print(f"{name:<30}{append:>10.2f}{sample:>12.2f}")
    print(f"\n{'transitions (obs: 4 floats)':<30}{'append':>10}{'batch 64':>12}")
    for name, append, sample in batch_rows:
        print(f"{name:<30}{append:>10.2f}{sample:>12.2f}")
    print(f"\nsampling speed-up of the array over the deque: {rows[0][2] / rows[1][2]:.1f}x (5 items), "
          f"{batch_rows[0][2] / batch_rows[1][2]:.1f}x (batch of 64 transitions)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
