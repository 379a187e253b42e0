"""The hard-coded angle policy and the network that imitates it."""
import json

import numpy as np

from agents import policies
from agents.policies import basic_policy, basic_policy_stats


def test_basic_policy_is_batched_and_follows_the_angle():
    obs = np.array([[0, 0, -0.05, 0], [0, 0, 0.05, 0], [1, -1, -0.01, 2], [0, 0, 0.0, 0]], dtype=np.float32)
    assert basic_policy(obs).tolist() == [0, 1, 0, 1]  # lean left -> push left (0); else right (1)


def test_basic_policy_stats_like_homl():
    # HOML (old gym, 200-step cap, 500 episodes): mean ~42, max 68. The policy never reaches 200
    # steps, so the cap does not matter and both limits give the same numbers.
    capped = basic_policy_stats(episodes=100, seed=42, max_steps=200)
    assert 30 < capped.mean < 55 and capped.max < 100
    assert basic_policy_stats(episodes=100, seed=42).returns == capped.returns
    assert basic_policy_stats(episodes=100, seed=42, max_steps=200).returns == capped.returns  # seeded


def test_imitation_learns_the_angle_rule():
    model, losses = policies.train_imitation(iterations=250, n_envs=50, seed=0, learning_rate=0.01, log=None)
    assert losses[-50:].mean() < 0.6 * losses[:50].mean()
    # On a grid of angles the greedy net now mostly does what the angle policy does.
    rng = np.random.default_rng(0)
    obs = np.zeros((400, 4), np.float32)
    obs[:, 2] = rng.uniform(-0.2, 0.2, 400)
    obs[:, 3] = rng.normal(0, 0.3, 400)
    agree = np.mean(policies.greedy_left_policy(model)(obs) == basic_policy(obs))
    assert agree > 0.8


def test_imitation_is_deterministic():
    _, a = policies.train_imitation(iterations=5, n_envs=8, seed=1, log=None)
    _, b = policies.train_imitation(iterations=5, n_envs=8, seed=1, log=None)
    np.testing.assert_array_equal(a, b)


def test_cli_quick(tmp_path):
    from agents.policy_files import load_policy
    from kcourse import cli

    run_dir = tmp_path / "bp"
    assert cli.main(["run", "basic-policy", "--quick", "--run-dir", str(run_dir)]) == 0
    metrics = json.loads((run_dir / "result.json").read_text())["metrics"]
    assert metrics["basic_max_200"] <= 200 and metrics["basic_mean_500"] >= metrics["basic_mean_200"]
    policy, meta = load_policy(run_dir / "policy")
    assert meta["kind"] == "bernoulli-left" and policy(np.zeros((3, 4), np.float32)).shape == (3,)
