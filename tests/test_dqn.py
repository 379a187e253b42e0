"""agents.dqn and agents.dqn_train: the TD math by hand, every variant's loss by hand (masked too),
terminal vs truncated, epsilon schedules, determinism, checkpoint/resume, Ctrl-C, corrupt
checkpoints, and the CLI."""
import dataclasses
import json
import math
import subprocess
import sys

import numpy as np
import pytest

import agents  # noqa: F401
import gymnasium as gym

from agents import dqn, dqn_train
from agents.configs import DQN_VARIANTS as VARIANTS
from agents.networks import numpy_q_function
from agents.replay import ReplayBuffer
from keras_impl import config as cfglib
from keras_impl.checkpoints import CheckpointManager, CorruptCheckpointError


# ----------------------------------------------------------------------------------------------
# Pure functions
# ----------------------------------------------------------------------------------------------


def test_td_target_by_hand():
    # r + gamma * (1 - terminated) * next_q with gamma 0.9:
    #   1 + 0.9 * 10 = 10;  terminated: 0;  2 + 0.9 * 3 = 4.7
    target = dqn.td_target(np.array([1.0, 0.0, 2.0]), np.array([10.0, 5.0, 3.0]), np.array([0.0, 1.0, 0.0]), 0.9)
    np.testing.assert_allclose(np.asarray(target), [10.0, 0.0, 4.7], rtol=1e-6)


def test_next_q_max_and_double_by_hand():
    q_target = np.array([[1.0, 5.0], [4.0, 2.0]], "float32")
    q_online = np.array([[3.0, 1.0], [0.0, 2.0]], "float32")
    # DQN: max over the target net's row: [5, 4]
    np.testing.assert_allclose(np.asarray(dqn.next_q_max(q_target, q_online)), [5.0, 4.0])
    # Double: online argmax = [0, 1]; the target net's values there: [1, 2]
    np.testing.assert_allclose(np.asarray(dqn.next_q_double(q_target, q_online)), [1.0, 2.0])


@pytest.mark.parametrize("kind, expected", [
    # errors t - q = [1, -4]: MSE (1 + 16) / 2 = 8.5; Huber (0.5 * 1^2 + (4 - 0.5)) / 2 = (0.5 + 3.5) / 2 = 2
    ("mse", 8.5), ("huber", 2.0)])
def test_td_loss_by_hand(kind, expected):
    assert float(dqn.td_loss(np.array([1.0, 4.0]), np.array([2.0, 0.0]), kind)) == pytest.approx(expected)


@pytest.mark.parametrize("schedule, step, episode, expected", [
    ("linear", 0, 0, 1.0),
    ("linear", 4_000, 0, 1.0 - 0.96 * 0.5),       # half of 0.16 * 50,000 = 8,000 steps: 0.52
    ("linear", 20_000, 0, 0.04),                   # past the decay: the end value
    ("linear-episode", 0, 250, 1.0 - 0.96 * 0.5),  # HOML's max(1 - episode / 500, end): half way
    ("exponential", 1_000, 0, 0.04 + 0.96 * math.exp(-1)),  # PyTorch tutorial: end + (start-end) e^(-step/1000)
    ("multiplicative", 0, 2, 0.995 ** 2),          # Keras tutorial: 1.0 * 0.995 ** episodes
    ("multiplicative", 0, 10_000, 0.04),           # floored at the end value
])
def test_epsilon_schedules_by_hand(schedule, step, episode, expected):
    cfg = dqn.DQNConfig(epsilon_schedule=schedule)
    assert dqn.epsilon_at(cfg, step, episode) == pytest.approx(expected)


# ----------------------------------------------------------------------------------------------
# Every variant's loss on a linear Q-network with hand-set weights (TF-Agents' loss test)
# ----------------------------------------------------------------------------------------------

OBS_SPACE = gym.spaces.Box(-10, 10, (2,), np.float32)
ACT_SPACE = gym.spaces.Discrete(2)


def set_linear(net, kernel, dueling):
    """Q(s) = s @ kernel. A dueling net gets V(s) = s @ mean_a(kernel) so that V + A - mean(A) = A."""
    kernel = np.asarray(kernel, "float32")
    if dueling:
        net.get_layer("advantage").set_weights([kernel, np.zeros(2, "float32")])
        net.get_layer("value").set_weights([kernel.mean(axis=1, keepdims=True), np.zeros(1, "float32")])
    else:
        net.get_layer("q_values").set_weights([kernel, np.zeros(2, "float32")])


def mask_action_1_when_s1_is_1(obs):
    """A splitter: action 1 is illegal in states whose second feature is 1 (numbers picked for the test)."""
    legal_1 = 1.0 - (obs[..., 1:2] == 1.0)  # [B, 1]
    return obs, np.concatenate([np.ones_like(legal_1), legal_1], axis=-1) if isinstance(obs, np.ndarray) \
        else dqn.tf.concat([dqn.tf.ones_like(legal_1), legal_1], axis=-1)


def linear_agent(variant, loss="mse", gamma=0.5, masked=False):
    cfg = dqn.DQNConfig(variant=variant, hidden=(), loss=loss, gamma=gamma)
    agent = dqn.DQNAgent(cfg, OBS_SPACE, ACT_SPACE, splitter=mask_action_1_when_s1_is_1 if masked else None)
    # online Q(s) = [s0 + 3 s1, 2 s0 + 4 s1];  target Q_t(s) = [s0, s1]
    set_linear(agent.q_net, [[1.0, 2.0], [3.0, 4.0]], cfg.dueling)
    set_linear(agent.target_net, [[1.0, 0.0], [0.0, 1.0]], cfg.dueling)
    return agent


# Two transitions: (s=[1,0], a=0, r=1, s'=[2,1], not terminal), (s=[0,1], a=1, r=0, s'=[1,3], terminal)
BATCH = dict(obs=np.array([[1, 0], [0, 1]], "float32"), actions=np.array([0, 1]), rewards=np.array([1.0, 0.0], "float32"),
             next_obs=np.array([[2, 1], [1, 3]], "float32"), terminated=np.array([0.0, 1.0], "float32"))
# q_taken: Q([1,0])[0] = 1;  Q([0,1])[1] = 4
# dqn / dueling:  next_q = max Q_t([2,1]) = 2 -> targets [1 + 0.5 * 2, 0] = [2, 0]; errors [1, -4]
#                 MSE (1 + 16) / 2 = 8.5;  Huber (0.5 + 3.5) / 2 = 2.0
# double:         online argmax Q([2,1]) = argmax [5, 8] = 1 -> Q_t([2,1])[1] = 1 -> targets [1.5, 0];
#                 errors [0.5, -4]: MSE (0.25 + 16) / 2 = 8.125;  Huber (0.125 + 3.5) / 2 = 1.8125
# masked (action 1 illegal where s[1] == 1; s' = [2,1] has s[1] = 1, so only action 0 is legal there):
#   dqn / dueling:  max over legal Q_t([2,1]) = Q_t([2,1])[0] = 2 -> the same targets [2, 0]
#   double:         online argmax over legal = 0 (Q([2,1])[0] = 5) -> Q_t([2,1])[0] = 2 -> targets [2, 0]
#                   (unmasked Double picked action 1, worth 1), so MSE 8.5, Huber 2.0 as plain DQN
EXPECTED = {("dqn", "mse"): (8.5, [2.0, 0.0]), ("dqn", "huber"): (2.0, [2.0, 0.0]),
            ("double", "mse"): (8.125, [1.5, 0.0]), ("double", "huber"): (1.8125, [1.5, 0.0]),
            ("double-masked", "mse"): (8.5, [2.0, 0.0]), ("double-masked", "huber"): (2.0, [2.0, 0.0])}


def _expected_key(variant, masked):
    if "double" in variant:
        return "double-masked" if masked else "double"
    return "dqn"


@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("loss", ["mse", "huber"])
@pytest.mark.parametrize("variant", VARIANTS)
def test_loss_by_hand_for_every_variant(variant, loss, masked):
    agent = linear_agent(variant, loss, masked=masked)
    value, targets, q_taken = agent.compute_loss(**BATCH)
    expected_loss, expected_targets = EXPECTED[(_expected_key(variant, masked), loss)]
    np.testing.assert_allclose(np.asarray(q_taken), [1.0, 4.0], rtol=1e-6)
    np.testing.assert_allclose(np.asarray(targets), expected_targets, rtol=1e-6)
    assert float(value) == pytest.approx(expected_loss, rel=1e-6)


@pytest.mark.parametrize("variant", VARIANTS)
def test_terminal_not_bootstrapped_truncated_bootstrapped(variant):
    agent = linear_agent(variant)
    buf = ReplayBuffer(4, obs_shape=(2,), seed=0)
    buf.add([1, 0], 0, 1.0, [2, 1], terminated=True, truncated=False)   # terminal: target = r = 1
    buf.add([1, 0], 0, 1.0, [2, 1], terminated=False, truncated=True)   # time limit: r + gamma * next_q
    batch = buf.sample(64)
    _, targets, _ = agent.compute_loss(batch.obs, batch.actions, batch.rewards, batch.next_obs, batch.terminated)
    next_q = 1.0 if "double" in variant else 2.0  # see BATCH's comments
    expected = np.where(batch.terminated == 1.0, 1.0, 1.0 + 0.5 * next_q)
    assert set(batch.truncated.tolist()) == {0.0, 1.0}
    np.testing.assert_allclose(np.asarray(targets), expected, rtol=1e-6)


@pytest.mark.parametrize("variant", VARIANTS)
def test_masked_target_with_no_legal_action_left_is_the_reward(variant):
    # every action illegal in s': the future value is 0 (not -inf, not NaN), target = r = 1
    agent = linear_agent(variant, masked=True)
    agent.splitter = lambda obs: (obs, obs * 0)  # nothing is legal anywhere
    _, targets, _ = agent.compute_loss(BATCH["obs"][:1], BATCH["actions"][:1], BATCH["rewards"][:1],
                                       BATCH["next_obs"][:1], np.zeros(1, "float32"))
    np.testing.assert_allclose(np.asarray(targets), [1.0])


@pytest.mark.parametrize("variant", VARIANTS)
def test_masked_acting_never_picks_an_illegal_action(variant):
    agent = linear_agent(variant, masked=True)
    obs = np.array([[2.0, 1.0]] * 200, "float32")  # action 1 illegal; greedy would pick it (Q = [5, 8])
    assert set(agent.act_batch(obs, epsilon=0.0).tolist()) == {0}
    assert set(agent.act_batch(obs, epsilon=1.0).tolist()) == {0}
    assert set(agent.greedy_policy(obs).tolist()) == {0}


@pytest.mark.parametrize("variant", ["dqn", "dueling-double"])
def test_gradient_steps_lower_the_loss_and_soft_update_moves_the_target(variant):
    agent = linear_agent(variant)
    buf = ReplayBuffer(4, obs_shape=(2,), seed=0)
    for i in range(2):
        buf.add(BATCH["obs"][i], BATCH["actions"][i], BATCH["rewards"][i], BATCH["next_obs"][i],
                bool(BATCH["terminated"][i]), False)
    before_loss = float(agent.compute_loss(**BATCH)[0])
    losses, _ = agent.learn(buf, batch_size=8, gradient_steps=20)
    assert losses.shape == (20,) and float(agent.compute_loss(**BATCH)[0]) < before_loss
    before = [w.copy() for w in agent.target_net.get_weights()]
    online = agent.q_net.get_weights()
    agent.update_target(0.25)  # target <- 0.25 online + 0.75 target
    for t, o, b in zip(agent.target_net.get_weights(), online, before):
        np.testing.assert_allclose(t, 0.25 * o + 0.75 * b, rtol=1e-5, atol=1e-6)


# ----------------------------------------------------------------------------------------------
# Training: determinism, checkpoint / resume, Ctrl-C, corrupt checkpoints
# ----------------------------------------------------------------------------------------------

# Rounds of 5 compiled gradient steps every 10 env steps after step 100: round k at step 100 + 10 k.
TINY = dict(env="CartPole-v1", hidden=(16, 16), learning_starts=100, train_frequency=10, gradient_steps=5,
            batch_size=32, eval_interval=0, eval_episodes=3, gif=False, target_update_interval=50)


def test_same_seed_same_first_1000_updates(tmp_path):
    # 10 rounds of 100 gradient steps (steps 110, 120, ..., 200): the first 1,000 updates
    cfg = dqn.DQNConfig(total_timesteps=200, checkpoint_every=0, seed=3, **dict(TINY, gradient_steps=100))
    runs = []
    for name in ("a", "b"):
        losses = []
        agent, state = dqn_train.train(cfg, tmp_path / name, log=lambda line: None,
                                       on_update=lambda i, loss: losses.append(loss))
        runs.append((losses, agent.target_net.get_weights(), state))
    (la, wa, sa), (lb, wb, sb) = runs
    assert len(la) == 1000 and la == lb
    for x, y in zip(wa, wb):
        np.testing.assert_array_equal(x, y)
    assert sa.returns == sb.returns


def test_tensorboard_gets_the_mean_of_each_log_rounds_training_rounds(tmp_path, monkeypatch):
    from tensorflow.core.util import event_pb2
    import tensorflow as tf

    monkeypatch.setattr(dqn_train, "LOG_ROUNDS", 4)
    # rounds at steps 110, 120, ..., 200: 10 rounds, so two TensorBoard points (rounds 1-4 and 5-8)
    cfg = dqn.DQNConfig(total_timesteps=200, checkpoint_every=0, seed=3, **TINY)
    _, state = dqn_train.train(cfg, tmp_path, log=lambda line: None)
    scalars = {}
    for path in sorted((tmp_path / "train").glob("events.out.tfevents.*")):
        for record in tf.data.TFRecordDataset(str(path)):
            event = event_pb2.Event.FromString(record.numpy())
            for value in event.summary.value:
                if value.tag.startswith("losses/"):
                    scalars.setdefault(value.tag, []).append((event.step, float(tf.make_ndarray(value.tensor))))
    log = np.asarray(state.train_log)  # [10, 3]: step, mean loss, mean Q
    assert len(log) == 10
    for tag, column in (("losses/td_loss", 1), ("losses/q_values", 2)):
        steps, values = zip(*scalars[tag])
        assert list(steps) == [140, 180]  # the 4th and 8th rounds' steps
        np.testing.assert_allclose(values, [log[:4, column].mean(), log[4:8, column].mean()], rtol=1e-6)


def test_checkpoint_resume_continues_episodes_and_epsilon(tmp_path):
    # one-step transitions: every env step is in the buffer at once (an n-step window holds the last
    # n - 1 steps of an unfinished episode back, and the run ends mid-episode)
    base = dict(TINY, epsilon_schedule="multiplicative", epsilon_decay_rate=0.9, epsilon_end=0.01, seed=1, n_step=1)
    cfg = dqn.DQNConfig(total_timesteps=400, checkpoint_every=5, **base)
    agent, first = dqn_train.train(cfg, tmp_path, log=lambda line: None)
    path = CheckpointManager(tmp_path / "checkpoints").latest()
    meta = json.loads((path / "state.json").read_text())
    assert meta["state"]["episode"] == first.episode and meta["state"]["global_step"] == 400
    assert meta["state"]["epsilon"] == pytest.approx(first.epsilon) and first.epsilon < 0.5
    # a fresh agent restores the saved weights, optimizer and counters
    fresh = dqn.DQNAgent(cfg, OBS_SPACE_CP, ACT_SPACE)
    buf = ReplayBuffer(cfg.buffer_size, (4,), seed=0)
    restored, _ = dqn_train.load_checkpoint(path, fresh, buf)
    for x, y in zip(fresh.target_net.get_weights(), agent.target_net.get_weights()):
        np.testing.assert_array_equal(x, y)
    assert len(buf) == 400 and int(fresh.optimizer.iterations) == int(agent.optimizer.iterations) > 0
    # resume with a larger budget: the episode counter, returns and epsilon carry on
    lines = []
    resumed_cfg = dataclasses.replace(cfg, total_timesteps=700)
    _, second = dqn_train.train(resumed_cfg, tmp_path, resume=True, log=lines.append)
    assert any(f"episode {first.episode}, step 400" in line for line in lines)
    assert second.global_step == 700 and second.episode > first.episode
    assert second.returns[:first.episode] == first.returns
    # epsilon follows the episode counter across the resume (multiplicative schedule), never restarting at 1.0:
    # the last step used 0.9 ** (episodes finished before it), floored at 0.01
    expected = [max(0.01, 0.9 ** e) for e in (second.episode, second.episode - 1)]
    assert any(second.epsilon == pytest.approx(e) for e in expected)
    assert second.epsilon <= first.epsilon


OBS_SPACE_CP = gym.make("CartPole-v1").observation_space


def test_ctrl_c_saves_a_checkpoint_that_resumes(tmp_path):
    cfg = dqn.DQNConfig(total_timesteps=2000, checkpoint_every=0, seed=2, **TINY)

    def interrupt(i, loss):
        if i == 50:
            raise KeyboardInterrupt

    lines = []
    with pytest.raises(KeyboardInterrupt):
        dqn_train.train(cfg, tmp_path, log=lines.append, on_update=interrupt)
    assert any("interrupted" in line and "--resume" in line for line in lines)
    path = CheckpointManager(tmp_path / "checkpoints").latest()
    meta = json.loads((path / "state.json").read_text())
    assert meta["state"]["global_step"] == 200  # update 50 is in the 10th round, at step 100 + 10 * 10
    _, state = dqn_train.train(dataclasses.replace(cfg, total_timesteps=300), tmp_path, resume=True,
                               log=lambda line: None)
    assert state.global_step == 300


def test_corrupt_checkpoint_is_refused_and_the_previous_good_one_used(tmp_path):
    cfg = dqn.DQNConfig(total_timesteps=300, checkpoint_every=3, keep_checkpoints=2, seed=0, **TINY)
    dqn_train.train(cfg, tmp_path, log=lambda line: None)
    manager = CheckpointManager(tmp_path / "checkpoints", log=lambda line: None)
    newest, older = manager.checkpoints()[:2]
    weights = newest / "q_net.weights.h5"
    weights.write_bytes(weights.read_bytes()[:100])  # a truncated file
    lines = []
    manager.log = lines.append
    assert manager.latest() == older and newest.exists()
    assert "corrupt" in lines[0] and "q_net.weights.h5" in lines[0] and "SHA-256" in lines[0]
    (older / "COMPLETE").unlink()
    with pytest.raises(CorruptCheckpointError, match="no usable checkpoint.*incomplete"):
        manager.latest()


def test_resumed_run_with_a_larger_total_keeps_its_epsilon_schedule(tmp_path):
    # linear schedule over the whole run (fraction 1.0): 1.0 -> 0.1 over the run's total_timesteps
    cfg = dqn.DQNConfig(total_timesteps=100, checkpoint_every=0, exploration_fraction=1.0, epsilon_end=0.1,
                        seed=4, **TINY)
    _, first = dqn_train.train(cfg, tmp_path, log=lambda line: None)
    # the last action (step 99): 1.0 + (0.1 - 1.0) * 99 / 100 = 0.109
    assert first.epsilon == pytest.approx(0.109) and first.schedule_timesteps == 100
    # resumed with total 200: the run keeps its 100-step schedule, so step 199 is past it: 0.1. A schedule
    # recomputed from the new total would move epsilon back up: 1.0 - 0.9 * 100 / 200 = 0.55 at step 100,
    # and 1.0 - 0.9 * 199 / 200 = 0.1045 at step 199.
    _, second = dqn_train.train(dataclasses.replace(cfg, total_timesteps=200), tmp_path, resume=True,
                                log=lambda line: None)
    assert second.epsilon == pytest.approx(0.1, abs=1e-12) and second.schedule_timesteps == 100
    longer = dataclasses.replace(cfg, total_timesteps=200)
    assert dqn.epsilon_at(longer, 100, 0, schedule_timesteps=100) == pytest.approx(0.1)
    assert dqn.epsilon_at(longer, 100, 0) == pytest.approx(0.55)


def test_invalid_config_values_name_the_argument():
    with pytest.raises(ValueError, match="`gamma`: expected >= 0 and <= 1, got 1.5"):
        cfglib.validate(dqn.DQNConfig(gamma=1.5))
    with pytest.raises(ValueError, match="`batch_size`: expected >= 1, got 0"):
        cfglib.validate(dqn.DQNConfig(batch_size=0))


# ----------------------------------------------------------------------------------------------
# The real CLI
# ----------------------------------------------------------------------------------------------


def test_cli_quick_run_writes_curve_gif_policy_and_resumes(tmp_path):
    cmd = [sys.executable, "-m", "kcourse", "run", "dqn", "--quick", "--variant", "dueling-double",
           "--out", str(tmp_path)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    (run_dir,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    result = json.loads((run_dir / "result.json").read_text())
    assert result["metrics"]["variant"] == "dueling-double" and result["metrics"]["env_steps"] > 0
    for name in ("learning_curve.png", "agent.gif", "returns.csv", "policy/policy.json", "policy/model.keras"):
        assert (run_dir / name).is_file(), name
    assert list((run_dir / "train").glob("events.out.tfevents.*"))
    # corrupt every checkpoint: --resume is refused with a one-line error, exit code 2
    for ckpt in CheckpointManager(run_dir / "checkpoints").checkpoints():
        (ckpt / "COMPLETE").unlink()
    proc = subprocess.run([sys.executable, "-m", "kcourse", "run", "dqn", "--resume", str(run_dir)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 2
    assert "kcourse: error:" in proc.stderr and "no usable checkpoint" in proc.stderr and "incomplete" in proc.stderr


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("activation", ["relu", "elu"])
def test_numpy_acting_matches_the_keras_network(variant, activation):
    cfg = dqn.DQNConfig(variant=variant, hidden=(8, 8), activation=activation)
    agent = dqn.DQNAgent(cfg, OBS_SPACE_CP, ACT_SPACE)
    obs = np.random.default_rng(0).normal(size=(6, 4)).astype("float32")
    numpy_q = numpy_q_function(agent.q_net.get_weights(), activation, dueling=cfg.dueling)
    np.testing.assert_allclose(numpy_q(obs), agent.q_values(obs), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(agent._fast_q(obs), agent.q_values(obs), rtol=1e-4, atol=1e-5)
    agent.q_net.set_weights([w * 2 for w in agent.q_net.get_weights()])
    agent.weights_changed()  # the acting copy follows new weights
    np.testing.assert_allclose(agent._fast_q(obs[:1]), agent.q_values(obs[:1]), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("variant", ["dqn", "dueling"])
def test_numpy_acting_matches_the_embedding_network(variant):
    cfg = dqn.DQNConfig(env="FrozenLake-v1", variant=variant, hidden=(8,))
    agent = dqn.DQNAgent(cfg, gym.spaces.Discrete(16), gym.spaces.Discrete(4), embedding_dim=4)
    states = np.arange(16, dtype=np.int32)
    numpy_q = numpy_q_function(agent.q_net.get_weights(), "relu", dueling=cfg.dueling, embedding=True)
    np.testing.assert_allclose(numpy_q(states), agent.q_values(states), rtol=1e-4, atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("variant", VARIANTS)
def test_cartpole_learning_regression(tmp_path, variant):
    """The defaults (SB3 zoo's settings with 3-step returns), seed 0, 1 TF thread, a fresh process, as the
    sweep in docs/dqn.md: a greedy 100-episode mean >= 475 within 50,000 env steps."""
    from pathlib import Path

    budget = 50_000
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "dqn_cartpole.py"
    out = tmp_path / "rows.json"
    proc = subprocess.run([sys.executable, str(script), "--impl", "keras", "--threads", "1", "--variant", variant,
                           "--seeds", "0", "--max-steps", str(budget), "--json", str(out)],
                          capture_output=True, text=True, timeout=3600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    (row,) = json.loads(out.read_text())
    assert row["greedy_eval_solved_step"] is not None and row["greedy_eval_solved_step"] <= budget, row


# ----------------------------------------------------------------------------------------------
# n-step returns
# ----------------------------------------------------------------------------------------------


def test_n_step_return_and_window_by_hand():
    from agents.replay import NStepWindow, n_step_return

    assert n_step_return([1.0, 2.0, 4.0], 0.5) == pytest.approx(1 + 0.5 * 2 + 0.25 * 4)  # = 3.0
    buf = ReplayBuffer(10, obs_shape=(1,))
    window = NStepWindow(buf, n=3, gamma=0.5)
    # an episode of 5 steps, reward 1 each, terminated at the last step (t = 4)
    for t in range(5):
        window.add([t], 0, 1.0, [t + 1], terminated=t == 4, truncated=False)
    # t=0, 1: full windows: 1 + 0.5 + 0.25 = 1.75, to s_3 and s_4, not terminal, horizon 3
    # t=2, 3, 4: flushed at the end: 1.75 (3 rewards), 1.5 (2), 1.0 (1), all to s_5, terminal
    np.testing.assert_allclose(buf.rewards[:5], [1.75, 1.75, 1.75, 1.5, 1.0])
    np.testing.assert_allclose(buf.next_obs[:5, 0], [3, 4, 5, 5, 5])
    np.testing.assert_allclose(buf.terminated[:5], [0, 0, 1, 1, 1])
    np.testing.assert_allclose(buf.horizons[:5], [3, 3, 3, 2, 1])
    # a time limit flushes too, without terminating: the TD target still bootstraps
    window.add([9], 1, 1.0, [10], terminated=False, truncated=True)
    assert (buf.terminated[5], buf.truncated[5], buf.horizons[5]) == (0.0, 1.0, 1.0)


@pytest.mark.parametrize("variant", VARIANTS)
def test_n_step_targets_discount_the_bootstrap_by_gamma_to_the_horizon(variant):
    # BATCH's first transition as a 2-step one (its reward stands for 2 rewards): gamma 0.5 -> 0.25
    #   dqn / dueling: 1 + 0.25 * 2 = 1.5;  double: 1 + 0.25 * 1 = 1.25;  the terminal one stays 0
    agent = linear_agent(variant)
    _, targets, _ = agent.compute_loss(**BATCH, horizons=np.array([2.0, 1.0], "float32"))
    expected = [1.25, 0.0] if "double" in variant else [1.5, 0.0]
    np.testing.assert_allclose(np.asarray(targets), expected, rtol=1e-6)


def test_target_updates_inside_a_training_round_every_n_gradient_steps():
    # 6 gradient steps with target_update_updates=4: the target is copied after step 4 only, so it
    # equals the online net as it was after 4 steps, not the initial target or the final online net
    cfg = dqn.DQNConfig(variant="dqn", hidden=(), loss="mse", gamma=0.5, target_update_updates=4)
    agent = dqn.DQNAgent(cfg, OBS_SPACE, ACT_SPACE)
    buf = ReplayBuffer(4, obs_shape=(2,), seed=0)
    for i in range(2):
        buf.add(BATCH["obs"][i], BATCH["actions"][i], BATCH["rewards"][i], BATCH["next_obs"][i],
                bool(BATCH["terminated"][i]), False)
    initial_target = [w.copy() for w in agent.target_net.get_weights()]
    agent.learn(buf, batch_size=2, gradient_steps=4)
    after_4 = [w.copy() for w in agent.q_net.get_weights()]
    agent.learn(buf, batch_size=2, gradient_steps=2)
    for t, a, i, o in zip(agent.target_net.get_weights(), after_4, initial_target, agent.q_net.get_weights()):
        np.testing.assert_array_equal(t, a)
        assert not np.array_equal(t, i) and not np.array_equal(t, o)


def _fake_evaluation(calls, select_mean, report_mean):
    """An ``evaluate`` that scores ``select_mean`` on selection seeds and ``report_mean`` on report seeds."""
    from agents import evaluation

    def fake(policy, env_id, episodes=100, seed=0, **kwargs):
        calls.append(range(seed, seed + episodes))
        mean = select_mean if seed in evaluation.SELECT_SEEDS else report_mean
        return evaluation.EvalResult(mean, 0.0, mean, mean, [mean] * episodes, [1] * episodes, env_id, seed)

    return fake


def test_reached_follows_the_report_not_the_selection(tmp_path, monkeypatch):
    from agents.evaluation import REPORT_EPISODES, REPORT_SEED

    calls = []
    monkeypatch.setattr(dqn_train, "evaluate", _fake_evaluation(calls, select_mean=500.0, report_mean=400.0))
    cfg = dqn.DQNConfig(total_timesteps=400, checkpoint_every=0, **dict(TINY, eval_interval=200, eval_episodes=20))
    result = dqn_train.run(cfg, tmp_path)
    metrics = result["metrics"]
    assert metrics["solved_step"] == 200 and metrics["select_mean"] == 500.0  # selection passed, the run stopped
    assert result["reached"] is False and metrics["eval_mean"] == 400.0
    assert ("report 100-episode mean 400.0 (< 475, missed by 75.0); selection passed at 200 env steps"
            in result["headline"])
    *selection, report = calls
    assert report == range(REPORT_SEED, REPORT_SEED + REPORT_EPISODES)
    assert metrics["report_seeds"] == [report[0], report[-1]]
    assert selection and all(set(s).isdisjoint(report) for s in selection)  # the 10-episode screen, then all 20
