"""REINFORCE: the return math by hand, the compiled step, lockstep collection, the CLI, learning."""
import json
import re

import numpy as np
import pytest

from agents import policy_gradient as pg
from agents.policy_gradient import discount_and_normalize_rewards, discount_rewards
from keras_impl.config import resolve


def test_discount_rewards_homl_example():
    # Rewards 10, 0, -50 with gamma 0.8, computed backwards:
    #   G2 = -50
    #   G1 = 0 + 0.8 * -50 = -40
    #   G0 = 10 + 0.8 * -40 = -22
    np.testing.assert_allclose(discount_rewards([10, 0, -50], 0.8), [-22, -40, -50])


def test_discount_rewards_edge_cases():
    np.testing.assert_allclose(discount_rewards([1, 1, 1], 0.0), [1, 1, 1])  # gamma 0: immediate reward
    np.testing.assert_allclose(discount_rewards([1, 1, 1], 1.0), [3, 2, 1])  # gamma 1: reward-to-go
    assert discount_rewards([], 0.9).shape == (0,)
    with pytest.raises(ValueError, match="discount_rate"):
        discount_rewards([1.0], 1.5)


def test_discount_and_normalize_homl_example():
    # Episodes [10, 0, -50] and [10, 20], gamma 0.8:
    #   discounted: [-22, -40, -50] and [10 + 0.8 * 20, 20] = [26, 20]
    #   all five: mean = (-22 - 40 - 50 + 26 + 20) / 5 = -66 / 5 = -13.2
    #   deviations: -8.8, -26.8, -36.8, 39.2, 33.2; squares sum to 4788.8; var = 957.76
    #   std = sqrt(957.76) = 30.9477...
    #   normalised: -8.8 / 30.9477 = -0.28435, -0.86598, -1.18910 | 1.26665, 1.07278 (HOML's output)
    first, second = discount_and_normalize_rewards([[10, 0, -50], [10, 20]], 0.8)
    np.testing.assert_allclose(first, [-0.28435071, -0.86597718, -1.18910299], rtol=1e-6)
    np.testing.assert_allclose(second, [1.26665318, 1.0727777], rtol=1e-6)


def test_normalize_constant_returns_gives_zeros_not_nan():
    out = discount_and_normalize_rewards([[1.0], [1.0]], 0.9)
    assert all(np.all(o == 0) for o in out)


def test_sample_actions_follows_probabilities():
    rng = np.random.default_rng(0)
    certain = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]], dtype=np.float32)
    assert pg.sample_actions(certain, rng).tolist() == [0, 2]
    probs = np.tile(np.array([[0.2, 0.8]], dtype=np.float32), (20_000, 1))
    freq = pg.sample_actions(probs, rng).mean()
    assert abs(freq - 0.8) < 0.02


def test_train_step_moves_probability_by_the_sign_of_the_weight():
    agent = pg.Reinforce(obs_dim=4, n_actions=2, hidden_units=8, learning_rate=0.05)
    obs = np.zeros((4, 4), dtype=np.float32)
    p0 = agent.probabilities(obs).numpy()[0, 1]
    agent.train_step(obs, np.ones(4, np.int32), np.ones(4, np.float32))  # action 1 was good
    p1 = agent.probabilities(obs).numpy()[0, 1]
    agent.train_step(obs, np.ones(4, np.int32), -np.ones(4, np.float32) * 4)  # action 1 was (very) bad
    p2 = agent.probabilities(obs).numpy()[0, 1]
    assert p1 > p0 and p2 < p1


def test_play_episodes_lockstep_shapes():
    from agents.envs import make_env

    envs = [make_env("CartPole-v1", seed=i) for i in range(3)]
    uniform = lambda obs: np.full((len(obs), 2), 0.5, np.float32)  # noqa: E731
    observations, actions, rewards = pg.play_episodes(envs, uniform, np.random.default_rng(0), seeds=[0, 1, 2])
    again = pg.play_episodes([make_env("CartPole-v1") for _ in range(3)], uniform, np.random.default_rng(0),
                             seeds=[0, 1, 2])
    assert all(np.array_equal(x, y) for x, y in zip(observations, again[0]))  # seeded: same episodes
    for o, a, r in zip(observations, actions, rewards):
        assert o.shape == (len(r), 4) and a.shape == (len(r),) and len(r) >= 8
        assert set(np.unique(a)) <= {0, 1}
    capped = pg.play_episodes(envs, uniform, np.random.default_rng(0), max_steps=5)[2]
    assert all(len(r) <= 5 for r in capped)


def test_config_presets_and_validation():
    # the LunarLander preset applies to the alias too; what the user types wins over it
    cfg = pg.resolved(resolve(pg.PolicyGradientConfig, {"env": "lunarlander"}))
    assert (cfg.env, cfg.learning_rate, cfg.eval_policy, cfg.target) == ("LunarLander-v3", 0.005, "sample", 200.0)
    typed = pg.resolved(resolve(pg.PolicyGradientConfig, {"env": "LunarLander-v3", "learning_rate": 0.5}))
    assert typed.learning_rate == 0.5 and typed.hidden_units == 64
    default = pg.resolved(pg.PolicyGradientConfig())
    assert (default.eval_policy, default.target, default.learning_rate) == ("greedy", 475.0, 0.01)
    with pytest.raises(ValueError, match="`episodes_per_update`: expected >= 1, got 0"):
        pg.resolved(pg.PolicyGradientConfig(episodes_per_update=0))


def test_training_is_deterministic_for_a_seed():
    cfg = pg.PolicyGradientConfig(iterations=3, episodes_per_update=4, eval_episodes=2, seed=3)
    a = pg.train(cfg, log=None)
    b = pg.train(cfg, log=None)
    assert a["history"] == b["history"]
    for wa, wb in zip(a["agent"].model.get_weights(), b["agent"].model.get_weights()):
        np.testing.assert_array_equal(wa, wb)


def test_capture_video_records_env0(tmp_path):
    cfg = pg.PolicyGradientConfig(iterations=1, episodes_per_update=2, eval_episodes=1, capture_video=True, seed=0)
    pg.train(cfg, run_dir=tmp_path, log=None)
    assert sorted(p.name for p in (tmp_path / "videos").iterdir()) == ["train-episode-0.mp4"]


def test_lunarlander_iteration_runs():
    pytest.importorskip("Box2D")
    cfg = pg.PolicyGradientConfig(env="lunarlander", iterations=1, episodes_per_update=2, max_steps=40,
                                  eval_episodes=1, seed=0)
    out = pg.train(cfg, log=None)
    assert out["steps"] <= 80 and out["agent"].model.output_shape == (None, 4)
    sampled = out["agent"].policy("sample", seed=0)(np.zeros((5, 8), np.float32))
    assert sampled.shape == (5,) and set(sampled.tolist()) <= {0, 1, 2, 3}


def test_cli_quick_run_saves_an_evaluable_policy(tmp_path, capsys):
    from agents.policy_files import load_policy
    from kcourse import cli

    run_dir = tmp_path / "pg"
    assert cli.main(["run", "policy-gradient", "--quick", "--run-dir", str(run_dir)]) == 0
    result = json.loads((run_dir / "result.json").read_text())
    assert result["metrics"]["episodes"] > 0 and (run_dir / "learning_curve.png").is_file()
    policy, meta = load_policy(run_dir / "policy")
    assert meta["kind"] == "softmax" and meta["env_id"] == "CartPole-v1"
    assert meta["config"]["iterations"] == 8 and meta["evaluation"]["mean"] == result["metrics"]["eval_mean"]
    assert cli.main(["eval", str(run_dir), "--episodes", "3", "--seed", "5"]) == 0
    assert re.search(r"over 3 episodes \([123] distinct outcomes?\), seed 5", capsys.readouterr().out)


@pytest.mark.slow
def test_reinforce_solves_cartpole():
    out = pg.train(pg.PolicyGradientConfig(env="CartPole-v1", seed=1), log=None)
    assert out["reached"], f"greedy mean {out['evaluation'].mean:.1f} after {out['episodes']} episodes"
    assert out["evaluation"].mean >= 475 and len(out["evaluation"].returns) == 100


def test_reached_follows_the_report_not_the_selection(tmp_path, monkeypatch):
    from agents import evaluation

    calls = []

    def fake_evaluate(policy, env_id, episodes=100, seed=0, **kwargs):
        calls.append(range(seed, seed + episodes))
        mean = 500.0 if seed in evaluation.SELECT_SEEDS else 5.0  # every selection check passes, the report misses
        return evaluation.EvalResult(mean, 0.0, mean, mean, [mean] * episodes, [1] * episodes, env_id, seed)

    monkeypatch.setattr(evaluation, "evaluate", fake_evaluate)
    cfg = pg.PolicyGradientConfig(target=10.0, iterations=3, eval_every=1, eval_episodes=10, gif=False)
    result = pg.run(cfg, tmp_path)  # a random policy's training returns (~20) are near the target: checks run
    assert result["metrics"]["selection_passed"] is True and result["metrics"]["select_mean"] == 500.0
    assert result["reached"] is False and result["metrics"]["eval_mean"] == 5.0
    assert "report greedy mean 5.0 over 10 episodes (< 10, missed by 5.0); selection passed" in result["headline"]
    *selection, report = calls
    assert report == range(evaluation.REPORT_SEED, evaluation.REPORT_SEED + 10)
    assert len(selection) == 3 and all(set(s).isdisjoint(report) for s in selection)  # 20, all 10, the second set
