"""Training seeds stay below the selection seeds (issue 33, item 1): one check, used by every exercise
that seeds training envs; evaluation commands take any seed."""
import pytest

from agents import configs, evaluation
from kcourse import cli
from keras_impl.config import resolve


@pytest.mark.parametrize("seed, offset, ok", [
    (0, 0, True),
    (9_999, 0, True),        # the last training seed
    (10_000, 0, False),      # the first selection seed
    (9_984, 15, True),       # 16 envs: seeds 9,984..9,999
    (9_985, 15, False),      # 16 envs: the last one would be reset with 10,000
    (-1, 0, False),
])
def test_check_train_seed_allows_seed_plus_offset_below_10000(seed, offset, ok):
    if ok:
        assert evaluation.check_train_seed(seed, offset) == seed
    else:
        with pytest.raises(ValueError, match=r"argument `--seed`: expected an integer from 0 to [\d,]+ .*got -?\d+"):
            evaluation.check_train_seed(seed, offset)


def test_check_train_seed_names_the_range_and_the_offset():
    with pytest.raises(ValueError) as err:
        evaluation.check_train_seed(990_000, 15)
    # 9,999 - 15 = 9,984: the largest seed whose 16 envs all stay below 10,000
    assert str(err.value) == ("Received an invalid value for argument `--seed`: expected an integer from 0 to 9,984 "
                              "(its training envs are reset with seeds seed..seed + 15, which must stay below the "
                              "selection seeds from 10,000), got 990000")


@pytest.mark.parametrize("seed, offset, expected", [
    (3, 5, 8),               # 3 + 5, inside the range: unchanged
    (9_999, 1, 0),           # 10,000 wraps to 0
    (5, 20_000, 5),          # 20,005 mod 10,000
    (0, 12_345, 2_345),      # a resumed run's episode count
])
def test_train_seed_wraps_into_the_training_range(seed, offset, expected):
    assert evaluation.train_seed(seed, offset) == expected


@pytest.mark.parametrize("cls, typed", [
    (configs.PolicyGradientConfig, {"seed": 990_000}),
    (configs.PolicyGradientConfig, {"seed": 9_990}),                 # 16 envs: 9,990 + 15 >= 10,000
    (configs.DQNConfig, {"seed": 1_000_000}),
    (configs.FrozenLakeConfig, {"seed": 10_000}),
    (configs.TfaDqnConfig, {"seed": 9_999, "num_envs": 2}),
    (configs.MovieLensRLConfig, {"seed": 9_990}),                    # 64 lockstep Q-learning envs
    (configs.BasicPolicyConfig, {"seed": 9_990}),                    # 50 imitation envs
])
def test_every_training_exercise_refuses_a_seed_that_reaches_the_selection_seeds(cls, typed):
    with pytest.raises(ValueError, match=r"argument `--seed`: expected an integer from 0 to "):
        resolve(cls, typed)


def test_breakout_policy_takes_any_seed():  # an evaluation: its seed picks the games
    assert resolve(configs.BreakoutPolicyConfig, {"seed": 5_000_000}).seed == 5_000_000


def test_policy_gradient_selection_sets_start_in_the_selection_seeds():
    from agents import policy_gradient

    cfg = configs.PolicyGradientConfig(seed=5)
    assert policy_gradient.check_seeds(cfg) == (10_005, 20_005)  # SELECT_SEED + 5, SELECT_SEED + 10,000 + 5


def test_run_refuses_a_seed_in_the_selection_range_in_one_line_before_making_a_folder(tmp_path, capsys):
    code = cli.main(["run", "policy-gradient", "--quick", "--seed", "990000", "--out", str(tmp_path / "runs")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert err.startswith("kcourse: error: Received an invalid value for argument `--seed`: expected an integer "
                          "from 0 to 9,984")
    assert not (tmp_path / "runs").exists()
