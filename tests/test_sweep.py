"""Issue 23: what loading a policy folder may do, checkpoint pruning, process-wide state, quiet commands,
and the faults of the bad-input sweep (each a one-line error or the right behaviour, with its message).

The sweep's numbers (1-18) are the issue's; each test says which one it checks.
"""
import json
import os
import shutil
import subprocess
import sys

import pytest

from conftest import REPO, run_cli
from keras_impl import names
from keras_impl.checkpoints import CheckpointManager, CorruptCheckpointError

TRAINED = REPO / "agents" / "trained"


def one_error(err: str) -> str:
    """The single ``kcourse: error:`` line of ``err``; no traceback, no other line."""
    assert "Traceback" not in err, err[-3000:]
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("kcourse: error:"), err[-3000:]
    return lines[0]


# ----------------------------------------------------------------------------------------------
# Loading: policy.json names only kcourse's own factories
# ----------------------------------------------------------------------------------------------


def _policy_copy(tmp_path, **changes):
    """A copy of the committed CartPole policy with ``changes`` written into its policy.json."""
    folder = tmp_path / "policy"
    shutil.copytree(TRAINED / "cartpole-v1-dqn", folder)
    meta = json.loads((folder / "policy.json").read_text())
    meta.update(changes)
    (folder / "policy.json").write_text(json.dumps(meta))
    return folder


@pytest.mark.parametrize("factory, kwargs", [
    ("shutil:rmtree", lambda canary: {"path": str(canary.parent)}),
    ("logging:basicConfig", lambda canary: {"filename": str(canary), "filemode": "w", "force": True}),
    ("this:s", lambda canary: {}),
    ("keras_impl.runtime:make_run_dir", lambda canary: {"root": str(canary.parent / "made"), "name": "x"}),
    ("keras_impl.movielens.synthetic:generate_synthetic", lambda canary: {"folder": str(canary.parent / "made")}),
])
def test_policy_env_factory_outside_the_allow_list_is_refused_before_anything_runs(tmp_path, factory, kwargs):
    canary_dir = tmp_path / "canary"
    canary_dir.mkdir()
    canary = canary_dir / "canary.txt"
    canary.write_text("still here\n")
    folder = _policy_copy(tmp_path, env_factory=factory, env_kwargs=kwargs(canary))
    code, out, err = run_cli("eval", folder, "--episodes", "1", timeout=300)
    line = one_error(err)
    assert code == 2 and out == ""
    assert f"field `env_factory` {factory!r} is not allowed; allowed: agents.atari:make_atari_env" in line
    assert canary.read_text() == "still here\n" and sorted(os.listdir(canary_dir)) == ["canary.txt"]
    assert "The Zen of Python" not in out + err  # `this` was never imported


def test_env_factory_for_resolves_only_the_allow_list():
    from agents import atari
    from agents.policy_files import ENV_FACTORIES, env_factory_for

    assert ENV_FACTORIES == ("agents.atari:make_atari_env",)
    factory = env_factory_for({"env_factory": "agents.atari:make_atari_env", "env_id": "ALE/Pong-v5"})
    assert factory.func is atari.make_atari_env and factory.args == ("ALE/Pong-v5",)
    for name in ("os:system", "agents.envs:make_env", "", 3):
        with pytest.raises(ValueError, match="field `env_factory`"):
            env_factory_for({"env_factory": name})


def test_policy_env_kwargs_must_be_an_object(tmp_path):
    folder = _policy_copy(tmp_path, env_kwargs=["a"])
    from agents.policy_files import read_policy_metadata

    with pytest.raises(ValueError, match="field `env_kwargs`: expected a JSON object of the env's arguments"):
        read_policy_metadata(folder)


# ----------------------------------------------------------------------------------------------
# One resolver
# ----------------------------------------------------------------------------------------------


def test_the_resolver_checks_before_it_imports(monkeypatch):
    imported = []
    real = names.importlib.import_module
    monkeypatch.setattr(names.importlib, "import_module", lambda m: imported.append(m) or real(m))
    for bad, message in [("this:s", "is not a function of kcourse"), ("os.path:join", "is not a function of kcourse"),
                         ("kcourse.cli", "is not a 'module:function' name"), ("a:b:c", "is not a 'module:function' name"),
                         ("keras_impl.runtime:make_run_dir", "is not allowed")]:
        with pytest.raises(ValueError, match=message):
            names.resolve(bad, allowed=("agents.atari:make_breakout_env",) if "runtime" in bad else None)
    assert imported == []
    with pytest.raises(ValueError, match=r"'agents\.nowhere:f' cannot be imported \(no module 'agents.nowhere'\)"):
        names.resolve("agents.nowhere:f")
    with pytest.raises(ValueError, match="keras_impl.files has no 'nothing'"):
        names.resolve("keras_impl.files:nothing")
    from keras_impl import files

    assert names.resolve("keras_impl.files:to_json") is files.to_json


def test_cli_exercises_and_policy_files_use_the_one_resolver():
    for path in ("kcourse/cli.py", "kcourse/exercises.py", "agents/policy_files.py"):
        source = (REPO / path).read_text()
        assert "import_module" not in source and "names.resolve(" in source, path


# ----------------------------------------------------------------------------------------------
# Checkpoints: pruning keeps the newest verified one; a refused corrupt one is kept for inspection
# ----------------------------------------------------------------------------------------------


def _write(value):
    return lambda folder: (folder / "w.txt").write_text(str(value))


def _corrupt(path):
    (path / "w.txt").write_text("damaged")


@pytest.mark.parametrize("keep", [1, 2])
def test_pruning_keeps_the_newest_verified_checkpoint_and_the_corrupt_one(tmp_path, keep):
    logged = []
    first = CheckpointManager(tmp_path / "checkpoints", keep=2, log=logged.append)  # the first run
    for step in (10, 20):
        first.save(step, _write(step))
    _corrupt(tmp_path / "checkpoints" / "ckpt-000020")
    manager = CheckpointManager(tmp_path / "checkpoints", keep=keep, log=logged.append)  # the resumed run
    assert manager.latest().name == "ckpt-000010"  # the resume falls back past 20
    assert "kept for inspection" in logged[-1]
    manager.save(15, _write(15))  # the resumed run saves again
    names_now = [p.name for p in manager.checkpoints()]
    # before: keep=1 deleted 20 and 10 (and kept nothing verified but 15); keep=2 deleted 10 and kept the corrupt 20
    assert names_now == (["ckpt-000020", "ckpt-000015"] if keep == 1 else ["ckpt-000020", "ckpt-000015", "ckpt-000010"])
    assert (tmp_path / "checkpoints" / "ckpt-000020" / "w.txt").read_text() == "damaged"  # fault 15: kept
    assert (manager.latest() / "w.txt").read_text() == "15"
    manager.save(17, _write(17))
    assert [p.name for p in manager.checkpoints()] == (["ckpt-000020", "ckpt-000017"] if keep == 1
                                                       else ["ckpt-000020", "ckpt-000017", "ckpt-000015"])


def test_a_save_at_the_step_of_a_refused_checkpoint_moves_it_aside(tmp_path):
    logged = []
    manager = CheckpointManager(tmp_path / "checkpoints", keep=2, log=logged.append)
    for step in (10, 20):
        manager.save(step, _write(step))
    _corrupt(tmp_path / "checkpoints" / "ckpt-000020")
    manager.latest()
    manager.save(20, _write("new 20"))
    aside = tmp_path / "checkpoints" / "ckpt-000020.corrupt"
    assert (aside / "w.txt").read_text() == "damaged"
    assert f"kept the corrupt ckpt-000020 for inspection as {aside}" in logged
    assert (manager.latest() / "w.txt").read_text() == "new 20"
    with pytest.raises(CorruptCheckpointError):  # the kept copy still reads as corrupt when verified
        from keras_impl.checkpoints import verify
        verify(aside)


def test_pruning_without_a_fallback_keeps_the_last_n(tmp_path):
    manager = CheckpointManager(tmp_path / "c", keep=2, log=lambda m: None)
    for step in (1, 2, 3, 4):
        manager.save(step, _write(step))
    assert [p.name for p in manager.checkpoints()] == ["ckpt-000004", "ckpt-000003"]


# ----------------------------------------------------------------------------------------------
# Process-wide state: `import keras_impl` leaves tf.keras alone; the CLI is quiet
# ----------------------------------------------------------------------------------------------


def _clean_env() -> dict:
    """This environment without the variables conftest.py sets for the whole test process."""
    return {k: v for k, v in os.environ.items() if k not in ("TF_USE_LEGACY_KERAS", "TF_CPP_MIN_LOG_LEVEL")}


def _fresh_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_clean_env(), cwd=REPO,
                          timeout=300)


def kcourse_clean(*args, timeout=600):
    """``python -m kcourse ARGS`` as a user runs it: no TF variable set beforehand."""
    proc = subprocess.run([sys.executable, "-m", "kcourse", *map(str, args)], capture_output=True, text=True,
                          env=_clean_env(), cwd=REPO, timeout=timeout)
    return proc.returncode, proc.stdout, proc.stderr


def test_import_keras_impl_leaves_tf_keras_alone():
    proc = _fresh_python("import os, keras_impl, agents, kcourse, keras_impl.runtime, tensorflow as tf\n"
                         "print(tf.keras.Sequential.__module__)\n"
                         "print(os.environ.get('TF_USE_LEGACY_KERAS'), os.environ.get('TF_CPP_MIN_LOG_LEVEL'))\n"
                         "import warnings, logging\n"
                         "print(len(logging.getLogger('tensorflow').filters))")
    lines = proc.stdout.split()
    assert lines[0].startswith("keras.src."), proc.stdout + proc.stderr[-2000:]  # Keras 3, not tf_keras
    assert lines[1:] == ["None", "None", "0"], proc.stdout


def test_agents_tfa_sets_legacy_keras_for_tf_agents_even_after_keras3_code_ran():
    proc = _fresh_python("import numpy as np, keras\n"
                         "keras.Sequential([keras.layers.Dense(1)])(np.zeros((1, 2)))\n"
                         "import agents.tfa, tensorflow as tf\nprint(tf.keras.Sequential.__module__)")
    assert proc.stdout.strip().startswith("tf_keras."), proc.stdout + proc.stderr[-2000:]


def test_the_cli_sets_legacy_keras_only_for_tf_agents_commands():
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    code = ("import os, sys\nfrom argparse import Namespace\nfrom kcourse import cli\n"
            "cli.configure_process(Namespace(command=sys.argv[1], name=sys.argv[2]), console=False)\n"
            "print(os.environ.get('TF_USE_LEGACY_KERAS'), os.environ.get('TF_CPP_MIN_LOG_LEVEL'))")
    for command, name, legacy in (("run", "tfa-dqn", "1"), ("run", "dqn", "None"), ("predict", "-", "None")):
        out = subprocess.run([sys.executable, "-c", code, command, name], capture_output=True, text=True, env=env,
                             cwd=REPO, timeout=120).stdout.split()
        assert out == [legacy, "2"], (command, name, out)


NOISE_MARKERS = ("I0000", "E0000", "W0000", "oneDNN", "cudart_stub", "cuInit", "absl::InitializeLog",
                 "cpu_feature_guard", "rebuild TensorFlow")


def test_eval_prints_no_tensorflow_start_up_lines():
    code, out, err = kcourse_clean("eval", TRAINED / "cartpole-v1-dqn", "--episodes", "2", timeout=300)
    assert code == 0 and "mean 500.00" in out, err[-2000:]
    assert not [m for m in NOISE_MARKERS if m in out + err], err
    assert err == ""


def test_the_stderr_filter_keeps_real_errors_and_drops_only_the_noise():
    code = ("import os, sys\nfrom kcourse import quiet\nquiet.filter_stderr()\n"
            "os.write(2, b'I0000 00:00:1796410168.960931    7461 port.cc:153] oneDNN custom operations are on.\\n')\n"
            "os.write(2, b'E0000 00:00:1796065406.485250    2408 cuda_platform.cc:52] failed call to cuInit: x\\n')\n"
            "os.write(2, b'E0000 00:00:1796065406.485250    2408 bfc_allocator.cc:12] OOM when allocating\\n')\n"
            "print('kcourse: error: a real one', file=sys.stderr)\nos.write(2, b'progress 1\\rprogress 2\\r')\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, cwd=REPO, timeout=60)
    assert proc.stderr == (b"E0000 00:00:1796065406.485250    2408 bfc_allocator.cc:12] OOM when allocating\n"
                           b"kcourse: error: a real one\nprogress 1\rprogress 2\r")


# ----------------------------------------------------------------------------------------------
# The sweep's faults: runs (11-18)
# ----------------------------------------------------------------------------------------------


def test_fault12_an_empty_list_is_refused(capsys):
    from kcourse import cli

    assert cli.main(["run", "dqn", "--quick", "--config", "hidden="]) == 2
    line = one_error(capsys.readouterr().err)
    assert line == ("kcourse: error: config key 'hidden' expects a comma-separated list of int, e.g. hidden=64,64; "
                    "got '' (an empty list)")


@pytest.mark.parametrize("only", ["", " , "])
def test_fault13_only_naming_no_exercise_is_an_error(tmp_path, capsys, only):
    from kcourse import cli

    assert cli.main(["run", "all", "--quick", "--only", only, "--out", str(tmp_path / "out")]) == 2
    line = one_error(capsys.readouterr().err)
    assert line.startswith(f"kcourse: error: --only {only!r} names no exercise: give comma-separated names from linreg,")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("args", [["run", "--help"], ["run", "all", "--help"], ["run", "-h"]])
def test_fault16_run_help_prints_help(capsys, args):
    from kcourse import cli

    assert cli.main(args) == 0
    out, err = capsys.readouterr()
    assert out.startswith("usage: kcourse run ") and "--only ONLY" in out and err == ""


def test_fault14_ctrl_c_in_run_all_writes_the_partial_report(tmp_path):
    import signal

    proc = subprocess.Popen([sys.executable, "-m", "kcourse", "run", "all", "--quick", "--only", "markov,dqn",
                             "--out", str(tmp_path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=REPO, start_new_session=True)
    seen = []
    for line in proc.stdout:  # wait until markov is done and dqn is training (its first progress line)
        seen.append(line)
        if line.startswith("[dqn] episode "):
            break
    os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C reaches the whole process group, as in a terminal
    out, err = proc.communicate(timeout=300)
    out = "".join(seen) + out
    assert proc.returncode == 130, out + err
    assert "[kcourse] markov: " in out and "[kcourse] interrupted: partial report" in out
    assert "(1 of 2 exercises finished, the rest marked interrupted)" in out
    assert err.count("kcourse: interrupted") <= 1 and "Traceback" not in err, err
    report = (tmp_path / "report.md").read_text()
    assert "| markov |" in report and "| dqn |" in report and "interrupted (Ctrl-C)" in report
    assert "1 n/a, 1 interrupted." in report or "1 interrupted." in report


def test_fault17_and_quiet_run_dqn_quick(tmp_path):
    """`kcourse run dqn --quick` as a user runs it: no TensorFlow start-up line, no `loss nan` (fault 17)."""
    code, out, err = kcourse_clean("run", "dqn", "--quick", "--out", tmp_path, timeout=600)
    assert code == 0, err[-3000:]
    assert not [m for m in NOISE_MARKERS if m in out + err], err[-3000:]
    progress = [line for line in out.splitlines() if line.startswith("[dqn] episode ")]
    assert progress and "nan" not in out, out
    assert progress[0].endswith("no update yet") or " loss " in progress[0]


def test_fault18_tfa_dqn_says_where_and_when_it_checkpoints_once(tmp_path):
    code, out, err = kcourse_clean("run", "tfa-dqn", "--quick", "--no-gif", "--out", tmp_path, timeout=600)
    assert code == 0, err[-3000:]
    lines = [line for line in out.splitlines() if line.startswith("[tfa-dqn] checkpoint ")]
    assert len(lines) == 1, out  # the quick run saves twice (iterations 2 and 4): said once
    assert "ckpt-" in lines[0] and "/checkpoints at train step" in lines[0]
    assert "one every 2 iterations and on Ctrl-C, the last 2 kept" in lines[0]
    assert not [m for m in NOISE_MARKERS if m in out + err], err[-3000:]
    assert "is deprecated" not in err and "SyntaxWarning" not in err, err[-3000:]


# ----------------------------------------------------------------------------------------------
# The sweep's faults: policies (1-3)
# ----------------------------------------------------------------------------------------------


def test_fault1_absurd_episode_counts_are_refused_and_evaluation_runs_in_batches(capsys):
    import numpy as np

    from agents.evaluation import evaluate
    from kcourse import cli, eval_command

    assert cli.main(["eval", str(TRAINED / "cartpole-v1-dqn"), "--episodes", "100000000"]) == 2
    assert one_error(capsys.readouterr().err) == (
        "kcourse: error: Received an invalid value for argument `--episodes`: expected <= 1,000,000 "
        "(evaluated 1,000 at a time), got 100000000")

    def policy(obs):  # HOML's angle policy: deterministic, so each episode depends on its seed only
        return (np.asarray(obs)[:, 2] > 0).astype(np.int64)

    whole = evaluate(policy, "CartPole-v1", episodes=7, seed=5)
    batched = eval_command.evaluate_in_batches(policy, "CartPole-v1", 7, 5, batch=3)  # 3 + 3 + 1 episodes
    assert batched.lengths == whole.lengths and len(set(whole.lengths)) > 1 and batched.seed == 5
    assert batched.mean == pytest.approx(whole.mean) and batched.std == pytest.approx(whole.std)


def test_fault2_a_policy_json_or_model_from_another_policy_is_named_in_one_line(tmp_path):
    from keras_impl.checkpoints import write_manifest

    edited = _policy_copy(tmp_path, env_id="FrozenLake-v1")
    code, out, err = run_cli("eval", edited, "--episodes", "2", timeout=300)
    assert code == 2 and one_error(err) == (
        f"kcourse: error: {edited}: policy.json's observation space (Box shape [4]) does not match FrozenLake-v1's "
        f"(Discrete n=16): the file was edited or belongs to another policy")
    swapped = tmp_path / "swapped"
    shutil.copytree(TRAINED / "cartpole-v1-dqn", swapped)
    shutil.copy(TRAINED / "frozenlake-4x4" / "model.keras", swapped / "model.keras")
    write_manifest(swapped, exclude=("policy.json",))  # the manifest recomputed: only the shapes can tell
    code, out, err = run_cli("eval", swapped, "--episodes", "2", timeout=300)
    line = one_error(err)
    assert code == 2 and "\x1b[" not in err
    assert line.startswith(f"kcourse: error: {swapped}: model.keras does not accept CartPole-v1's observations "
                           f"(shape [4], as policy.json says: Box shape [4]); the model belongs to another policy?")


def test_fault3_every_committed_policy_has_a_manifest_that_verifies():
    from agents.trained import available
    from keras_impl.checkpoints import MANIFEST, verify_manifest

    assert {"cartpole-v1-dqn", "frozenlake-4x4", "frozenlake-4x4-slippery"} <= set(available())
    for name in available():
        folder = TRAINED / name
        assert (folder / MANIFEST).is_file(), name
        listed = json.loads((folder / MANIFEST).read_text())
        assert set(listed) == {p.name for p in folder.iterdir()} - {MANIFEST, "policy.json"}, name
        verify_manifest(folder, "saved policy")


def test_fault11_an_absurd_dqn_budget_is_refused(capsys):
    from kcourse import cli

    assert cli.main(["run", "dqn", "--quick", "--config", "total_timesteps=1000000000"]) == 2
    assert one_error(capsys.readouterr().err) == ("kcourse: error: Received an invalid value for argument "
                                                  "`total_timesteps`: expected >= 1 and <= 50,000,000, got 1000000000 "
                                                  "(1,000,000,000 agent steps of Atari training take about 1.1 years "
                                                  "on a CPU at about 30 steps/s; 50,000,000 about 19 days)")


# ----------------------------------------------------------------------------------------------
# The sweep's faults: recommender data (4-10)
# ----------------------------------------------------------------------------------------------


def _tiny(folder, layout="csv"):
    from keras_impl import movielens

    movielens.generate_synthetic(folder, "tiny", seed=0, layout=layout)
    return folder


def test_fault4_a_ratings_file_with_one_user_is_refused(tmp_path, capsys):
    from kcourse import cli

    folder = tmp_path / "one"
    folder.mkdir()
    (folder / "ratings.csv").write_text("userId,movieId,rating\n" + "".join(f"7,{m},4\n" for m in range(1, 30)))
    (folder / "movies.csv").write_text("movieId,title,genres\n" + "".join(f"{m},Film {m},Drama\n" for m in range(1, 30)))
    assert cli.main(["run", "recommender", "--data", str(folder), "--quick", "--out", str(tmp_path / "runs")]) == 2
    assert one_error(capsys.readouterr().err) == ("kcourse: error: the ratings hold 1 user(s) after the merge with "
                                                  "movies.csv; a recommender needs at least 2 users")
    assert not (tmp_path / "runs").exists()


def test_faults5_6_forced_user_absent_and_the_layout_read_are_said(tmp_path, capsys):
    import pandas as pd

    from kcourse import cli
    from keras_impl import movielens

    folder = _tiny(tmp_path / "both")
    for name in ("u.data", "u.item", "u.genre"):  # an ml-100k folder's files beside the CSVs
        shutil.copy(_tiny(tmp_path / "k100", "ml-100k") / name, folder / name)
    assert cli.main(["run", "recommender", "--data", str(folder), "--quick", "--users", "2",
                     "--out", str(tmp_path / "runs")]) == 0
    out = capsys.readouterr().out
    assert f"reading {folder}: csv layout: ratings.csv, movies.csv (not read: u.data, u.item of the ml-100k layout)" in out
    assert ("warning: the course's forced user (userId 46889, of ml-20m) is not in this data: 2 users sampled "
            "without it") in out
    assert ", 2 users, " in out  # not 1
    ratings, movies = movielens.read_movielens(folder)
    with pytest.raises(ValueError) as err:  # --users 1: the cause is named, not the merge
        movielens.course_preprocess(ratings, movies, n_users=1, forced_user=None)
    assert str(err.value).startswith("Received an invalid value for argument `users`: expected at least 2 sampled "
                                     "users with at least 2 ratings, got 1 (1 user(s)")
    assert isinstance(ratings, pd.DataFrame)


def test_fault7_trailing_blank_lines_are_ignored_in_every_layout(tmp_path):
    from keras_impl import movielens

    for layout, name in (("ml-100k", "u.data"), ("ml-1m", "ratings.dat"), ("csv", "ratings.csv")):
        folder = _tiny(tmp_path / layout, layout)
        before = movielens.read_movielens(folder)[0]
        with open(folder / name, "a") as handle:
            handle.write("\n\n\n")
        after = movielens.read_movielens(folder)[0]
        assert len(after) == len(before) == 1_500 and after.equals(before), layout


def test_fault8_a_real_file_in_an_earlier_synthetic_folder_is_not_replaced(tmp_path):
    folder = _tiny(tmp_path / "syn")
    real = "userId,movieId,rating,timestamp\n1,1,4.0,964982703\n"
    (folder / "ratings.csv").write_text(real)
    code, out, err = run_cli("data", "synthetic", "tiny", "--to", folder, timeout=300)
    assert code == 2 and one_error(err) == (
        f"kcourse: error: {folder} is a synthetic folder but ratings.csv is not the file kcourse generated there "
        f"(replaced or edited since); nothing was changed. Pass a new folder, or move the file away first")
    assert (folder / "ratings.csv").read_text() == real
    # a folder written before the checksums were recorded: the row count tells
    info = json.loads((folder / "SYNTHETIC.json").read_text())
    del info["files"]
    (folder / "SYNTHETIC.json").write_text(json.dumps(info))
    code, out, err = run_cli("data", "synthetic", "tiny", "--to", folder, timeout=300)
    assert code == 2 and "ratings.csv is not the file kcourse generated there" in one_error(err)
    assert (folder / "ratings.csv").read_text() == real
    # an untouched earlier synthetic folder is still replaced
    fresh = _tiny(tmp_path / "fresh")
    code, out, err = run_cli("data", "synthetic", "tiny", "--to", fresh, "--seed", "1", timeout=300)
    assert code == 0, err


@pytest.mark.parametrize("extra", [["--base-url", "http://127.0.0.1:9"], ["--md5", "not-hex"]])
def test_fault9_a_failed_download_leaves_no_folder(tmp_path, extra):
    target = tmp_path / "new" / "deeper"
    code, out, err = run_cli("data", "download", "ml-100k", "--to", target, *extra, timeout=120)
    line = one_error(err)
    assert code == 2 and ("download of ml-100k failed" in line or "argument `md5`: expected 32 hex digits" in line)
    assert not (tmp_path / "new").exists()


def test_fault10_a_negative_synthetic_seed_names_the_argument(tmp_path, capsys):
    from kcourse import cli

    assert cli.main(["data", "synthetic", "tiny", "--to", str(tmp_path / "d"), "--seed", "-1"]) == 2
    assert one_error(capsys.readouterr().err) == ("kcourse: error: Received an invalid value for argument `--seed`: "
                                                  "expected >= 0, got -1")
    assert not (tmp_path / "d").exists()


def test_predict_prints_no_tensorflow_start_up_lines(tmp_path, capsys):
    """`kcourse predict` as a user runs it (no TF variable set): its answer, and nothing on stderr."""
    from kcourse import cli

    data = _tiny(tmp_path / "data")
    assert cli.main(["run", "recommender", "--data", str(data), "--quick", "--out", str(tmp_path / "runs")]) == 0
    capsys.readouterr()
    (run_dir,) = (tmp_path / "runs").iterdir()
    code, out, err = kcourse_clean("predict", run_dir, "--user", "3", "--movie", "7", "--by", "index", timeout=300)
    assert code == 0 and "predicted rating" in out, err[-2000:]
    assert err == "" and not [m for m in NOISE_MARKERS if m in out], out
    print(f"$ kcourse predict RUN_DIR --user 3 --movie 7 --by index\n{out}", file=sys.__stdout__)


def test_fault15_a_dqn_resume_keeps_the_corrupt_checkpoint_it_fell_back_past(tmp_path):
    import dataclasses

    from agents import dqn, dqn_train

    tiny = dict(env="CartPole-v1", hidden=(16, 16), learning_starts=100, train_frequency=10, gradient_steps=5,
                batch_size=32, eval_interval=0, eval_episodes=3, gif=False, target_update_interval=50)
    cfg = dqn.DQNConfig(total_timesteps=300, checkpoint_every=3, keep_checkpoints=2, seed=0, **tiny)
    dqn_train.train(cfg, tmp_path, log=lambda line: None)
    manager = CheckpointManager(tmp_path / "checkpoints", log=lambda line: None)
    newest, older = manager.checkpoints()[:2]
    damaged = (newest / "q_net.weights.h5").read_bytes()[:100]
    (newest / "q_net.weights.h5").write_bytes(damaged)
    lines = []
    dqn_train.train(dataclasses.replace(cfg, total_timesteps=900), tmp_path, resume=True, log=lines.append)
    assert any("refusing checkpoint" in line and "kept for inspection" in line for line in lines), lines
    kept = newest if newest.exists() else newest.with_name(newest.name + ".corrupt")
    assert (kept / "q_net.weights.h5").read_bytes() == damaged  # kept, as docs/reliability.md says
    assert len(manager.checkpoints()) >= 2


def test_policy_env_id_in_gymnasiums_module_form_imports_nothing(tmp_path):
    """Gymnasium's make("module:Env-v0") imports the module: make_env refuses an unregistered id first."""
    folder = _policy_copy(tmp_path, env_id="this:Zen-v0")
    code, out, err = run_cli("eval", folder, "--episodes", "1", timeout=300)
    assert code == 2 and "unknown environment 'this:Zen-v0'" in one_error(err)
    assert "The Zen of Python" not in out + err
