"""Tabular methods on HOML's Markov chain and 3-state MDP."""
import json

import numpy as np
import pytest

from agents import tabular
from agents.tabular import HOML_MDP, MARKOV_CHAIN, greedy_policy, q_learning, q_value_iteration


def test_q_value_iteration_gamma_090_matches_homl():
    q, history = q_value_iteration(HOML_MDP, gamma=0.90, iterations=50)
    # HOML's printed table (gamma 0.90, 50 iterations).
    np.testing.assert_allclose(q[0], [18.92, 17.03, 13.62], atol=0.005)
    np.testing.assert_allclose(q[1, [0, 2]], [0.0, -4.88], atol=0.005)
    np.testing.assert_allclose(q[2, 1], 50.13, atol=0.005)
    assert np.isneginf(q[1, 1]) and np.isneginf(q[2, 0]) and np.isneginf(q[2, 2])  # impossible actions
    assert greedy_policy(q).tolist() == [0, 0, 1]
    assert history.shape == (50, 3, 3)
    assert history[0, 0, 0] == 0.0  # history[k] is Q before update k


def test_q_value_iteration_first_update_by_hand():
    # From Q = 0, one update gives the expected immediate reward:
    # Q(s0,a0) = 0.7*10 = 7; Q(s1,a2) = 1.0*-50 = -50; Q(s2,a1) = 0.8*40 = 32.
    q, _ = q_value_iteration(HOML_MDP, gamma=0.90, iterations=1)
    assert q[0, 0] == pytest.approx(7.0)
    assert q[1, 2] == pytest.approx(-50.0)
    assert q[2, 1] == pytest.approx(32.0)


def test_q_value_iteration_gamma_095_goes_through_the_fire():
    q, _ = q_value_iteration(HOML_MDP, gamma=0.95, iterations=50)
    assert greedy_policy(q).tolist() == [0, 2, 1]  # s1 now takes action 2 (-50 now, +40 later)
    np.testing.assert_allclose(q[0], [21.73, 20.64, 16.70], atol=0.01)


def test_q_value_iteration_rejects_bad_gamma():
    with pytest.raises(ValueError, match="gamma"):
        q_value_iteration(HOML_MDP, gamma=1.5)


def test_q_learning_reaches_the_value_iteration_policy():
    q_vi, _ = q_value_iteration(HOML_MDP, 0.90, 50)
    q, history = q_learning(HOML_MDP, gamma=0.90, iterations=10_000, seed=42)
    assert greedy_policy(q).tolist() == greedy_policy(q_vi).tolist() == [0, 0, 1]
    assert abs(q[0, 0] - q_vi[0, 0]) < 0.1 * q_vi[0, 0]  # within 10% of the true Q(s0, a0) = 18.92
    assert history.shape == (10_000, 3, 3)
    q2, _ = q_learning(HOML_MDP, gamma=0.90, iterations=10_000, seed=42)
    np.testing.assert_array_equal(q, q2)  # seeded: deterministic


def test_q_learning_learning_rate_decay_first_step():
    # Step 0: alpha = 0.05 / (1 + 0) = 0.05; from Q = 0 the updated entry is 0.05 * reward
    # (next value is 0), so after one step exactly one entry is 0 or 0.05 * {10, 40, -50}.
    q, _ = q_learning(HOML_MDP, iterations=1, seed=0)
    changed = np.isfinite(q) & (q != 0)
    assert changed.sum() <= 1
    if changed.any():
        assert q[changed][0] in (0.5, 2.0, -2.5)


def test_markov_chain_walks():
    rng = np.random.default_rng(42)
    walks = [tabular.sample_markov_chain(MARKOV_CHAIN, 0, 50, rng) for _ in range(200)]
    for walk in walks:
        assert walk[0] == 0 and len(walk) <= 50
        assert 3 not in walk[:-1]  # stops at the terminal state
        for s, s_next in zip(walk, walk[1:]):
            assert MARKOV_CHAIN[s, s_next] > 0  # only possible transitions
    assert sum(w[-1] == 3 for w in walks) > 150  # most walks end in s3 within 50 steps
    with pytest.raises(ValueError, match="transition_probabilities"):
        tabular.sample_markov_chain([[0.5, 0.4], [0.0, 1.0]])


def test_mdp_step_rejects_impossible_action():
    with pytest.raises(ValueError, match="not possible"):
        HOML_MDP.step(2, 0, np.random.default_rng(0))


@pytest.mark.parametrize("name,artifact", [("markov", "walks.txt"), ("q-value-iteration", "q_value_iteration.png"),
                                           ("q-learning", "q_value_plot.png")])
def test_cli_smoke(tmp_path, name, artifact):
    from kcourse import cli

    run_dir = tmp_path / name
    assert cli.main(["run", name, "--quick", "--run-dir", str(run_dir)]) == 0
    result = json.loads((run_dir / "result.json").read_text())
    assert result["status"] == "ok"
    assert (run_dir / artifact).is_file()
    if name == "q-value-iteration":
        assert result["metrics"]["policy"] == [0, 0, 1]
        assert result["metrics"]["policy_gamma_0.95"] == [0, 2, 1]
    if name == "q-learning":
        assert result["metrics"]["same_policy_as_value_iteration"] is True
