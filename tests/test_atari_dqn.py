"""Breakout with the hand-written agents: frame replay, n-step windows, augmentation, presets, refusals."""
import numpy as np
import pytest

from agents import atari
from agents.replay import FrameReplay


def _obs(frame_ids, value_of=lambda i: i):
    """A fake stacked observation [2, 2, 4] whose frames are filled with their ids (oldest first)."""
    return np.stack([np.full((2, 2), value_of(i), np.uint8) for i in frame_ids], axis=-1)


class FakeStackedEpisode:
    """Feeds FrameReplay the way a FrameStackObservation(padding 'reset') env would: frame ids 1, 2, 3..."""

    def __init__(self, replay, first_id):
        self.replay, self.ids = replay, [first_id] * 4  # the reset frame repeated

    def step(self, action, reward, new_id, terminated=False, truncated=False, life_lost=False):
        obs = _obs(self.ids)
        self.ids = self.ids[1:] + [new_id]
        end = terminated or truncated
        self.replay.add(obs, action, reward, _obs(self.ids), terminated or life_lost, truncated, episode_end=end)


def test_frame_replay_rebuilds_the_stacks_the_env_gave():
    replay = FrameReplay(capacity=50, frame_shape=(2, 2), stack=4, n=1, gamma=0.5, seed=0)
    ep = FakeStackedEpisode(replay, first_id=10)
    for t in range(1, 6):  # frames 11..15
        ep.step(action=t % 4, reward=float(t), new_id=10 + t, terminated=t == 5)
    ep = FakeStackedEpisode(replay, first_id=20)  # a second episode: its stacks never reach episode 1
    ep.step(action=1, reward=0.0, new_id=21)
    ep.step(action=2, reward=0.0, new_id=22)
    # rows: 0..5 episode 1 (row 5: its final state), 6..8 episode 2 (row 8: the newest state)
    stacks = replay.stacks(np.array([0, 1, 4, 5, 6, 7]))[:, 0, 0, :]  # [B, 4] frame ids
    assert stacks.tolist() == [[10, 10, 10, 10], [10, 10, 10, 11], [11, 12, 13, 14], [12, 13, 14, 15],
                               [20, 20, 20, 20], [20, 20, 20, 21]]


def test_n_step_windows_stop_at_a_lost_life_and_at_an_episode_end():
    # One episode: rewards r0..r5 = 1, 2, 4, 8, 16, 32; a life is lost on step 2 (its reward 4 is
    # the last of that chain); the episode is cut by a time limit after step 5 (bootstrapped).
    replay = FrameReplay(capacity=50, frame_shape=(2, 2), stack=4, n=3, gamma=0.5, seed=0)
    ep = FakeStackedEpisode(replay, first_id=0)
    rewards = [1, 2, 4, 8, 16, 32]
    for t, r in enumerate(rewards):
        ep.step(action=0, reward=float(r), new_id=t + 1, life_lost=t == 2, truncated=t == 5)
    ep = FakeStackedEpisode(replay, first_id=100)  # next episode's first step: row 7 -> 8
    ep.step(action=0, reward=64.0, new_id=101)
    returns, next_rows, terminated, horizons, valid = replay.windows(np.arange(9))
    # row 0: r0 + .5 r1 + .25 r2 = 1 + 1 + 1 = 3, stops at the lost life after step 2: terminal, k = 3
    # row 1: r1 + .5 r2 = 2 + 2 = 4, terminal (life), k = 2
    # row 2: r2 = 4, terminal, k = 1
    # row 3: r3 + .5 r4 + .25 r5 = 8 + 8 + 8 = 24, k = 3, bootstraps from row 6 (the final state)
    # row 4: r4 + .5 r5 = 16 + 16 = 32, k = 2 (the time limit), bootstraps from row 6: not terminal
    # row 5: r5 = 32, k = 1, bootstraps from row 6
    # row 6: the final state: no action, never sampled
    # row 7: episode 2's first step, 64, but its n = 3 steps are not written yet: not sampled
    assert returns[:6].tolist() == [3.0, 4.0, 4.0, 24.0, 32.0, 32.0]
    assert horizons[:6].tolist() == [3, 2, 1, 3, 2, 1]
    assert terminated[:6].tolist() == [True, True, True, False, False, False]
    assert next_rows[:6].tolist() == [3, 3, 3, 6, 6, 6]
    assert valid.tolist() == [True] * 6 + [False, False, False]
    assert all(replay.windows(replay.sample_rows(200))[4])


def test_frame_replay_overwrites_the_oldest_and_never_samples_a_broken_stack():
    replay = FrameReplay(capacity=12, frame_shape=(2, 2), stack=4, n=2, gamma=0.9, seed=1)
    ep = FakeStackedEpisode(replay, first_id=0)
    for t in range(30):
        ep.step(action=0, reward=1.0, new_id=(t + 1) % 250)
    rows = replay.sample_rows(500)
    ages = replay._age(rows)
    assert ages.min() >= 3  # the 3 oldest rows' stacks reach into overwritten rows
    assert ages.max() <= replay.size - 1 - 2  # the newest 2 rows have no complete 2-step window
    stacks = replay.stacks(rows)[:, 0, 0, :].astype(int)
    assert np.all(np.diff(stacks, axis=1) % 250 == 1)  # consecutive frames, never a jump


def test_frame_replay_checkpoint_round_trip_closes_the_open_episode():
    replay = FrameReplay(capacity=40, frame_shape=(2, 2), stack=4, n=3, gamma=0.9, seed=0)
    ep = FakeStackedEpisode(replay, first_id=0)
    for t in range(10):
        ep.step(action=t % 3, reward=float(t), new_id=t + 1)
    copy = FrameReplay(capacity=40, frame_shape=(2, 2), stack=4, n=3, gamma=0.9, seed=0)
    copy.load_state_dict(replay.state_dict())
    assert np.array_equal(copy.frames, replay.frames) and copy.size == replay.size == 11
    # The resumed run plays a fresh env: the restored episode is closed at its newest state, so
    # rows 8 and 9 now bootstrap from row 10 with shorter windows instead of joining the new episode.
    returns, next_rows, terminated, horizons, valid = copy.windows(np.array([7, 8, 9, 10]))
    assert valid.tolist() == [True, True, True, False]
    assert horizons.tolist() == [3, 2, 1, 0] and next_rows[:3].tolist() == [10, 10, 10]
    assert not copy.open
    copy.add(_obs([50] * 4), 0, 1.0, _obs([50, 50, 50, 51]), False, False)
    assert copy.stacks(np.array([11]))[0, 0, 0].tolist() == [50, 50, 50, 50]  # a fresh start


def test_100k_transitions_fit_in_1_gb():
    replay = FrameReplay(capacity=100_000, frame_shape=(84, 84), stack=4, n=10)
    assert replay.nbytes <= 1e9  # 100,000 x (7,056 frame bytes + 4 + 4 + 3 flags) = 0.71 GB


def test_shift_frames_moves_each_image_and_repeats_edges():
    tf = pytest.importorskip("tensorflow")
    from agents.augment import random_shift, shift_frames

    img = np.arange(16, dtype=np.uint8).reshape(1, 4, 4, 1)  # rows 0..3: [0 1 2 3], [4 5 6 7], ...
    both = np.concatenate([img, img])
    out = shift_frames(tf.constant(both), tf.constant([1, 0]), tf.constant([0, -2])).numpy()[..., 0]
    # image 0 moved by dy=+1: row i reads row min(i + 1, 3): rows 1, 2, 3, 3
    assert out[0].tolist() == [[4, 5, 6, 7], [8, 9, 10, 11], [12, 13, 14, 15], [12, 13, 14, 15]]
    # image 1 moved by dx=-2: column j reads column max(j - 2, 0): columns 0, 0, 0, 1
    assert out[1].tolist() == [[0, 0, 0, 1], [4, 4, 4, 5], [8, 8, 8, 9], [12, 12, 12, 13]]
    frames = tf.constant(np.random.default_rng(0).integers(0, 255, (64, 84, 84, 4)), tf.uint8)
    shifted = random_shift(frames, 4, tf.random.Generator.from_seed(0)).numpy()
    assert shifted.shape == (64, 84, 84, 4) and shifted.dtype == np.uint8
    assert not np.array_equal(shifted, frames.numpy())  # 64 images all unshifted: (1/81)^64


def test_shift_frames_packs_a_stack_of_four_without_changing_a_bit():
    """Four uint8 frames travel as one 32-bit word per pixel: each channel must move as it does alone."""
    tf = pytest.importorskip("tensorflow")
    from agents.augment import shift_frames

    frames = np.random.default_rng(1).integers(0, 256, (8, 84, 84, 4), dtype=np.uint8)
    dy, dx = tf.constant([-4, 4, 0, 1, -1, 3, -3, 2]), tf.constant([4, -4, 2, 0, -2, -1, 3, 0])
    packed = shift_frames(tf.constant(frames), dy, dx).numpy()
    # Channel by channel: [B, H, W, 1] takes the unpacked path (tested by hand above).
    alone = np.concatenate([shift_frames(tf.constant(frames[..., c:c + 1]), dy, dx).numpy() for c in range(4)], -1)
    assert packed.dtype == np.uint8 and np.array_equal(packed, alone)
    compiled = tf.function(shift_frames)(tf.constant(frames), dy, dx).numpy()  # traced: static shape known
    assert np.array_equal(compiled, alone)


def test_breakout_presets_resolve_and_cartpole_refuses_them():
    from agents.configs import DQNConfig
    from keras_impl import config as cfglib

    de = cfglib.resolve(DQNConfig, {"env": "breakout"})
    assert (de.variant, de.n_step, de.train_frequency, de.learning_rate, de.adam_epsilon, de.augment_pad,
            de.learning_starts, de.life_loss_terminal, de.eval_epsilon) == \
        ("dueling-double", 10, 1, 1e-4, 1.5e-4, 4, 1_600, True, 0.001)
    nature = cfglib.resolve(DQNConfig, {"env": "breakout", "preset": "nature"})
    assert (nature.variant, nature.optimizer, nature.n_step, nature.augment_pad) == ("dqn", "rmsprop", 1, 0)
    typed = cfglib.resolve(DQNConfig, {"env": "breakout", "variant": "dqn", "n_step": 3})
    assert (typed.variant, typed.n_step, typed.augment_pad) == ("dqn", 3, 4)  # what the user typed wins
    assert cfglib.resolve(DQNConfig, {}).augment_pad == 0  # CartPole untouched
    with pytest.raises(ValueError, match="preset"):
        cfglib.resolve(DQNConfig, {"preset": "nature"})


@pytest.fixture(scope="module")
def breakout_env():
    pytest.importorskip("ale_py")
    from agents.atari import make_breakout_env

    return make_breakout_env(seed=3)


def test_frame_replay_matches_a_real_breakout_episode(breakout_env):
    """Every stored state's rebuilt stack equals the observation the env gave, across life losses."""
    env = breakout_env
    replay = FrameReplay(capacity=5_000, n=10, gamma=0.99, seed=0)
    rng = np.random.default_rng(0)
    seen, lives_lost = [], 0
    for episode in range(2):
        obs, _ = env.reset(seed=100 + episode)
        done = False
        while not done:
            seen.append(obs)
            action = int(rng.integers(4))
            next_obs, reward, terminated, truncated, info = env.step(action)
            lives_lost += info["life_lost"]
            done = terminated or truncated
            replay.add(obs, action, reward, next_obs, terminated or info["life_lost"], truncated, episode_end=done)
            obs = next_obs
        seen.append(obs)
    assert lives_lost >= 8  # 5 lives a game: the stacks below cross life losses
    assert len(replay) == len(seen)
    assert np.array_equal(replay.stacks(np.arange(len(seen))), np.stack(seen))


def test_raw_image_observations_are_refused_with_the_fix():
    from agents.atari import check_q_learnable
    import gymnasium as gym

    with pytest.raises(ValueError, match="use --env breakout"):
        check_q_learnable("CarRacing-v3", gym.spaces.Box(0, 255, (96, 96, 3), np.uint8))
    check_q_learnable("breakout", gym.spaces.Box(0, 255, (84, 84, 4), np.uint8))  # preprocessed: fine


def test_tfa_atari_q_network_is_dueling_and_shifts_only_when_training():
    pytest.importorskip("tf_agents")
    import tensorflow as tf
    from tf_agents.specs import tensor_spec

    from agents.configs import BREAKOUT_CONV_LAYERS
    from agents.tfa.networks import AtariQNetwork

    obs_spec = tensor_spec.BoundedTensorSpec((84, 84, 4), tf.uint8, 0, 255)
    act_spec = tensor_spec.BoundedTensorSpec((), tf.int64, 0, 3)
    net = AtariQNetwork(obs_spec, act_spec, BREAKOUT_CONV_LAYERS, dueling=True, augment_pad=4, seed=0)
    frames = tf.constant(np.random.default_rng(0).integers(0, 255, (8, 84, 84, 4)), tf.uint8)
    q_eval, _ = net(frames, training=False)
    q_again, _ = net(frames, training=False)
    q_train, _ = net(frames, training=True)
    assert q_eval.shape == (8, 4)
    assert np.array_equal(q_eval.numpy(), q_again.numpy())  # acting and evaluation: never shifted
    assert not np.allclose(q_eval.numpy(), q_train.numpy())  # the train step's Q(s, a): shifted frames
    # dueling: Q - mean_a Q is the advantage stream minus its mean, whatever V is
    x = tf.cast(frames, tf.float32) / 255.0
    for conv in net._convs:
        x = conv(x)
    features = net._hidden(net._flatten(x))
    adv = net._advantage(features).numpy()
    expected = net._value(features).numpy() + adv - adv.mean(axis=1, keepdims=True)
    np.testing.assert_allclose(q_eval.numpy(), expected, rtol=1e-5, atol=1e-5)
    target = net.copy()
    target(frames, training=False)
    assert target.name != net.name and len(target.trainable_variables) == len(net.trainable_variables)


def test_tfa_data_efficient_preset_uses_what_tf_agents_offers():
    from agents.configs import TfaDqnConfig
    from keras_impl import config as cfglib

    de = cfglib.resolve(TfaDqnConfig, {"env": "breakout", "preset": "data-efficient"})
    assert (de.agent, de.n_step_update, de.target_update_period, de.dueling, de.augment_pad, de.adam_epsilon,
            de.initial_collect_steps, de.iterations * de.collect_steps) == \
        ("ddqn", 10, 1, True, 4, 1.5e-4, 1_600, 100_000)
    homl = cfglib.resolve(TfaDqnConfig, {"env": "breakout"})
    assert (homl.agent, homl.optimizer, homl.dueling, homl.augment_pad) == ("dqn", "rmsprop", False, 0)  # unchanged
    with pytest.raises(ValueError, match="for Atari games"):
        cfglib.resolve(TfaDqnConfig, {"env": "cartpole", "preset": "data-efficient"})
    # HOML's exercise 9: any game, any spelling, the same presets
    si = cfglib.resolve(TfaDqnConfig, {"env": "SpaceInvaders", "preset": "data-efficient"})
    assert (si.env, si.env_id, si.atari, si.agent, si.n_step_update) == \
        ("ALE/SpaceInvaders-v5", "ALE/SpaceInvaders-v5", True, "ddqn", 10)
    with pytest.raises(ValueError, match="expected cartpole, frozenlake or an Atari game"):
        cfglib.resolve(TfaDqnConfig, {"env": "notagame"})


@pytest.mark.parametrize("variant", ["dqn", "double", "dueling", "dueling-double"])
def test_every_variant_takes_a_train_step_on_stacked_frames(variant, breakout_env):
    from agents.configs import DQNConfig
    from agents.dqn import DQNAgent
    from keras_impl import config as cfglib

    env = breakout_env
    cfg = cfglib.resolve(DQNConfig, {"env": "breakout", "variant": variant, "n_step": 3})
    agent = DQNAgent(cfg, env.observation_space, env.action_space)
    replay = FrameReplay(capacity=1_000, n=cfg.n_step, gamma=cfg.gamma, seed=0)
    obs, _ = env.reset(seed=7)
    for _ in range(200):
        action = agent.act(obs, epsilon=0.5)
        next_obs, reward, terminated, truncated, info = env.step(action)
        done = terminated or truncated
        replay.add(obs, action, reward, next_obs, terminated or info["life_lost"], truncated, episode_end=done)
        obs = env.reset()[0] if done else next_obs
    before = [w.copy() for w in agent.q_net.get_weights()]
    losses, q_means = agent.learn(replay, batch_size=8, gradient_steps=2)
    assert losses.shape == (2,) and np.all(np.isfinite(losses)) and np.all(np.isfinite(q_means))
    assert any(not np.array_equal(a, b) for a, b in zip(before, agent.q_net.get_weights()))
    assert agent.greedy_policy(np.stack([obs, obs])).shape == (2,)


def test_kcourse_run_dqn_breakout_quick_trains_and_saves_a_playable_policy(cli, tmp_path):
    pytest.importorskip("ale_py")
    import json

    code, out, err = cli("run", "dqn", "--env", "breakout", "--quick", "--out", tmp_path)
    assert code == 0, err[-2000:]
    run_dir = next(tmp_path.glob("dqn__0__*"))
    result = json.loads((run_dir / "result.json").read_text())
    metrics = result["metrics"]
    assert metrics["variant"] == "dueling-double" and metrics["env_steps"] == 1_500
    assert metrics["report_episodes"] == 3
    meta = json.loads((run_dir / "policy" / "policy.json").read_text())
    assert meta["env_factory"] == "agents.atari:make_atari_env" and meta["eval_epsilon"] == 0.001
    assert meta["env_id"] == "ALE/Breakout-v5" and meta["preprocessing"] == atari.PREPROCESSING
    assert meta["protocol"] == "sticky" and set(metrics["reports"]) == {"sticky", "atari100k"}
    assert metrics["protocol"] == "sticky" and metrics["final_weights"] is True
    assert 1 <= metrics["distinct_outcomes"] <= 3
    code, out, err = cli("eval", run_dir / "policy", "--episodes", "2", "--seed", "5")
    assert code == 0, err[-2000:]
    assert "mean" in out


def test_kcourse_run_dqn_refuses_raw_image_frames_in_one_line(cli, tmp_path):
    pytest.importorskip("Box2D")  # CarRacing: 96x96 RGB frames (an Atari id is preprocessed, whatever its spelling)
    code, out, err = cli("run", "dqn", "--env", "CarRacing-v3", "--quick", "--out", tmp_path)
    assert code == 2
    assert "use --env breakout" in err and "Traceback" not in err
    assert len([line for line in err.splitlines() if line.startswith("kcourse: error")]) == 1


@pytest.mark.slow
def test_kcourse_run_tfa_dqn_breakout_data_efficient_quick(cli, tmp_path):
    pytest.importorskip("ale_py")
    pytest.importorskip("tf_agents")
    code, out, err = cli("run", "tfa-dqn", "--env", "breakout", "--preset", "data-efficient", "--quick",
                         "--out", tmp_path)
    assert code == 0, err[-2000:]
    assert (next(tmp_path.glob("tfa-dqn__0__*")) / "policy" / "policy.json").is_file()

