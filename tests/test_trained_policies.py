"""Policy regression: the small trained policies committed under agents/trained/ still pass their
thresholds in seeded evaluations with the evaluation helpers (what users copy into their CI)."""
import pytest

import agents  # noqa: F401
from agents.evaluation import assert_policy_return
from agents.policy_files import load_policy
from agents.trained import available, policy_path

# name -> (min mean return, episodes, env kwargs check)
THRESHOLDS = {
    "cartpole-v1-dqn": (475.0, 100),
    "frozenlake-4x4": (1.0, 20),            # deterministic lake: the greedy path always reaches the goal
    "frozenlake-4x4-slippery": (0.70, 1000),  # optimum about 0.74
    # HOML's score; full games, greedy, seeds 0-29 of the env's default protocol (sticky). The committed
    # run (the frozen recipe's seed 0) trained on seeds 0-9,999 of its own env and reported on
    # 1,000,000+. A regression bar, not a report. Slow: 30 full games, about 1-2 minutes.
    "breakout-dueling-double": (7.8, 30),
    # The frozen recipe's SpaceInvaders seed 0 (issue 34), the same protocol and seeds. Random play scores
    # 148 a game; the run's 100-game sticky report is 412.45 +/- 158.8, so 250 over 20 games sits about
    # 4.5 standard errors below it. Slow: 20 full games of about 800 agent steps, 2-3 minutes.
    "spaceinvaders-dueling-double": (250.0, 20),
}
SLOW = {"breakout-dueling-double", "spaceinvaders-dueling-double"}
MAX_BYTES = {"breakout-dueling-double": 8_000_000,  # the Nature conv net: 1.7M weights (issue 24's limit)
             "spaceinvaders-dueling-double": 8_000_000}  # the same net with 6 actions


def test_every_committed_policy_has_a_threshold_and_is_small():
    assert set(available()) == set(THRESHOLDS)
    for name in available():
        size = sum(f.stat().st_size for f in policy_path(name).iterdir())
        assert size < MAX_BYTES.get(name, 100_000), (name, size)


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n
                                  for n in sorted(THRESHOLDS)])
def test_committed_policy_passes_its_threshold(name):
    min_mean, episodes = THRESHOLDS[name]
    policy, meta = load_policy(policy_path(name))
    assert meta["evaluation"]["mean"] >= min_mean  # what it scored when it was saved
    # seeds 0..episodes-1: not the evaluation seeds used in training (10,000+)
    assert_policy_return(policy, meta["env_id"], min_mean=min_mean, episodes=episodes, seed=0,
                         env_kwargs=meta["env_kwargs"])


def test_unknown_policy_name_is_a_clear_error():
    with pytest.raises(ValueError, match="no committed policy 'nope'"):
        policy_path("nope")
