"""policy.json is checked field by field when it is read (issue 33, item 4 and the sweep's policy.json cases),
and ``kcourse run breakout --policy`` describes a policy from its own file (item 5)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from agents import breakout_policy, policy_files

REPO = Path(__file__).resolve().parent.parent
TRAINED = REPO / "agents" / "trained"


def _copy(tmp_path: Path, name: str, **changes) -> Path:
    """``agents/trained/NAME``'s policy.json alone in a new folder, with ``changes`` (None: JSON null)."""
    folder = tmp_path / name
    folder.mkdir(parents=True)
    meta = json.loads((TRAINED / name / "policy.json").read_text())
    meta.update(changes)
    (folder / "policy.json").write_text(json.dumps(meta))
    return folder

CASES = [
    # (policy, changes, the message after "{file}: field ")
    ("cartpole-v1-dqn", {"eval_epsilon": 5}, "`eval_epsilon`: expected a probability in [0, 1], got 5"),
    ("cartpole-v1-dqn", {"eval_epsilon": -1}, "`eval_epsilon`: expected a probability in [0, 1], got -1"),
    ("cartpole-v1-dqn", {"eval_epsilon": "nan"}, '`eval_epsilon`: expected a probability in [0, 1], got "nan"'),
    ("cartpole-v1-dqn", {"eval_epsilon": "abc"}, '`eval_epsilon`: expected a probability in [0, 1], got "abc"'),
    ("cartpole-v1-dqn", {"env_kwargs": {"seed": 5}},
     "`env_kwargs` may not set `seed` (the evaluation seeds each episode); remove it from the file"),
    ("cartpole-v1-dqn", {"env_kwargs": {"render_mode": "human"}},
     "`env_kwargs` may not set `render_mode` (the evaluation decides what is shown); remove it from the file"),
    ("cartpole-v1-dqn", {"env_kwargs": {"max_episode_steps": 5}},
     "`env_kwargs` may not set `max_episode_steps` (an episode cap); remove it from the file"),
    ("cartpole-v1-dqn", {"env_kwargs": {"gravity": 3}},
     "`env_kwargs`: CartPole-v1 takes no argument `gravity` (it takes sutton_barto_reward)"),
    ("cartpole-v1-dqn", {"env_kwargs": [1]}, "`env_kwargs`: expected a JSON object of the env's arguments, got [1]"),
    ("cartpole-v1-dqn", {"env_factory": ["agents.atari:make_atari_env"]},
     '`env_factory`: expected one of agents.atari:make_atari_env, got ["agents.atari:make_atari_env"]'),
    ("cartpole-v1-dqn", {"action_space": None}, '`action_space`: expected a discrete space {"type": "Discrete", '
                                                '"n": N >= 1}, got null'),
    ("cartpole-v1-dqn", {"kind": "pickle"}, '`kind`: expected one of argmax, bernoulli-left, softmax, '
                                            'tf-agents-saved-policy, got "pickle"'),
    ("cartpole-v1-dqn", {"format": "kcourse-policy/9"}, '`format`: expected \'kcourse-policy/1\', got "kcourse-policy/9"'),
    ("breakout-dueling-double", {"train_seconds": "soon"},
     '`train_seconds`: expected a number of seconds >= 0 (or no such field), got "soon"'),
    ("breakout-dueling-double", {"env_id": "CartPole-v1"},
     "`env_id` is 'CartPole-v1', but `env_factory` 'agents.atari:make_atari_env' makes Atari games: the file "
     "was edited or mixes two policies"),
    ("breakout-dueling-double", {"env_kwargs": {"frameskip": 1}},
     "`env_kwargs`: expected {} for an Atari policy (the factory takes no argument from the file), got "
     '{"frameskip": 1}'),
]


@pytest.mark.parametrize("name, changes, message", CASES, ids=[f"{c[0]}-{sorted(c[1])[0]}-{i}" for i, c in
                                                               enumerate(CASES)])
def test_every_field_is_checked_when_the_file_is_read(tmp_path, name, changes, message):
    folder = _copy(tmp_path, name, **changes)
    with pytest.raises(ValueError) as err:
        policy_files.read_policy_metadata(folder)
    assert str(err.value) == f"{folder / 'policy.json'}: field {message}"


@pytest.mark.parametrize("name, key", [("cartpole-v1-dqn", "eval_epsilon"), ("breakout-dueling-double", "train_seconds")])
def test_null_eval_epsilon_and_train_seconds_are_one_line_errors(tmp_path, name, key):
    # the sweep: null was a TypeError traceback in eval, run breakout and the plugin (870 lines there)
    folder = _copy(tmp_path, name, **{key: None})
    with pytest.raises(ValueError, match=rf"policy\.json: field `{key}`: expected .*, got null$"):
        policy_files.read_policy_metadata(folder)


def test_the_committed_policies_pass_the_check():
    from agents.trained import available

    for name in available():
        assert policy_files.read_policy_metadata(TRAINED / name)["env_id"]


def test_eval_names_a_bad_eval_epsilon_in_one_line(tmp_path, capsys):
    from kcourse import cli

    folder = tmp_path / "pol"
    shutil.copytree(TRAINED / "cartpole-v1-dqn", folder)
    meta = json.loads((folder / "policy.json").read_text())
    meta["eval_epsilon"] = 5  # the sweep: used as-is (every action random), and its replay command refused
    (folder / "policy.json").write_text(json.dumps(meta))
    assert cli.main(["eval", str(folder), "--episodes", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"kcourse: error: {folder / 'policy.json'}: field `eval_epsilon`: expected a probability in "
                   f"[0, 1], got 5"]


# ----------------------------------------------------------------------------------------------
# kcourse run breakout --policy: the policy described from its own policy.json
# ----------------------------------------------------------------------------------------------


def _meta(name: str, **changes) -> dict:
    meta = json.loads((TRAINED / name / "policy.json").read_text())
    meta.update(changes)
    return {k: v for k, v in meta.items() if v is not None}


def test_the_committed_policy_is_described_as_committed_with_its_command_and_time():
    meta = _meta("breakout-dueling-double")
    # train_seconds 5,897.0 s = 98 min, as its policy.json records; its config: seed 0
    assert breakout_policy.describe(meta, committed=True) == (
        "committed keras-dueling-double", "trained by `kcourse run dqn --env breakout --seed 0`, 100,000 agent steps "
                                          "in 98 min")


def test_another_folder_is_not_called_committed_and_only_what_its_file_records_is_said():
    run_folder = _meta("breakout-dueling-double", train_seconds=None, env_steps=None)
    assert breakout_policy.describe(run_folder, committed=False) == (
        "keras-dueling-double", "trained by `kcourse run dqn --env breakout --seed 0` (steps and time not recorded)")
    tfa = _meta("breakout-dueling-double", kind=policy_files.TFA_KIND, algorithm=None, train_seconds=None,
                env_steps=None, config={"agent": "ddqn", "seed": 0, "preset": "data-efficient"})
    assert breakout_policy.describe(tfa, committed=False) == (
        "TF-Agents ddqn export", "trained by `kcourse run tfa-dqn --env breakout --seed 0 --preset data-efficient` "
                                 "(steps and time not recorded)")
    unknown = _meta("breakout-dueling-double", algorithm=None, config=None, train_seconds=None)
    assert breakout_policy.describe(unknown, committed=False) == (
        "argmax policy", "its policy.json does not say how it was trained")
