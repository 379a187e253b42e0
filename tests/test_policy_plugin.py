"""The policy-regression pytest plugin (``pytest_kcourse``) and its statistics (``agents.policy_stats``).

Default tier: the betting statistics against numbers worked by hand, the error rates on 1,000
simulated runs of known return distributions, the report helpers, and the plugin in inner pytest
runs (pytester) on a fake one-step env (no TensorFlow) and on the committed FrozenLake policies
(baseline regeneration and comparison). ``slow``: a TF-Agents SavedModel from a quick run.
The committed policies are regressed through the plugin by ``tests/policies.toml`` (slow).
"""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

from agents.policy_stats import (bets, confidence_interval, first_verdict, indicator, log_capital, normalize,
                                 running_estimates)
from pytest_kcourse.config import ConfigError, PolicySpec, load_specs

DECLARED = 'format = "kcourse-policies/1"\n'  # the first line of every kcourse policies.toml

pytest_plugins = ("pytester",)

REPO = Path(__file__).resolve().parent.parent
FAKE_ENV = "KcourseFakeReturn-v0"


# ----------------------------------------------------------------------------------------------
# The statistics, by hand
# ----------------------------------------------------------------------------------------------


def test_running_estimates_and_bets_by_hand():
    # x = 1, 1, 1 tested against m = 0.8 ("above"):
    # mu_0 = 1/2, mu_1 = (1/2 + 1)/2 = 0.75, mu_2 = (1/2 + 2)/3 = 0.8333
    # sigma2_0 = 1/4, sigma2_1 = (1/4 + (1 - 0.75)^2)/2 = 0.15625,
    # sigma2_2 = (1/4 + 0.0625 + (1 - 0.8333)^2)/3 = 0.113426
    # lam_1 = lam_2 = 0 (mu below m: no bet); lam_3 = g/(sigma2 + g^2), g = 0.03333: 0.29103
    # capital = 1 * 1 * (1 + 0.29103 * 0.2) = 1.058205
    x = np.ones(3)
    mu, sigma2 = running_estimates(x)
    np.testing.assert_allclose(mu, [0.5, 0.75, 2.5 / 3])
    np.testing.assert_allclose(sigma2, [0.25, 0.15625, 0.113426], atol=1e-6)
    np.testing.assert_allclose(bets(x, 0.8, "above"), [0, 0, 0.29103], atol=1e-5)
    np.testing.assert_allclose(np.exp(log_capital(x, 0.8, "above")), [1, 1, 1.058205], atol=1e-6)
    # x = 0, 0 against m = 0.8 ("below"): g = 0.8 - 0.5 = 0.3, lam_1 = 0.3/(0.25 + 0.09) = 0.882353,
    # factor 1 + 0.882353 * 0.8 = 1.705882; mu_1 = 0.25, sigma2_1 = (1/4 + 0.0625)/2 = 0.15625,
    # g = 0.55, lam_2 = 0.55/(0.15625 + 0.3025) = 1.198910, factor 1.959128; capital 3.342042
    np.testing.assert_allclose(bets(np.zeros(2), 0.8, "below"), [0.882353, 1.198910], atol=1e-6)
    np.testing.assert_allclose(np.exp(log_capital(np.zeros(2), 0.8, "below")), [1.705882, 3.342042], atol=1e-6)


def test_bets_are_capped_so_one_bad_episode_cannot_ruin_the_gambler():
    # lam <= c/m = 0.75/0.8 = 0.9375: a 0 after many 1s costs at most 0.9375 * 0.8 = 75% of the capital
    x = np.r_[np.ones(50), 0.0]
    lam = bets(x, 0.8, "above")
    assert lam.max() == pytest.approx(0.9375)
    step = np.diff(log_capital(x, 0.8, "above"))[-1]
    assert step == pytest.approx(math.log(1 - 0.9375 * 0.8))


def test_all_top_returns_pass_at_episode_30_no_valid_test_can_beat_21():
    # Once the bet is capped, each episode at 1 multiplies the capital by 1 + 0.9375 * 0.2 = 1.1875;
    # 1/alpha = 100 is reached at episode 30 (the first few bets are 0: mu starts at 1/2).
    # A lower bound for any test valid on [0, 1]: a Bernoulli(0.8) policy (mean 0.8, not above)
    # shows 21 ones in a row with probability 0.8^21 = 0.0092 < 0.01, 20 with 0.0115 > 0.01.
    assert first_verdict(np.ones(40), 0.8, 0.01) == ("pass", 30)
    assert first_verdict(np.ones(29), 0.8, 0.01) == (None, 29)
    assert first_verdict(np.zeros(40), 0.2, 0.01) == ("fail", 30)  # the mirror image


def test_confidence_interval_holds_the_data_and_matches_the_verdict():
    lower, upper = confidence_interval(np.ones(30), 0.01)
    assert upper == 1.0 and 0.8 <= lower < 0.81  # 30 ones reject m = 0.8 (the pass above), not much more
    x = (np.random.default_rng(0).random(400) < 0.5).astype(float)
    lower, upper = confidence_interval(x, 0.01)
    assert lower < x.mean() < upper and upper - lower < 0.3


def test_confidence_interval_rounds_outward_to_the_last_rejected_grid_point():
    # x = 1, 1, 1, alpha = 0.5 (bar: capital 2), grid step 0.1. "Above" capital at m (mu, sigma2 and
    # the bets as in test_running_estimates_and_bets_by_hand):
    #   m = 0.6: lam = 0, 0.15/(0.15625 + 0.0225) = 0.8392, min(0.2333/(0.113426 + 0.05444), 0.75/0.6) = 1.25;
    #            capital (1 + 0.8392 * 0.4)(1 + 1.25 * 0.4) = 1.3357 * 1.5 = 2.0035 >= 2: rejected
    #   m = 0.7: lam = 0, 0.05/0.15875 = 0.3150, 0.1333/0.131204 = 1.0163 (cap 1.0714);
    #            capital 1.0945 * 1.3049 = 1.428 < 2: kept
    # The set of means not rejected starts between 0.6 and 0.7: outward, the lower bound is 0.6 (the
    # smallest kept point, 0.7, would round inward). "Below" bets on m - 1 < 0 never win: upper 1.
    assert confidence_interval(np.ones(3), 0.5, grid=11) == (pytest.approx(0.6), 1.0)
    # one episode at 1: m = 0 gives lam = 0.5/(0.25 + 0.25) = 1 and capital 1 + 1 * 1 = 2 (rejected),
    # m = 0.1 gives 1 + (0.4/0.41) * 0.9 = 1.878 (kept): lower 0, not 0.1
    assert confidence_interval([1.0], 0.5, grid=11) == (0.0, 1.0)
    # the mirror: three zeros, upper 0.4 (1 - 0.6)
    lower, upper = confidence_interval(np.zeros(3), 0.5, grid=11)
    assert lower == 0.0 and upper == pytest.approx(0.4)


def test_normalize_refuses_a_return_outside_the_range():
    np.testing.assert_allclose(normalize([0, 250, 500], 0, 500), [0, 0.5, 1])
    with pytest.raises(ValueError, match="return of 501 lies outside the return range"):
        normalize([1, 501], 0, 500)


# ----------------------------------------------------------------------------------------------
# Error rates: 1,000 simulated runs of known return distributions (threshold 400 on [0, 500])
# ----------------------------------------------------------------------------------------------

ALPHA, THRESHOLD, MARGIN, HIGH = 0.01, 400.0, 50.0, 500.0
RUNS = 1000


def cartpole_like(mean, runs, episodes, rng):
    """Returns at 500 with probability p, else uniform on [0, 500]: mean 250 + 250 p."""
    p = (mean - 250) / 250
    return np.where(rng.random((runs, episodes)) < p, HIGH, rng.random((runs, episodes)) * HIGH)


def two_point(mean, runs, episodes, rng):
    """0 or 500 (the largest variance a mean allows on [0, 500]: the hardest case)."""
    return np.where(rng.random((runs, episodes)) < mean / HIGH, HIGH, 0.0)


DISTRIBUTIONS = {"cartpole-like": (cartpole_like, 400), "two-point": (two_point, 800)}  # name: (sampler, budget)


def simulate(sampler, mean, budget, seed=0):
    """Verdict counts of RUNS sequential tests, each on its own ``budget`` episodes."""
    returns = sampler(mean, RUNS, budget, np.random.default_rng(seed))
    code, episodes = first_verdict(normalize(returns, 0, HIGH), THRESHOLD / HIGH, ALPHA)
    return {"pass": int((code == 1).sum()), "fail": int((code == -1).sum()),
            "inconclusive": int((code == 0).sum()), "median_episodes": float(np.median(episodes))}


@pytest.mark.parametrize("name", sorted(DISTRIBUTIONS))
def test_false_alarms_at_most_alpha_when_the_mean_clears_the_threshold_by_the_margin(name):
    sampler, budget = DISTRIBUTIONS[name]
    counts = simulate(sampler, THRESHOLD + MARGIN, budget, seed=1)
    assert counts["fail"] + counts["inconclusive"] <= ALPHA * RUNS, counts  # a failing item, either way


@pytest.mark.parametrize("name", sorted(DISTRIBUTIONS))
def test_detection_at_least_99_percent_when_the_mean_is_below_by_the_margin(name):
    sampler, budget = DISTRIBUTIONS[name]
    counts = simulate(sampler, THRESHOLD - MARGIN, budget, seed=2)
    assert counts["pass"] <= ALPHA * RUNS, counts
    assert counts["fail"] + counts["inconclusive"] >= 0.99 * RUNS, counts
    assert counts["fail"] >= 0.99 * RUNS, counts  # and found below, not only out of budget


@pytest.mark.parametrize("name", sorted(DISTRIBUTIONS))
def test_at_the_threshold_itself_neither_verdict_exceeds_alpha(name):
    # Mean exactly 400: "above" and "below" are both false; the looks after every episode (up to
    # 800) must not inflate either error beyond alpha (Ville's inequality).
    sampler, _ = DISTRIBUTIONS[name]
    counts = simulate(sampler, THRESHOLD, 800, seed=3)
    assert counts["pass"] <= ALPHA * RUNS and counts["fail"] <= ALPHA * RUNS, counts


# ----------------------------------------------------------------------------------------------
# The quantile criterion: a test on the indicator of a return >= at_least (no return range)
# ----------------------------------------------------------------------------------------------


def test_quantile_criterion_by_hand():
    assert indicator([6, 3, 5, 4.99], 5).tolist() == [1.0, 0.0, 1.0, 0.0]  # 5 itself counts
    # fraction 0.5, alpha 0.5 (bar: capital 2). Three games >= 5 -> indicator 1, 1, 1; the "above"
    # capital at m = 0.5 is 1 (mu_0 = m: no bet), 1 + 0.25/(0.15625 + 0.0625) * 0.5 = 1.5714, then
    # x (1 + 1.4846 capped at 0.75/0.5 = 1.5, * 0.5) = 1.5714 * 1.75 = 2.75 >= 2: a pass at game 3.
    assert first_verdict(indicator([6, 9, 5], 5), 0.5, 0.5) == ("pass", 3)
    assert first_verdict(indicator([4, 1, 0], 5), 0.5, 0.5) == ("fail", 3)  # the mirror image
    assert first_verdict(indicator([6, 9], 5), 0.5, 0.5) == (None, 2)


def _quantile_runs(share, budget):
    """Verdict counts of 1,000 quantile tests (>= 5 at 0.75, alpha 0.01) on Breakout-like returns
    (benchmarks/policy_plugin.py, part quantile, the same seeds: docs/policy-testing.md's table)."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    import policy_plugin  # noqa: E402  (a script folder)

    returns = policy_plugin.breakout_like(share, np.random.default_rng(policy_plugin.SHARES[share]), budget)
    code, episodes = first_verdict(indicator(returns, 5.0), 0.75, 0.01)
    return {"pass": int((code == 1).sum()), "fail": int((code == -1).sum()), "inconclusive": int((code == 0).sum()),
            "median_episodes": float(np.median(episodes))}


def test_quantile_error_rates_on_1000_simulated_runs():
    # a clear pass and a clear fail (share 0.95 / 0.55 against 0.75) settle in a median of 31 / 58 games
    clear_pass, clear_fail = _quantile_runs(0.95, 240), _quantile_runs(0.55, 240)
    assert clear_pass["pass"] == 1000 and clear_pass["median_episodes"] <= 32
    assert clear_fail["fail"] == 1000 and clear_fail["median_episodes"] <= 60
    # a margin of 0.10 needs 800 games: failing items at most alpha (10 of 1,000) either way
    above, below, at = _quantile_runs(0.85, 800), _quantile_runs(0.65, 800), _quantile_runs(0.75, 800)
    assert above["fail"] + above["inconclusive"] <= 10 and above["fail"] == 0
    assert below["pass"] == 0 and below["fail"] >= 990
    assert at["pass"] <= 10 and at["fail"] <= 10  # at the fraction itself: both claims false, anytime-valid


# ----------------------------------------------------------------------------------------------
# Config and report helpers
# ----------------------------------------------------------------------------------------------


def test_config_entries_settings_and_errors(tmp_path):
    config = tmp_path / "policies.toml"
    config.write_text(DECLARED + 'alpha = 0.05\nbatch = 5\n[a]\npath = "pol"\nmin_mean = 1\n'
                      '[b]\npath = "kcourse:frozenlake-4x4"\ncriterion = "baseline"\ndelta = 0.1\nalpha = 0.02\n')
    a, b = load_specs(config)
    assert (a.name, a.alpha, a.batch, a.growth, a.max_episodes, a.seed) == ("a", 0.05, 5, 2.0, 400, 0)
    assert a.policy_folder() == tmp_path / "pol" and a.baseline_path == tmp_path / "policies.baseline.json"
    assert b.alpha == 0.02 and b.policy_folder() == REPO / "agents" / "trained" / "frozenlake-4x4"
    for text, message in [
        ('[a]\npath = "p"\nmin_mean = 1\ntreshold = 2\n', "unknown key 'treshold'"),
        ('[a]\nmin_mean = 1\n', "path = \"POLICY_FOLDER\" is missing"),
        ('[a]\npath = "p"\n', "needs min_mean = NUMBER"),
        ('[a]\npath = "p"\ncriterion = "baseline"\n', "needs delta = NUMBER >= 0"),
        ('[a]\npath = "p"\nmin_mean = 1\nalpha = 0.7\n', "alpha must be a number in"),
        ('[a]\npath = "p"\nmin_mean = 1\ngrowth = 0.5\n', "growth must be a number >= 1"),
        ('[a]\npath = "p"\nmin_mean = 1\nreturn_range = [5, 1]\n', "return_range must be"),
        ('[a]\npath = "p"\nmin_mean = 1\nepsilon = 1.5\n', "epsilon must be a probability in"),
        ('[a]\npath = "p"\nmin_mean = 1\nslow = "no"\n', "slow must be true or false, got 'no'"),
        ('[a]\npath = "p"\ncriterion = "quantile"\nat_least = 5\n', "criterion 'quantile' needs at_least = NUMBER and "
                                                                   "fraction = a number in"),
        ('[a]\npath = "p"\ncriterion = "quantile"\nat_least = 5\nfraction = 1\n', "got at_least = 5, fraction = 1"),
        ('aplha = 0.1\n', "unknown setting 'aplha'"),
        ('[a\n', "cannot read it as TOML"),
    ]:
        config.write_text(DECLARED + text)
        with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
            load_specs(config)


def test_committed_prefix_accepts_only_the_committed_names():
    from agents import trained

    assert trained.policy_path("frozenlake-4x4") == REPO / "agents" / "trained" / "frozenlake-4x4"
    for name in ("../../../../some/folder", "../trained/frozenlake-4x4", "frozenlake-4x4/.", ""):
        spec = PolicySpec(name="p", policy="kcourse:" + name, min_mean=1)
        with pytest.raises(ValueError, match=r"argument `name`: no committed policy .*; available: "
                                             r"breakout-dueling-double, cartpole-v1-dqn"):
            spec.policy_folder()


def test_baseline_file_errors_are_one_line_and_regen_rewrites_a_corrupt_file(tmp_path):
    from pytest_kcourse.config import read_baselines, recorded_mean, write_baseline

    path = tmp_path / "policies.baseline.json"
    path.write_text("{not json")
    with pytest.raises(ConfigError, match=r"the baselines file is corrupt \(not JSON: .*\); `pytest --policies-regen` "
                                          r"rewrites it"):
        read_baselines(path)
    write_baseline(path, "a", {"mean": 1.5})  # what --policies-regen does: no loop of the same error
    assert json.loads(path.read_text()) == {"a": {"mean": 1.5}}
    path.write_text('{"a": {"cp": 5}}')
    with pytest.raises(ConfigError, match=r"policy check 'a': the baseline entry in .* has no number `mean` "
                                          r"\(got \{\"cp\": 5\}\); rerun `pytest --policies-regen`"):
        recorded_mean(path, "a")
    with pytest.raises(ConfigError, match=r"policy check 'b': no baseline in .*; record one with"):
        recorded_mean(path, "b")
    path.unlink()
    path.mkdir()
    for call in (lambda: read_baselines(path), lambda: write_baseline(path, "a", {"mean": 1.0})):
        with pytest.raises(ConfigError, match="expected the baselines file, found a folder"):
            call()


def test_epsilon_key_plays_random_actions_with_that_probability():
    from pytest_kcourse.check import run_check

    def always_left(obs_batch):
        return np.zeros(len(obs_batch), dtype="int64")

    # Always pushing left ends CartPole within 8-10 steps; with epsilon 1 every action is uniform
    # random, which lasts about 22 steps on average (random play).
    runs = {eps: run_check(PolicySpec(name="left", policy=always_left, env="CartPole-v1", min_mean=400, batch=30,
                                      max_episodes=30, epsilon=eps)) for eps in (None, 1.0)}
    assert max(runs[None].returns) <= 11 and runs[None].epsilon == 0.0
    assert np.mean(runs[1.0].returns) > 15 and runs[1.0].epsilon == 1.0


def test_pyproject_table_and_a_pyproject_without_one(tmp_path):
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text('[project]\nname = "x"\n[tool.kcourse.policies]\nseed = 7\n[tool.kcourse.policies.p]\n'
                         'path = "p"\nmin_mean = 3\n')
    (spec,) = load_specs(pyproject)
    assert (spec.name, spec.seed, spec.min_mean) == ("p", 7, 3)
    pyproject.write_text('[project]\nname = "x"\n')
    assert load_specs(pyproject) == []


def test_report_helpers_by_hand():
    from pytest_kcourse.check import replay_command, return_range_for, text_histogram, worst_episodes

    # [0, 0, 1, 1, 1, 5] in 5 bins over [0, 5]: counts 2, 3, 0, 0, 1 -> heights ceil(8 * c / 3): 6, 8, 0, 0, 3
    assert text_histogram([0, 0, 1, 1, 1, 5], bins=5) == "0 ▆█  ▃ 5"
    assert text_histogram([500.0] * 4) == "all 4 at 500"
    # episode i has seed 10 + i; ties keep episode order
    assert worst_episodes([3, 1, 2, 1], seed=10) == [(1.0, 11), (1.0, 13), (2.0, 12)]
    assert replay_command(Path("/a b/pol"), 12) == "kcourse eval '/a b/pol' --episodes 1 --seed 12 --render gif"
    assert replay_command(None, 1) is None
    assert replay_command(Path("/p"), 3, epsilon=0.001) == "kcourse eval /p --episodes 1 --seed 3 --epsilon 0.001 --render gif"
    assert return_range_for("CartPole-v1") == (0.0, 500.0)
    assert return_range_for("CartPole-v1", {"max_episode_steps": 200}) == (0.0, 200.0)
    with pytest.raises(ConfigError, match="return_range = \\[low, high\\]"):
        return_range_for("Pendulum-v1")


def test_loading_the_plugin_imports_no_tensorflow_and_sets_no_environment_variable():
    code = ("import os, sys; before = dict(os.environ); import pytest_kcourse.plugin; "
            "print(sorted(m for m in ('tensorflow', 'keras', 'agents', 'kcourse') if m in sys.modules), "
            "sorted(k for k in os.environ if os.environ[k] != before.get(k)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[] []"


def test_running_a_check_imports_no_kcourse_and_sets_no_environment_variable():
    # check.py used to `import kcourse` "to set the log level and the legacy-Keras switch"; it set nothing
    code = ("import os, sys; before = dict(os.environ); import numpy as np; "
            "from pytest_kcourse.check import run_check; from pytest_kcourse.config import PolicySpec; "
            "r = run_check(PolicySpec(name='p', policy=lambda o: np.zeros(len(o), dtype='int64'), env='CartPole-v1', "
            "min_mean=5, max_episodes=30)); "
            "print(r.episodes, 'kcourse' in sys.modules, sorted(k for k in os.environ if os.environ[k] != before.get(k)))")
    env = {k: v for k, v in os.environ.items() if k not in ("TF_USE_LEGACY_KERAS", "TF_CPP_MIN_LOG_LEVEL")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env).stdout
    assert out.strip().splitlines()[-1] == "30 False []"


# ----------------------------------------------------------------------------------------------
# The plugin in inner pytest runs
# ----------------------------------------------------------------------------------------------


class FakeReturnEnv(gym.Env):
    """One-step episodes whose return is 1 with probability ``p`` (seeded by reset), else 0."""

    observation_space = gym.spaces.Box(0.0, 1.0, (1,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def __init__(self, p=0.5):
        self.p = p

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(1, np.float32), {}

    def step(self, action):
        reward = float(self.np_random.random() < self.p)
        return np.zeros(1, np.float32), reward, True, False, {}


@pytest.fixture
def fake_env():
    if FAKE_ENV not in gym.registry:
        gym.register(id=FAKE_ENV, entry_point=FakeReturnEnv)
    return FAKE_ENV


def test_fixture_passes_and_fails_with_a_report_on_the_fake_env(pytester, fake_env):
    pytester.makepyfile(textwrap.dedent(f"""
        import numpy as np
        import pytest

        def always_zero(obs):
            return np.zeros(len(obs), dtype=np.int64)

        @pytest.mark.policy_check(return_range=[0, 1], max_episodes=300)
        def test_good(policy_check):
            result = policy_check(always_zero, env="{fake_env}", env_kwargs={{"p": 0.9}}, min_mean=0.6)
            assert result.verdict == "pass" and result.episodes < 300

        @pytest.mark.policy_check(return_range=[0, 1], max_episodes=300, seed=5)
        def test_bad(policy_check):
            policy_check(always_zero, env="{fake_env}", env_kwargs={{"p": 0.2}}, min_mean=0.6)
    """))
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    out = result.stdout.str()
    assert "policy check 'test_bad' FAILED: the mean return is below 0.6" in out
    assert "worst episodes:" in out and "episodes (seeds 5..34)" in out  # one batch of 30 from seed 5
    assert "return 0  seed 5  (a policy object" in out  # no folder to replay from
    assert "returns: 0 " in out  # the histogram line runs from the lowest return
    assert "kcourse policy checks" in out and "test_good: pass after" in out


def test_quantile_criterion_needs_no_return_range(pytester, fake_env):
    # The fake env's return range is unknown to the plugin: min_mean needs return_range, quantile does not.
    pytester.makepyfile(textwrap.dedent(f"""
        import numpy as np
        import pytest

        def always_zero(obs):
            return np.zeros(len(obs), dtype=np.int64)

        @pytest.mark.policy_check(criterion="quantile", at_least=1, fraction=0.6, max_episodes=300)
        def test_good(policy_check):
            result = policy_check(always_zero, env="{fake_env}", env_kwargs={{"p": 0.95}})
            assert result.verdict == "pass" and result.share > 0.6 and result.return_range is None

        @pytest.mark.policy_check(criterion="quantile", at_least=1, fraction=0.6, max_episodes=300)
        def test_bad(policy_check):
            policy_check(always_zero, env="{fake_env}", env_kwargs={{"p": 0.2}})

        def test_mean_needs_a_range(policy_check):
            policy_check(always_zero, env="{fake_env}", min_mean=0.5)
    """))
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=2)
    out = result.stdout.str()
    assert "policy check 'test_bad' FAILED: fewer than 0.6 of episodes score >= 1" in out
    assert "share of episodes >= 1: " in out and "vs fraction 0.6 (mean return " in out
    assert "the indicator of a return >= 1 (no return range needed)" in out
    assert f"the return range of {fake_env} is not known: declare it with return_range" in out
    assert "test_good: pass after 30 episodes, share >= 1 " in out


def test_pyproject_entries_are_items_and_other_pyprojects_are_ignored(pytester):
    pytester.makefile(".toml", pyproject='[tool.kcourse.policies.my-policy]\npath = "p"\nmin_mean = 1\n')
    result = pytester.runpytest("--co", "-q", "-p", "no:cacheprovider")
    assert "pyproject.toml::my-policy" in result.stdout.str()
    pytester.makefile(".toml", pyproject='[project]\nname = "x"\n')
    result = pytester.runpytest("--co", "-q", "-p", "no:cacheprovider")
    assert "pyproject.toml" not in result.stdout.str() and result.ret == pytest.ExitCode.NO_TESTS_COLLECTED


def test_config_error_is_one_line_in_collection(pytester):
    pytester.makefile(".toml", policies=DECLARED + '[p]\npath = "x"\nmin_mean = 1\ntreshold = 3\n')
    result = pytester.runpytest("-p", "no:cacheprovider")
    out = result.stdout.str()
    assert "unknown key 'treshold'" in out and "Traceback" not in out
    assert result.ret != 0


def test_other_projects_policies_toml_files_are_left_alone(pytester):
    # a `version = 2` file, an [admins] table, YAML: none of them is kcourse's, none stops collection
    for folder, text in (("a", "version = 2\n"), ("b", '[admins]\nnames = ["ann"]\n'), ("c", "a: 1\n- b: [\n")):
        (pytester.path / folder).mkdir()
        (pytester.path / folder / "policies.toml").write_text(text)
    pytester.makepyfile("def test_ok():\n    pass\n")
    result = pytester.runpytest("-p", "no:cacheprovider", "-W", "error::pytest.PytestWarning")
    result.assert_outcomes(passed=1)
    assert "policies.toml" not in result.stdout.str()


def test_an_undeclared_file_that_looks_like_kcourse_checks_gets_one_warning_line(pytester):
    pytester.makefile(".toml", policies='[p]\npath = "x"\nmin_mean = 1\n')
    result = pytester.runpytest("--co", "-q", "-p", "no:cacheprovider")
    lines = [line for line in result.stdout.lines if "was not collected" in line]
    assert len(lines) == 1 and "policies.toml::p" not in result.stdout.str()
    assert lines[0].endswith(f"{pytester.path / 'policies.toml'} was not collected: its entries look like kcourse "
                             f"policy checks, but the file does not declare itself one; add the line "
                             f'format = "kcourse-policies/1" at its top (docs/policy-testing.md)')


def test_a_declared_file_of_another_format_version_is_a_one_line_error(pytester):
    pytester.makefile(".toml", policies='format = "kcourse-policies/2"\n[p]\npath = "x"\nmin_mean = 1\n')
    result = pytester.runpytest("--co", "-p", "no:cacheprovider")
    assert f'{pytester.path / "policies.toml"}: expected format = "kcourse-policies/1" (the policies table this ' \
           f"kcourse reads), got 'kcourse-policies/2'" in result.stdout.str()
    assert "Traceback" not in result.stdout.str() and result.ret == pytest.ExitCode.INTERRUPTED


def test_slow_entries_collect_under_strict_markers_in_a_project_without_a_slow_mark(pytester):
    pytester.makefile(".toml", policies=DECLARED + '[p]\npath = "x"\nmin_mean = 1\nslow = true\n')
    result = pytester.runpytest("--co", "-q", "--strict-markers", "-m", "slow", "-p", "no:cacheprovider")
    assert "policies.toml::p" in result.stdout.str() and result.ret == pytest.ExitCode.OK


def test_items_ids_baseline_regeneration_and_baseline_criterion(pytester):
    """The committed FrozenLake policies through toml items: ids, --policies-regen, baseline pass/fail."""
    # The runs that load a policy run in subprocesses: pytester's in-process runs drop the modules a
    # run imported, and TensorFlow aborts when it is imported a second time in one process.
    pytester.makefile(".toml", policies=DECLARED + textwrap.dedent("""
        max_episodes = 200
        [lake]
        path = "kcourse:frozenlake-4x4"
        criterion = "baseline"
        delta = 0.2
        [slippery]
        path = "kcourse:frozenlake-4x4-slippery"
        criterion = "baseline"
        delta = 0.1
    """))
    result = pytester.runpytest("--co", "-q", "-p", "no:cacheprovider")
    assert "policies.toml::lake" in result.stdout.str() and "policies.toml::slippery" in result.stdout.str()

    result = pytester.runpytest("-p", "no:cacheprovider", "-k", "lake")  # no baseline yet: a clear failure
    result.assert_outcomes(failed=1, deselected=1)
    assert "no baseline in" in result.stdout.str() and "--policies-regen" in result.stdout.str()

    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--policies-regen")
    result.assert_outcomes(passed=2)
    baselines = json.loads((pytester.path / "policies.baseline.json").read_text())
    assert baselines["lake"]["mean"] == 1.0 and baselines["lake"]["episodes"] == 200
    assert 0.6 < baselines["slippery"]["mean"] < 0.85
    assert baselines["slippery"]["lower"] < baselines["slippery"]["mean"] < baselines["slippery"]["upper"]

    # the slippery policy "used to be" perfect: worse than its baseline by more than delta -> fails
    baselines["slippery"]["mean"] = 1.0
    (pytester.path / "policies.baseline.json").write_text(json.dumps(baselines))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    out = result.stdout.str()
    assert "policy check 'slippery' FAILED: the mean return is below 0.9" in out
    assert "(baseline 1 - delta 0.1)" in out
    assert "replay: kcourse eval" in out and "frozenlake-4x4-slippery --episodes 1 --seed" in out


# ----------------------------------------------------------------------------------------------
# slow: a TF-Agents SavedModel policy from a quick run
# ----------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_tf_agents_saved_model_policy_is_checked(tmp_path):
    from conftest import run_cli

    from pytest_kcourse.check import run_check

    run_dir = tmp_path / "tfa"
    code, out, err = run_cli("run", "tfa-dqn", "--quick", "--env", "cartpole", "--seed", "0",
                             "--run-dir", run_dir, timeout=600)
    assert code == 0, err[-3000:]
    assert (run_dir / "policy" / "saved_model.pb").is_file()
    # a quick run learns little (greedy mean about 25): it beats 12, which a constant action (mean
    # about 9) misses, and fails 100 (the verdicts come from the SavedModel's actions)
    low = run_check(PolicySpec(name="tfa-floor", policy=str(run_dir / "policy"), min_mean=12, max_episodes=200))
    assert low.verdict == "pass", low
    high = run_check(PolicySpec(name="tfa-bar", policy=str(run_dir / "policy"), min_mean=100, max_episodes=200))
    assert high.verdict == "fail", high
