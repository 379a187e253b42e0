"""One n-step rule and one stack padding, checked on one table of hand-worked cases (issue 33, item 15).

The NumPy rule is :func:`agents.replay.n_step_windows`, used by both replay memories (the stream
window :class:`agents.replay.NStepWindow` and :class:`agents.replay.FrameReplay`); the TF-Agents
pipeline's own conversion, :func:`agents.tfa.components.n_step_transition`, is checked against the
same table, and the two stack paddings (``FrameReplay.stack_rows``, ``components.stack_rows``) against
a second one.
"""
from __future__ import annotations

import numpy as np
import pytest

from agents.replay import FrameReplay, NStepWindow, ReplayBuffer, n_step_windows

N, GAMMA = 3, 0.5

# (rewards of steps 0, 1, 2; the step after which the episode ends, or None; how it ends)
#   -> (return, horizon k, terminated): bootstrap from s_k with gamma^k unless terminated.
CASES = {
    "no end": ((1, 2, 4), None, None, 1 + 0.5 * 2 + 0.25 * 4, 3, False),           # 3.0
    "terminated after step 1": ((1, 2, 4), 1, "terminated", 1 + 0.5 * 2, 2, True),  # 2.0, no bootstrap
    "time limit after step 1": ((1, 2, 4), 1, "truncated", 1 + 0.5 * 2, 2, False),  # 2.0, bootstrap from s_2
    "terminated after step 0": ((8, 2, 4), 0, "terminated", 8.0, 1, True),
    "time limit after step 0": ((8, 2, 4), 0, "truncated", 8.0, 1, False),
    "terminated at the window's end": ((1, 2, 4), 2, "terminated", 3.0, 3, True),
    "time limit at the window's end": ((1, 2, 4), 2, "truncated", 3.0, 3, False),
}


def _obs(i):
    return np.full((1, 1, 1), i, dtype=np.uint8)


def _steps(rewards, end, how):
    """``(reward, terminated, truncated)`` of the steps an agent plays: up to the end, or all three."""
    last = N - 1 if end is None else end
    return [(float(rewards[t]), how == "terminated" and t == end, how == "truncated" and t == end)
            for t in range(last + 1)]


@pytest.mark.parametrize("case", CASES)
def test_the_rule_itself(case):
    rewards, end, how, ret, k, terminated = CASES[case]
    cut, ended = np.zeros((1, N), bool), np.zeros((1, N), bool)
    if end is not None:
        cut[0, end] = how == "terminated"
        ended[0, end + 1:] = how == "truncated"  # the final state after a time limit
    out = n_step_windows(np.array([rewards], float), cut, ended, np.ones((1, N), bool), GAMMA)
    assert (float(out[0][0]), int(out[1][0]), bool(out[2][0]), bool(out[3][0])) == (ret, k, terminated, True)


@pytest.mark.parametrize("case", CASES)
def test_stream_window(case):
    rewards, end, how, ret, k, terminated = CASES[case]
    buffer = ReplayBuffer(10, obs_shape=(1,))
    window = NStepWindow(buffer, n=N, gamma=GAMMA)
    for t, (reward, term, trunc) in enumerate(_steps(rewards, end, how)):
        window.add([t], 0, reward, [t + 1], terminated=term, truncated=trunc)
    # the first stored transition starts at s_0 and ends at s_k
    assert (float(buffer.rewards[0]), int(buffer.horizons[0]), bool(buffer.terminated[0])) == (ret, k, terminated)
    assert buffer.next_obs[0, 0] == k


@pytest.mark.parametrize("case", CASES)
def test_frame_replay(case):
    rewards, end, how, ret, k, terminated = CASES[case]
    replay = FrameReplay(capacity=10, frame_shape=(1, 1), stack=1, n=N, gamma=GAMMA, seed=0)
    for t, (reward, term, trunc) in enumerate(_steps(rewards, end, how)):
        replay.add(_obs(t), 0, reward, _obs(t + 1), term, trunc)
    returns, next_rows, done, horizons, valid = replay.windows(np.array([0]))
    assert (float(returns[0]), int(horizons[0]), bool(done[0]), bool(valid[0])) == (ret, k, terminated, True)
    assert int(next_rows[0]) == k


@pytest.mark.parametrize("case", CASES)
def test_tf_agents_n_step_transition(case):
    import tensorflow as tf
    from tf_agents.trajectories import time_step as ts
    from tf_agents.trajectories import trajectory

    from agents.tfa.components import n_step_transition

    rewards, end, how, ret, k, terminated = CASES[case]
    # A sampled window of n + 1 frames; frame j holds the reward and discount of the step j -> j + 1.
    # After the end: frame end + 1 is LAST, the LAST -> FIRST boundary step has reward 0, and the next
    # episode's rewards (100) must never be summed.
    step_type, reward, discount = [], [], []
    for j in range(N + 1):
        if end is not None and j == end + 1:
            kind = ts.StepType.LAST
        elif j == 0 or (end is not None and j == end + 2):
            kind = ts.StepType.FIRST
        else:
            kind = ts.StepType.MID
        step_type.append(kind)
        if end is None or j <= end:
            reward.append(rewards[j] if j < N else 0.0)
            discount.append(0.0 if (j == end and how == "terminated") else 1.0)
        else:
            reward.append(0.0 if j == end + 1 else 100.0)
            discount.append(1.0)
    types = tf.constant([step_type], tf.int32)
    experience = trajectory.Trajectory(
        step_type=types, observation=tf.constant([list(range(N + 1))], tf.float32),
        action=tf.zeros_like(types, tf.int64), policy_info=(),
        next_step_type=tf.concat([types[:, 1:], types[:, -1:]], axis=1),
        reward=tf.constant([reward], tf.float32), discount=tf.constant([discount], tf.float32))
    transition, weight = n_step_transition(experience, GAMMA)
    nxt = transition.next_time_step
    # DqnAgent multiplies the discount by gamma once more: gamma^(k-1) here is gamma^k in the target
    assert float(nxt.reward[0]) == ret and int(nxt.observation[0]) == k and float(weight[0]) == 1.0
    assert float(nxt.discount[0]) == (0.0 if terminated else GAMMA ** (k - 1))


# Stack padding: frames of 4-frame stacks, oldest first; an episode's first state repeats its frame to
# the left (FrameStackObservation pads a reset with the reset frame).
STACKS = {
    # 6 stored states, the third starts an episode: states 3, 4, 5 stack 2 2 2 3 / 2 2 3 4 / 2 3 4 5
    "a start inside the stack": ((2,), (3, 4, 5), [[2, 2, 2, 3], [2, 2, 3, 4], [2, 3, 4, 5]]),
    # starts at 0 and 2: the newest one counts
    "two starts": ((0, 2), (3, 4), [[2, 2, 2, 3], [2, 2, 3, 4]]),
    # a first state's own stack is its frame four times
    "the first state itself": ((3,), (3,), [[3, 3, 3, 3]]),
    "no start": ((), (4,), [[1, 2, 3, 4]]),
}


@pytest.mark.parametrize("case", STACKS)
def test_frame_replay_stack_rows(case):
    starts, states, expected = STACKS[case]
    replay = FrameReplay(capacity=10, frame_shape=(1, 1), stack=4, n=1, seed=0)
    replay.start[list(starts)] = True
    assert replay.stack_rows(np.array(states)).tolist() == expected


@pytest.mark.parametrize("case", STACKS)
def test_tf_agents_stack_rows(case):
    import tensorflow as tf
    from tf_agents.trajectories import time_step as ts

    from agents.tfa.components import stack_rows

    starts, states, expected = STACKS[case]
    types = [ts.StepType.FIRST if i in starts else ts.StepType.MID for i in range(6)]
    got = stack_rows(tf.constant([types] * len(states), tf.int32), tf.constant(states), 4)
    assert got.numpy().tolist() == expected
