"""The training recipe's rules, each checked where it could silently go wrong: final weights,
rewards clipped only where they are learned from, and a resume that trains on exactly as before."""
import dataclasses

import gymnasium as gym
import numpy as np
import pytest

from agents import dqn, dqn_train
from agents.replay import NStepWindow

TINY = dict(hidden=(16, 16), learning_starts=100, train_frequency=10, gradient_steps=5, batch_size=16,
            target_update_interval=50, gif=False, checkpoint_every=0)


def _record_learned_weights(monkeypatch):
    """The online network's weights after every training round, in order."""
    seen = []
    learn = dqn.DQNAgent.learn

    def spy(self, *args, **kwargs):
        out = learn(self, *args, **kwargs)
        seen.append([w.copy() for w in self.q_net.get_weights()])
        return out

    monkeypatch.setattr(dqn.DQNAgent, "learn", spy)
    return seen


@pytest.mark.parametrize("keep_best", [False, True])
def test_train_returns_the_final_weights_unless_keep_best(tmp_path, monkeypatch, keep_best):
    seen = _record_learned_weights(monkeypatch)
    # a target no run reaches: the run ends at its budget with several selection evaluations behind it
    cfg = dqn.DQNConfig(total_timesteps=1_000, eval_interval=200, eval_episodes=3, target_return=1e9, seed=3,
                        keep_best=keep_best, **TINY)
    agent, state = dqn_train.train(cfg, tmp_path / str(keep_best), log=lambda line: None)
    final = seen[-1]
    same = all(np.array_equal(a, b) for a, b in zip(agent.q_net.get_weights(), final))
    assert len(state.evals) >= 4
    if keep_best:  # the best selection's weights: an earlier round's (the last evaluation is not the best here)
        best_step = max(state.evals, key=lambda e: e[2])[0]
        assert best_step != state.global_step and not same
    else:
        assert same


class _RewardFive(gym.Env):
    """10-step episodes with rewards +5, -3, +5, -3, ... (returns 10), a 4-number observation."""

    observation_space = gym.spaces.Box(-1.0, 1.0, (4,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.zeros(4, np.float32), {}

    def step(self, action):
        self.t += 1
        reward = 5.0 if self.t % 2 else -3.0
        return np.full(4, self.t / 10, np.float32), reward, self.t >= 10, False, {}


@pytest.mark.parametrize("clip", [True, False])
def test_rewards_are_clipped_where_learned_from_and_returns_stay_unclipped(tmp_path, monkeypatch, clip):
    gym.register("KcourseRewardFive-v0", entry_point=_RewardFive)
    stored = []
    add = NStepWindow.add

    def spy(self, obs, action, reward, *args, **kwargs):
        stored.append(reward)
        return add(self, obs, action, reward, *args, **kwargs)

    monkeypatch.setattr(NStepWindow, "add", spy)
    cfg = dqn.DQNConfig(env="KcourseRewardFive-v0", total_timesteps=60, eval_interval=0, eval_episodes=1,
                        target_return=1e9, clip_rewards=clip, seed=0, **dict(TINY, learning_starts=30))
    _, state = dqn_train.train(cfg, tmp_path, log=lambda line: None)
    assert sorted(set(stored)) == ([-1.0, 1.0] if clip else [-3.0, 5.0])
    assert state.returns == [10.0] * 6  # the game's score: 5 * (5 - 3)


def test_an_interrupted_and_resumed_breakout_run_trains_on_as_the_uninterrupted_one(tmp_path, monkeypatch):
    """Weights, optimizer, replay, exploration and DrQ's shift generator all come back from the
    checkpoint, and each training episode is reset with its own seed: the losses after the resume
    are the uninterrupted run's."""
    pytest.importorskip("ale_py")
    from keras_impl import config as cfglib

    cfg = cfglib.resolve(dqn.DQNConfig, {"env": "breakout", "total_timesteps": 900, "learning_starts": 300,
                                         "deterministic": True, "seed": 4}, quick=True)
    assert cfg.augment_pad == 4 and cfg.clip_rewards and cfg.train_protocol == "sticky"

    def losses(run_dir, resume=False):
        out = {}
        dqn_train.train(cfg, run_dir, resume=resume, log=lambda line: None,
                        on_update=lambda i, loss: out.__setitem__(i, loss))
        return out

    whole = losses(tmp_path / "whole")
    end_episode = dqn_train._end_episode

    def stop_after_episode_3(run, *args):
        end_episode(run, *args)
        if run.state.episode == 3:
            raise KeyboardInterrupt  # Ctrl-C (or SIGTERM) at an episode's end: a checkpoint is saved

    monkeypatch.setattr(dqn_train, "_end_episode", stop_after_episode_3)
    with pytest.raises(KeyboardInterrupt):
        before = losses(tmp_path / "split")
    monkeypatch.setattr(dqn_train, "_end_episode", end_episode)
    after = losses(tmp_path / "split", resume=True)
    assert after, "the resumed part made no update"
    first = min(after)
    assert first > 1 and all(i in whole for i in after)  # it resumed after some updates, not from scratch
    np.testing.assert_allclose([after[i] for i in sorted(after)], [whole[i] for i in sorted(after)], rtol=1e-6)


def test_target_is_online_gives_the_same_losses_as_copying_the_weights_every_step(tmp_path, monkeypatch):
    """DrQ(epsilon)'s settings (a hard target copy after every env step, one gradient step per update):
    the agent computes targets with the online net instead of copying it; the losses are the same."""
    cfg = dqn.DQNConfig(total_timesteps=300, target_update_interval=1, train_frequency=1, gradient_steps=1,
                        learning_starts=100, batch_size=16, hidden=(16, 16), eval_interval=0, eval_episodes=1,
                        target_return=1e9, gif=False, checkpoint_every=0, variant="double", seed=5, deterministic=True)

    def losses(folder):
        out = []
        dqn_train.train(cfg, folder, log=lambda line: None, on_update=lambda i, loss: out.append(loss))
        return out

    env = dqn_train.make_env("CartPole-v1")
    assert not dqn.DQNAgent(dataclasses.replace(cfg, target_update_interval=2), env.observation_space,
                            env.action_space).target_is_online
    fast = losses(tmp_path / "fast")
    init = dqn.DQNAgent.__init__

    def copying(self, *args, **kwargs):
        init(self, *args, **kwargs)
        assert self.target_is_online  # these settings enable it
        self.target_is_online = False  # copy the online weights into the target net after every step

    monkeypatch.setattr(dqn.DQNAgent, "__init__", copying)
    slow = losses(tmp_path / "slow")
    assert len(fast) == 200 and fast == slow


@pytest.mark.parametrize("keep_best, exported_update", [(False, 256), (True, 192)])
def test_tfa_exports_the_final_policy_unless_keep_best(cli, tmp_path, keep_best, exported_update):
    pytest.importorskip("tf_agents")
    import json

    # 4 iterations of 64 updates; the only selection evaluation is at iteration 3 (update 192)
    run_dir = tmp_path / "run"
    code, out, err = cli("run", "tfa-dqn", "--quick", "--run-dir", run_dir, "--config", "eval_interval=3",
                         "--config", f"keep_best={str(keep_best).lower()}")
    assert code == 0, err[-2000:]
    meta = json.loads((run_dir / "policy" / "policy.json").read_text())
    metrics = json.loads((run_dir / "result.json").read_text())["metrics"]
    assert metrics["train_step"] == 256 and meta["train_step"] == exported_update
    assert metrics["final_weights"] is (not keep_best)


def test_checkpoint_steps_saves_at_the_first_episode_end_after_each_mark(tmp_path, monkeypatch):
    saved_at = []
    save = dqn_train._Run.save

    def spy(self):
        saved_at.append(self.state.global_step)
        return save(self)

    monkeypatch.setattr(dqn_train._Run, "save", spy)
    cfg = dqn.DQNConfig(total_timesteps=300, eval_interval=0, eval_episodes=1, target_return=1e9, seed=1,
                        checkpoint_steps=100, **TINY)
    dqn_train.train(cfg, tmp_path / "on", log=lambda line: None)
    marks = saved_at[:-1]  # the last save is train()'s at the end
    assert len(marks) >= 2 and [m // 100 for m in marks] == list(range(1, len(marks) + 1))
    saved_at.clear()
    dqn_train.train(dataclasses.replace(cfg, checkpoint_steps=0), tmp_path / "off", log=lambda line: None)
    assert len(saved_at) == 1  # only the end


def test_the_training_env_plays_the_configured_protocol(tmp_path):
    pytest.importorskip("ale_py")
    from keras_impl import config as cfglib

    for protocol, sticky in (("sticky", 0.25), ("atari100k", 0.0)):
        cfg = cfglib.resolve(dqn.DQNConfig, {"env": "breakout", "train_protocol": protocol}, quick=True)
        run, env = dqn_train._start(cfg, tmp_path / protocol, False, lambda line: None)
        assert env.unwrapped.ale.getFloat("repeat_action_probability") == pytest.approx(sticky)
        env.close()
