"""agents.replay.ReplayBuffer: ring order, uniform sampling, terminated/truncated kept apart, checkpoints."""
import numpy as np
import pytest

from agents.replay import ReplayBuffer


def fill(buf, n, start=0):
    for i in range(start, start + n):
        buf.add(np.full(buf.obs_shape, i), i % 3, float(i), np.full(buf.obs_shape, i + 1),
                terminated=(i % 5 == 4), truncated=(i % 7 == 6))


def test_ring_overwrites_the_oldest_rows():
    buf = ReplayBuffer(4, obs_shape=(2,), seed=0)
    fill(buf, 6)  # rows: 0 1 2 3, then 4 -> row 0, 5 -> row 1
    assert len(buf) == 4 and buf.pos == 2
    assert buf.obs[:, 0].tolist() == [4.0, 5.0, 2.0, 3.0]
    assert buf.next_obs[:, 0].tolist() == [5.0, 6.0, 3.0, 4.0]
    assert buf.rewards.tolist() == [4.0, 5.0, 2.0, 3.0]


def test_terminated_and_truncated_are_stored_apart():
    buf = ReplayBuffer(10, obs_shape=(1,), seed=0)
    buf.add([0.0], 0, 1.0, [1.0], terminated=True, truncated=False)
    buf.add([1.0], 1, 1.0, [2.0], terminated=False, truncated=True)
    assert buf.terminated[:2].tolist() == [1.0, 0.0]
    assert buf.truncated[:2].tolist() == [0.0, 1.0]


def test_sample_shapes_dtypes_and_only_filled_rows():
    buf = ReplayBuffer(100, obs_shape=(4,), seed=1)
    fill(buf, 10)
    batch = buf.sample(256)
    assert batch.obs.shape == (256, 4) and batch.next_obs.shape == (256, 4)
    assert batch.actions.shape == (256,) and batch.actions.dtype == np.int64
    assert batch.rewards.dtype == np.float32 and batch.terminated.dtype == np.float32
    assert batch.rewards.max() <= 9  # rewards are the row ids: never a row beyond the filled ones
    assert set(batch.rewards.astype(int)) == set(range(10))  # 256 draws hit every one of 10 rows
    # each row stays consistent across fields
    np.testing.assert_array_equal(batch.obs[:, 0], batch.rewards)
    np.testing.assert_array_equal(batch.next_obs[:, 0], batch.rewards + 1)
    np.testing.assert_array_equal(batch.terminated, (batch.rewards % 5 == 4).astype(np.float32))


def test_sampling_is_uniform():
    buf = ReplayBuffer(10, obs_shape=(), seed=3)
    fill(buf, 10)
    counts = np.bincount(buf.sample_indices(100_000), minlength=10)
    assert counts.min() > 9_500 and counts.max() < 10_500  # 10,000 expected each, std ~95


def test_discrete_states_and_seeded_sampling():
    a = ReplayBuffer(50, obs_shape=(), obs_dtype="int32", seed=7)
    b = ReplayBuffer(50, obs_shape=(), obs_dtype="int32", seed=7)
    fill(a, 30)
    fill(b, 30)
    np.testing.assert_array_equal(a.sample_indices(20), b.sample_indices(20))
    assert a.obs.dtype == np.int32 and a.sample(5).obs.shape == (5,)


def test_state_dict_round_trip_restores_rows_counters_and_rng():
    buf = ReplayBuffer(8, obs_shape=(3,), seed=5)
    fill(buf, 11)
    data = buf.state_dict()
    other = ReplayBuffer(8, obs_shape=(3,), seed=99)
    other.load_state_dict(data)
    other.rng.bit_generator.state = buf.rng.bit_generator.state
    assert (len(other), other.pos) == (len(buf), buf.pos)
    for name in ("obs", "actions", "rewards", "next_obs", "terminated", "truncated"):
        np.testing.assert_array_equal(getattr(other, name), getattr(buf, name))
    np.testing.assert_array_equal(other.sample_indices(10), buf.sample_indices(10))
    with pytest.raises(ValueError, match="capacity mismatch"):
        ReplayBuffer(9, obs_shape=(3,)).load_state_dict(data)


@pytest.mark.parametrize("change, message", [
    ({"pos": np.int64(9)}, r"field `pos` is 9: expected 5 for 5 rows$"),  # the sweep's IndexError in _write
    ({"pos": np.int64(2)}, r"field `pos` is 2: expected 5 for 5 rows$"),  # in range, but not where row 5 goes
    ({"size": np.int64(12)}, r"field `size` is 12, outside 0\.\.8$"),
    ({"pos": np.float64(1.5)}, r"field `pos` is not an integer"),
    ({"obs": np.zeros((4, 3))}, r"field `obs` has shape \[4, 3\], expected \[5, 3\]$"),
])
def test_a_restored_replay_state_is_checked_field_by_field(tmp_path, change, message):
    buf = ReplayBuffer(8, obs_shape=(3,), seed=5)
    fill(buf, 5)  # 5 rows: pos 5
    state = {**buf.state_dict(), **change}
    with pytest.raises(ValueError, match="the saved replay buffer's " + message):
        ReplayBuffer(8, obs_shape=(3,)).load_state_dict(state)
    np.savez(tmp_path / "replay.npz", **state)  # a checkpoint's file: the error names it
    with pytest.raises(ValueError, match=r"replay\.npz: the saved replay buffer's "):
        ReplayBuffer(8, obs_shape=(3,)).load_npz(tmp_path / "replay.npz")


def test_a_full_ring_restores_at_any_pos():
    buf = ReplayBuffer(4, obs_shape=(2,), seed=0)
    fill(buf, 6)  # full, pos 2
    other = ReplayBuffer(4, obs_shape=(2,))
    other.load_state_dict(buf.state_dict())
    assert (other.size, other.pos) == (4, 2)


def test_invalid_arguments():
    with pytest.raises(ValueError, match="`capacity`"):
        ReplayBuffer(0)
    with pytest.raises(ValueError, match="empty"):
        ReplayBuffer(3).sample(2)
