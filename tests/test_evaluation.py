"""Evaluation and policy-regression helpers, policy save/load, and `kcourse eval`."""
import json

import numpy as np
import pytest

from agents import evaluation
from agents.evaluation import assert_policy_return, evaluate, from_single, random_policy
from agents.policy_files import load_policy, save_policy
from agents.envs import make_env


def good_policy(obs_batch):
    """Push towards where the pole is heading (angle + 0.5 * angular velocity): balances 500 steps."""
    obs_batch = np.asarray(obs_batch)
    return (obs_batch[:, 2] + 0.5 * obs_batch[:, 3] > 0).astype(np.int64)


def test_assert_policy_return_fails_for_random_and_shows_the_returns():
    policy = random_policy(make_env("CartPole-v1").action_space, seed=0)
    with pytest.raises(AssertionError) as info:
        assert_policy_return(policy, "CartPole-v1", min_mean=195, episodes=10, seed=0)
    message = str(info.value)
    assert "< required 195" in message and "returns: [" in message
    shown = message.split("returns: [")[1].rstrip("]").split(", ")
    assert len(shown) == 10 and all(float(r) < 195 for r in shown)


def test_assert_policy_return_passes_for_a_good_policy():
    result = assert_policy_return(good_policy, "cartpole", min_mean=475, episodes=10, seed=0)
    assert result.mean >= 475 and result.env_id == "CartPole-v1"


def test_evaluate_is_deterministic_and_unpacks():
    a = evaluate(from_single(lambda o: int(o[2] > 0)), "CartPole-v1", episodes=8, seed=3)
    b = evaluate(from_single(lambda o: int(o[2] > 0)), "CartPole-v1", episodes=8, seed=3)
    assert a.returns == b.returns
    mean, std, lo, hi, returns = a
    assert (mean, std, lo, hi) == (np.mean(returns), np.std(returns), min(returns), max(returns))
    # Episode i uses seed + i, whatever the number of episodes.
    assert evaluate(from_single(lambda o: int(o[2] > 0)), "CartPole-v1", episodes=3, seed=3).returns == a.returns[:3]
    with pytest.raises(ValueError, match="episodes"):
        evaluate(good_policy, "CartPole-v1", episodes=0)


def _softmax_model(seed=0):
    import keras

    keras.utils.set_random_seed(seed)
    return keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="tanh"), keras.layers.Dense(2)])


def test_stochastic_evaluation_is_seeded():
    model = _softmax_model()
    a = evaluate(evaluation.stochastic(model, "softmax", seed=1), "CartPole-v1", episodes=5, seed=0)
    b = evaluate(evaluation.stochastic(model, "softmax", seed=1), "CartPole-v1", episodes=5, seed=0)
    c = evaluate(evaluation.stochastic(model, "softmax", seed=2), "CartPole-v1", episodes=5, seed=0)
    assert a.returns == b.returns and a.returns != c.returns
    with pytest.raises(ValueError, match="argmax"):
        evaluation.stochastic(model, "argmax")


def test_stochastic_softmax_samples_match_probabilities():
    import keras

    # Constant logits log(0.25), log(0.75): action 1 three times in four.
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(
        2, kernel_initializer="zeros", bias_initializer=keras.initializers.Constant(np.log([0.25, 0.75])))])
    actions = evaluation.stochastic(model, "softmax", seed=0)(np.zeros((20_000, 4), np.float32))
    assert abs(actions.mean() - 0.75) < 0.02


def test_save_load_round_trip(tmp_path):
    model = _softmax_model()
    result = evaluate(evaluation.greedy(model), "CartPole-v1", episodes=3, seed=0)
    path = save_policy(tmp_path / "pol", model, "cartpole", kind="softmax", config={"lr": 0.01}, evaluation=result)
    policy, meta = load_policy(path)
    obs = np.random.default_rng(0).normal(size=(16, 4)).astype(np.float32)
    np.testing.assert_array_equal(policy(obs), evaluation.greedy(model)(obs))
    assert meta["env_id"] == "CartPole-v1" and meta["kind"] == "softmax"
    assert meta["observation_space"]["shape"] == [4] and meta["action_space"]["n"] == 2
    assert meta["config"] == {"lr": 0.01} and meta["evaluation"]["returns"] == result.returns
    sampled, _ = load_policy(path, stochastic=True, seed=0)
    assert set(np.unique(sampled(obs))) <= {0, 1}
    save_policy(tmp_path / "q", model, "CartPole-v1", kind="argmax")
    with pytest.raises(ValueError, match="stochastically"):
        load_policy(tmp_path / "q", stochastic=True)
    with pytest.raises(FileNotFoundError):
        load_policy(tmp_path / "missing")
    with pytest.raises(ValueError, match="kind"):
        save_policy(tmp_path / "bad", model, "CartPole-v1", kind="nope")


def test_kcourse_eval_cli(tmp_path, capsys):
    from kcourse import cli

    save_policy(tmp_path / "pol", _softmax_model(), "CartPole-v1", kind="softmax")
    gif = tmp_path / "ep.gif"
    out_json = tmp_path / "r.json"
    code = cli.main(["eval", str(tmp_path / "pol"), "--episodes", "4", "--seed", "7", "--render", "gif",
                     "--render-out", str(gif), "--json", str(out_json)])
    assert code == 0 and gif.stat().st_size > 0
    printed = capsys.readouterr().out
    assert "over 4 episodes (1 distinct outcome), seed 7" in printed and "returns: [" in printed
    saved = json.loads(out_json.read_text())
    assert saved["seed"] == 7 and len(saved["returns"]) == 4 and saved["mode"] == "greedy"
    # The same command gives the same numbers (seeded); --stochastic works for softmax policies.
    assert cli.main(["eval", str(tmp_path / "pol"), "--episodes", "4", "--seed", "7", "--json", str(out_json)]) == 0
    assert json.loads(out_json.read_text())["returns"] == saved["returns"]
    assert cli.main(["eval", str(tmp_path / "pol"), "--episodes", "2", "--stochastic"]) == 0
    # Regression gate: exit 1 below --min-mean.
    assert cli.main(["eval", "random", "--env", "cartpole", "--episodes", "3", "--min-mean", "400"]) == 1
    capsys.readouterr()
    # User errors: one line, exit 2.
    assert cli.main(["eval", str(tmp_path / "missing")]) == 2
    assert "no saved policy" in capsys.readouterr().err
    assert cli.main(["eval", str(tmp_path / "pol"), "--env", "LunarLander-v3"]) == 2
    assert "cannot act in LunarLander-v3" in capsys.readouterr().err
    assert cli.main(["eval", "random"]) == 2


def test_kcourse_eval_epsilon_defaults_to_the_policys_eval_epsilon(tmp_path, capsys):
    from kcourse import cli

    save_policy(tmp_path / "pol", _softmax_model(), "CartPole-v1", kind="softmax", extra={"eval_epsilon": 0.5})
    runs = {}
    for name, extra_args in (("default", []), ("zero", ["--epsilon", "0"]), ("one", ["--epsilon", "1"]),
                             ("one again", ["--epsilon", "1"])):
        out_json = tmp_path / f"{name}.json"
        assert cli.main(["eval", str(tmp_path / "pol"), "--episodes", "6", "--seed", "3", "--json", str(out_json),
                         *extra_args]) == 0
        runs[name] = json.loads(out_json.read_text())
    assert (runs["default"]["mode"], runs["default"]["epsilon"]) == ("epsilon 0.5", 0.5)  # what the run reported with
    assert (runs["zero"]["mode"], runs["one"]["mode"]) == ("greedy", "epsilon 1")
    greedy = evaluate(load_policy(tmp_path / "pol")[0], "CartPole-v1", episodes=6, seed=3)
    assert runs["zero"]["returns"] == greedy.returns  # --epsilon 0 is the plain greedy policy
    assert runs["one"]["returns"] == runs["one again"]["returns"]  # seeded
    assert runs["one"]["returns"] != runs["zero"]["returns"]
    capsys.readouterr()
    for bad, message in ((["--epsilon", "1.5"], "`--epsilon`: expected a probability in [0, 1], got 1.5"),
                         (["--epsilon", "0.1", "--stochastic"], "--epsilon applies to a greedy policy")):
        assert cli.main(["eval", str(tmp_path / "pol"), "--episodes", "2", *bad]) == 2
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err


def test_env_factory_of_an_older_policy_file_is_found_where_it_moved():
    # kcourse before the restructure wrote "agents.tfa.atari:make_breakout_env" into Breakout's policy.json
    from agents import atari
    from agents.policy_files import env_factory_for

    # ... and the Breakout-only factory of the last round became the one Atari factory, bound to the id
    for old in ("agents.tfa.atari:make_breakout_env", "agents.atari:make_breakout_env"):
        factory = env_factory_for({"env_factory": old, "env_id": "BreakoutNoFrameskip-v4"})
        assert factory.func is atari.make_atari_env and factory.args == ("ALE/Breakout-v5",)
    assert env_factory_for({}) is None


@pytest.mark.parametrize("name", ["agents.nowhere:make_env", "agents.atari:no_such_function"])
def test_env_factory_outside_the_allow_list_is_a_one_line_error(name):
    from agents.policy_files import env_factory_for

    with pytest.raises(ValueError, match=f"field `env_factory` '{name}' is not allowed"):
        env_factory_for({"env_factory": name})


@pytest.mark.parametrize("first_ten, episodes, target, calls, mean", [
    # every episode returns first_ten's value in episodes 0-9 and 500 after them
    (100.0, 100, 475.0, [10], 100.0),          # the screen misses 475: stop after 10 episodes
    (500.0, 100, 475.0, [10, 100], 500.0),     # the screen passes: all 100 (mean (10 * 500 + 90 * 500) / 100)
    (100.0, 100, None, [100], (10 * 100 + 90 * 500) / 100),  # no target: all 100 at once (140.0)
    (100.0, 5, 475.0, [5], 100.0),             # no more than the screen asked: one run
])
def test_screened_evaluation_runs_all_episodes_only_after_a_passing_screen(first_ten, episodes, target, calls, mean):
    asked = []

    def run_episodes(n):
        asked.append(n)
        returns = [first_ten if i < 10 else 500.0 for i in range(n)]
        return evaluation.EvalResult(mean=float(np.mean(returns)), std=0.0, min=min(returns), max=max(returns),
                                     returns=returns, lengths=[1] * n, env_id="fake", seed=0)

    result = evaluation.screened(run_episodes, episodes, target)
    assert asked == calls
    assert result.mean == pytest.approx(mean)


# The selection rule: m - z * s * sqrt(1/n + 1/report_episodes) >= target, s with ddof=1, z = 1.645.
def test_selection_rule_refuses_a_widely_spread_mean_just_over_the_target():
    # 96 episodes of 500 and 4 of 0: m = 480 (5 over 475), s = sqrt((96 * 20^2 + 4 * 480^2) / 99)
    # = sqrt(960000 / 99) = 98.47; bound = 480 - 1.645 * 98.47 * sqrt(1/100 + 1/100) = 480 - 22.91 = 457.09.
    returns = [500.0] * 96 + [0.0] * 4
    assert evaluation.selection_bound(returns, report_episodes=100) == pytest.approx(457.09, abs=0.01)
    assert not evaluation.selection_passes(returns, 475.0, report_episodes=100)


def test_selection_rule_passes_a_tight_mean_just_over_the_target():
    # 50 episodes of 480 and 50 of 490: m = 485, s = sqrt(100 * 5^2 / 99) = 5.025;
    # bound = 485 - 1.645 * 5.025 * sqrt(2/100) = 485 - 1.17 = 483.83.
    returns = [480.0] * 50 + [490.0] * 50
    assert evaluation.selection_bound(returns, report_episodes=100) == pytest.approx(483.83, abs=0.01)
    assert evaluation.selection_passes(returns, 475.0, report_episodes=100)
    assert evaluation.selection_passes([500.0] * 100, 500.0)  # no spread: the mean itself (s = 0)


def test_selection_rule_counts_the_report_size_and_needs_two_episodes():
    # 150 successes in 200 episodes: m = 0.75, s = sqrt(200 * 0.75 * 0.25 / 199) = 0.4341;
    # against a 1,000-episode report: 0.75 - 1.645 * 0.4341 * sqrt(1/200 + 1/1000) = 0.75 - 0.0553 = 0.6947.
    returns = [1.0] * 150 + [0.0] * 50
    assert evaluation.selection_bound(returns, report_episodes=1000) == pytest.approx(0.6947, abs=1e-4)
    assert not evaluation.selection_passes(returns, 0.70, report_episodes=1000)
    assert evaluation.selection_passes(returns, 0.69, report_episodes=1000)
    assert evaluation.selection_bound([500.0]) == -np.inf  # one episode: no spread to measure, never passes
    with pytest.raises(ValueError, match="argument `report_episodes`: expected an integer >= 1, got 0"):
        evaluation.selection_bound(returns, report_episodes=0)


def test_the_interval_of_the_mean_brackets_it_and_is_repeatable():
    from agents.evaluation import EvalResult

    def result(returns):
        r = np.asarray(returns, dtype=float)
        return EvalResult(mean=float(r.mean()), std=float(r.std()), min=float(r.min()), max=float(r.max()),
                          returns=list(r), lengths=[1] * len(r), env_id="x", seed=0)

    games = result([7, 9, 12, 12, 14, 15, 17, 18, 20, 30])  # mean 15.4
    low, high = games.interval()
    assert low < 15.4 < high and (low, high) == games.interval()  # a fixed generator: the same interval
    # the spread of 10 such games: the standard error is about 6.3 / sqrt(10) = 2.0, so a 95% interval
    # spans roughly 2 x 1.96 x 2.0 = 7.8 points; a BCa bootstrap of 10 values comes out somewhat narrower
    assert 4.0 < high - low < 10.0
    assert result([5, 5, 5]).interval() == (5.0, 5.0) and result([3]).interval() == (3.0, 3.0)
