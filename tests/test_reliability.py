"""Issue 16: bad input gives one line and exit code 2, never a traceback, a silent wrong result or lost data.

Each test runs the real CLI (in this process through ``kcourse.cli.main``, or in a subprocess)
and checks the message, the exit code, and that nothing was written or changed. The TF-Agents
faults (checkpoints, the exported SavedModel, Ctrl-C) are in ``tests/test_tfa_pipeline.py``, next
to its shared quick run; the MovieLens data-file faults are tested with the data module.
"""
import dataclasses
import json
import math
import os
import re
import shutil
import subprocess
import sys
import textwrap
import threading
import types

import numpy as np
import pytest

import agents  # noqa: F401
from conftest import REPO
from kcourse import cli, exercises
from keras_impl import config as cfglib
from keras_impl import files

# ----------------------------------------------------------------------------------------------
# Helpers
# ----------------------------------------------------------------------------------------------


def kcourse(capsys, *args) -> tuple[int, str, str]:
    """``kcourse ARGS`` in this process: (exit code, stdout, stderr)."""
    code = cli.main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def one_error(err: str) -> str:
    """The single ``kcourse: error:`` line of ``err`` (TensorFlow's own log lines aside); no traceback."""
    assert "Traceback" not in err, err[-3000:]
    lines = [line for line in err.splitlines() if line.startswith("kcourse: error:")]
    assert len(lines) == 1, err[-3000:]
    return lines[0]


def snapshot(folder) -> dict:
    """Every path under ``folder`` with its bytes (None for a folder): equal snapshots = nothing changed."""
    return {p.relative_to(folder).as_posix(): (None if p.is_dir() else p.read_bytes())
            for p in sorted(folder.rglob("*"))}


def strict_loads(text: str):
    """``json.loads`` that refuses NaN and Infinity, as strict JSON parsers (JavaScript, jq, Go) do."""
    def refuse(constant):
        raise ValueError(f"non-standard JSON constant {constant}")

    return json.loads(text, parse_constant=refuse)


@pytest.fixture(params=["under-a-file", "read-only-folder"])
def unwritable(request, tmp_path):
    """A folder path that cannot be created or written to (for root too: a path under a regular file)."""
    if request.param == "under-a-file":
        blocker = tmp_path / "a-file"
        blocker.write_text("not a folder")
        return blocker / "sub"
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o500)
    request.addfinalizer(lambda: folder.chmod(0o700))
    if os.access(folder, os.W_OK):
        pytest.skip("running as root: a 0o500 folder is still writable (the under-a-file case covers it)")
    return folder / "sub"


# ----------------------------------------------------------------------------------------------
# 2. A failed `kcourse run dqn --resume DIR` changes nothing in DIR
# ----------------------------------------------------------------------------------------------

TINY_DQN = dict(env="CartPole-v1", hidden=(16, 16), learning_starts=100, train_frequency=10, gradient_steps=5,
                batch_size=32, eval_interval=0, eval_episodes=3, gif=False, target_update_interval=50,
                total_timesteps=300, checkpoint_every=3, keep_checkpoints=2, seed=0)


@pytest.fixture(scope="module")
def dqn_run(tmp_path_factory):
    """A tiny trained DQN run folder (config.json, checkpoints/ckpt-*, TensorBoard logs)."""
    from agents import dqn_train
    from agents.configs import DQNConfig

    run_dir = tmp_path_factory.mktemp("dqn") / "run"
    dqn_train.train(DQNConfig(**TINY_DQN), run_dir, log=lambda line: None)
    assert len(list((run_dir / "checkpoints").glob("ckpt-*"))) == 2
    return run_dir


def _truncate_weights(run_dir):
    for ckpt in (run_dir / "checkpoints").glob("ckpt-*"):
        weights = ckpt / "q_net.weights.h5"
        weights.write_bytes(weights.read_bytes()[:100])


def _remove_sentinels(run_dir):
    for ckpt in (run_dir / "checkpoints").glob("ckpt-*"):
        (ckpt / files.COMPLETE_MARKER).unlink()


def _remove_checkpoints(run_dir):
    shutil.rmtree(run_dir / "checkpoints")


def _other_network(run_dir):  # checkpoints that verify but were made for another network shape
    config = json.loads((run_dir / "config.json").read_text())
    config["hidden"] = [8]
    (run_dir / "config.json").write_text(json.dumps(config))


@pytest.mark.parametrize("damage, message", [
    (_truncate_weights, r"no usable checkpoint: checkpoint \S+ckpt-\d+ is corrupt: \S+q_net\.weights\.h5 does not "
                        r"match its SHA-256"),
    (_remove_sentinels, r"no usable checkpoint: checkpoint \S+ is incomplete \(no COMPLETE sentinel"),
    (_remove_checkpoints, r"no checkpoint in \S+/checkpoints$"),
    (_other_network, r"checkpoint \S+ckpt-\d+ does not fit this run's agent"),
])
def test_failed_dqn_resume_changes_nothing_in_the_run_folder(dqn_run, tmp_path, capsys, damage, message):
    run_dir = tmp_path / "run"
    shutil.copytree(dqn_run, run_dir)
    damage(run_dir)
    before = snapshot(run_dir)
    code, out, err = kcourse(capsys, "run", "dqn", "--resume", run_dir, "--config", "total_timesteps=400")
    assert code == 2
    line = one_error(err)
    assert re.search(message, line), line
    # The old code rewrote config.json before the checkpoint was checked (and made checkpoints/ again).
    assert snapshot(run_dir) == before


# ----------------------------------------------------------------------------------------------
# 3. Unwritable outputs: one line naming the path, before the long work
# ----------------------------------------------------------------------------------------------


def test_unwritable_out_is_one_line_naming_the_path(unwritable, capsys):
    code, out, err = kcourse(capsys, "run", "linreg", "--quick", "--out", unwritable)
    assert code == 2
    line = one_error(err)
    assert line.startswith("kcourse: error: cannot create the run folder") and str(unwritable) in line


def test_unwritable_out_of_run_all_fails_before_any_exercise(unwritable, capsys, monkeypatch):
    from kcourse import runner

    def no_exercise(*args, **kwargs):
        raise AssertionError("an exercise ran before --out was checked")

    monkeypatch.setattr(runner.subprocess, "run", no_exercise)
    code, out, err = kcourse(capsys, "run", "all", "--quick", "--only", "linreg", "--out", unwritable)
    assert code == 2
    assert one_error(err).startswith(f"kcourse: error: cannot write the report (--out) {unwritable / 'report.md'}")


def test_unwritable_eval_json_fails_before_the_evaluation(unwritable, capsys, monkeypatch):
    from kcourse import eval_command

    def no_evaluation(*args, **kwargs):
        raise AssertionError("evaluated before --json was checked")

    monkeypatch.setattr(eval_command, "evaluate", no_evaluation)
    target = unwritable / "result.json"
    code, out, err = kcourse(capsys, "eval", "random", "--env", "cartpole", "--episodes", "2", "--json", target)
    assert code == 2
    assert one_error(err).startswith(f"kcourse: error: cannot write the result file (--json) {target}: ")


def test_writable_path_creates_nothing(tmp_path):
    target = tmp_path / "new" / "deeper" / "result.json"
    assert files.writable_path(target) == target
    assert list(tmp_path.iterdir()) == []  # the folders are made when the file is written, not by the check
    (tmp_path / "a-folder.json").mkdir()
    with pytest.raises(ValueError, match="a-folder.json: it is a folder"):
        files.writable_path(tmp_path / "a-folder.json")


@pytest.mark.parametrize("script, args", [
    ("dqn_cartpole.py", ["--impl", "keras", "--max-steps", "300"]),
    ("tfa_breakout.py", ["--iterations", "1", "--warmup", "0", "--env-steps", "1", "--prefill", "1"]),
    ("tfa_cartpole.py", ["--seeds", "0"]),
    ("recommender_ranking.py", ["no-such-model.keras"]),
])
def test_benchmarks_check_json_before_their_work(tmp_path, script, args):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    target = blocker / "bench.json"
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / script), *args, "--json", str(target)],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if ": error: " in line]
    assert lines == [f"{script}: error: cannot write the result file (--json) {target}: {blocker} is not a folder"]
    assert proc.stdout == ""  # nothing ran


# ----------------------------------------------------------------------------------------------
# 7. DQN on an environment it cannot act in
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("env, message", [
    ("Pendulum-v1", "Received an invalid value for argument `env`: expected an environment with a discrete action "
                    "space (DQN picks one of n actions), got 'Pendulum-v1 with Box("),
    ("NoSuchEnv-v0", "unknown environment 'NoSuchEnv-v0'; available: CartPole-v1, "),
])
def test_dqn_on_an_env_it_cannot_act_in_is_one_line_and_leaves_no_run_folder(tmp_path, capsys, env, message):
    out_dir = tmp_path / "runs"
    code, out, err = kcourse(capsys, "run", "dqn", "--quick", "--env", env, "--out", out_dir)
    assert code == 2
    assert one_error(err).startswith(f"kcourse: error: {message}")
    # 12: the folder the run made (and the --out folder it made) are gone again: nothing was written
    assert not out_dir.exists()


# ----------------------------------------------------------------------------------------------
# 8. A recommender trained on other data is refused before any prediction
# ----------------------------------------------------------------------------------------------


def test_movielens_rl_refuses_a_recommender_for_other_data_before_predicting(tmp_path, capsys, monkeypatch):
    from agents import movielens_env, movielens_rl
    from keras_impl import movielens
    from keras_impl import recommender as recommender_lib

    trained_on, other = tmp_path / "ml-a", tmp_path / "ml-b"
    movielens.generate_synthetic(trained_on, "tiny", seed=1)
    movielens.generate_synthetic(other, "tiny", seed=2)
    data = movielens.load_course_data(trained_on)
    model = movielens_rl.train_recommender(data, epochs=1, batch_size=256, seed=0)
    movielens_env.check_model_matches(data, model)  # it fits its own data...
    recommender_lib.save(model, tmp_path / "a.keras")

    def no_prediction(*args, **kwargs):
        raise AssertionError("the recommender predicted before it was checked against the data")

    monkeypatch.setattr(recommender_lib, "predict_batch", no_prediction)
    monkeypatch.setattr(movielens_rl, "build_tables", no_prediction)
    out_dir = tmp_path / "runs"
    code, out, err = kcourse(capsys, "run", "movielens-rl", "--data", other, "--config",
                             f"recommender={tmp_path / 'a.keras'}", "--eval-users", "20", "--candidates", "8",
                             "--k", "3", "--agent", "greedy", "--out", out_dir)
    assert code == 2  # ...not another sample's
    assert one_error(err).startswith("kcourse: error: the recommender does not match the data: it knows ")
    assert not out_dir.exists()


# ----------------------------------------------------------------------------------------------
# 9. Values accepted but meaningless; strict JSON
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("exercise, setting, message", [
    ("hello", "learning_rate=0", "`learning_rate`: expected > 0, got 0.0"),
    ("recommender", "learning_rate=0", "`learning_rate`: expected > 0, got 0.0"),
    ("frozenlake-dqn", "learning_rate=0", "`learning_rate`: expected > 0, got 0.0"),
    ("q-learning", "alpha0=0", "`alpha0`: expected > 0 and <= 1, got 0.0"),
    ("frozenlake-dqn", "episodes=-3", "`episodes`: expected >= 1, got -3"),
    ("q-learning", "iterations=-3", "`iterations`: expected >= 1, got -3"),
    ("dqn", "target_return=nan", "`target_return`: expected a finite number, got nan"),
    ("tfa-dqn", "learning_rate=inf", "`learning_rate`: expected a finite number, got inf"),
])
def test_meaningless_values_are_refused_before_anything_is_written(tmp_path, capsys, exercise, setting, message):
    out_dir = tmp_path / "runs"
    code, out, err = kcourse(capsys, "run", exercise, "--quick", "--config", setting, "--out", out_dir)
    assert code == 2
    assert one_error(err) == f"kcourse: error: Received an invalid value for argument {message}"
    assert not out_dir.exists()  # 12: validated before the run folder is made


def test_json_files_are_strict_json(tmp_path):
    @dataclasses.dataclass
    class Result:
        loss: float = float("nan")
        best: float = -math.inf

    value = {"nan": float("nan"), "inf": np.float32("inf"), "list": [1.5, -math.inf], "array": np.array([np.nan, 2]),
             "result": Result()}
    with pytest.raises(ValueError, match="non-standard JSON constant"):
        strict_loads(json.dumps(value["list"] + [float("nan")]))  # the parser used below does refuse NaN
    files.atomic_write_json(tmp_path / "result.json", value)
    assert strict_loads((tmp_path / "result.json").read_text()) == {
        "nan": None, "inf": None, "list": [1.5, None], "array": [None, 2.0], "result": {"loss": None, "best": None}}


def test_run_folder_json_is_strict(tmp_path, capsys):
    code, out, err = kcourse(capsys, "run", "q-learning", "--quick", "--out", tmp_path)
    assert code == 0, err[-3000:]
    (run_dir,) = tmp_path.iterdir()
    for name in ("config.json", "result.json"):
        assert isinstance(strict_loads((run_dir / name).read_text()), dict)


@pytest.mark.parametrize("ex", exercises.EXERCISES, ids=lambda ex: ex.name)
def test_every_default_config_survives_its_config_json(ex):
    # a resumed run reads config.json back through check_values: the defaults must pass it
    cls = ex.config_class()
    for quick in (False, True):
        saved = strict_loads(files.to_json(cfglib.resolve(cls, quick=quick)))
        cfglib.check_values(cls, saved)
        assert cfglib.resolve(cls, quick=quick, resumed=saved) == cfglib.resolve(cls, quick=quick)


# ----------------------------------------------------------------------------------------------
# 10. Run folders started in the same second
# ----------------------------------------------------------------------------------------------


def test_make_run_dir_gives_8_runs_started_together_8_folders(tmp_path, monkeypatch):
    import datetime

    from keras_impl import runtime

    class FrozenClock(datetime.datetime):  # every run starts in the same second
        @classmethod
        def now(cls, tz=None):
            return cls(2026, 1, 1, 12, 0, 0)

    monkeypatch.setattr(runtime, "_dt", types.SimpleNamespace(datetime=FrozenClock))
    barrier = threading.Barrier(8)
    made, errors = [], []

    def start(i):
        try:
            barrier.wait()
            made.append(runtime.make_run_dir("dqn", 0, {"run": i}, root=tmp_path))
        except Exception as err:  # noqa: BLE001  (reported below)
            errors.append(err)

    threads = [threading.Thread(target=start, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(set(made)) == 8 and len(list(tmp_path.iterdir())) == 8
    assert sorted(json.loads((p / "config.json").read_text())["run"] for p in made) == list(range(8))
    assert {p.name for p in made} == {"dqn__0__20260101-120000"} | {f"dqn__0__20260101-120000-{n}" for n in range(2, 9)}


# ----------------------------------------------------------------------------------------------
# 11. solved_seconds when the target is reached at the final evaluation
# ----------------------------------------------------------------------------------------------


def test_dqn_solved_at_the_final_evaluation_counts_its_time_once(tmp_path, capsys):
    # no periodic evaluation: the final one (5 episodes, CartPole always lasts >= 8 steps) reaches the target
    code, out, err = kcourse(capsys, "run", "dqn", "--quick", "--no-gif", "--out", tmp_path,
                             "--config", "total_timesteps=1200", "--config", "eval_interval=0",
                             "--config", "eval_episodes=5", "--config", "target_return=5")
    assert code == 0, err[-3000:]
    (run_dir,) = tmp_path.iterdir()
    result = json.loads((run_dir / "result.json").read_text())
    metrics = result["metrics"]
    assert metrics["solved_step"] == metrics["env_steps"] == 1200  # solved at the final evaluation
    # The old code added this session's time twice here (25.2 s reported for 12.4 s of training).
    assert 0 < metrics["solved_seconds"] <= metrics["train_seconds"] <= result["seconds"]


# ----------------------------------------------------------------------------------------------
# 12. The smaller ones
# ----------------------------------------------------------------------------------------------


def test_kcourse_eval_checks_render_out_before_the_evaluation(tmp_path, unwritable, capsys, monkeypatch):
    from kcourse import eval_command

    def no_evaluation(*args, **kwargs):
        raise AssertionError("evaluated before --render-out was checked")

    monkeypatch.setattr(eval_command, "evaluate", no_evaluation)
    base = ["eval", "random", "--env", "cartpole", "--episodes", "2", "--render", "gif"]
    code, out, err = kcourse(capsys, *base, "--render-out", tmp_path / "episode.mp4")
    assert code == 2
    assert one_error(err) == ("kcourse: error: Received an invalid value for argument `--render-out`: expected a .gif "
                              f"file, got '{tmp_path / 'episode.mp4'}'")
    code, out, err = kcourse(capsys, *base, "--render-out", unwritable / "episode.gif")
    assert code == 2
    assert one_error(err).startswith(f"kcourse: error: cannot write the video (--render-out) {unwritable}/episode.gif")


@pytest.fixture
def saved_policy(tmp_path):
    import keras

    from agents.policy_files import save_policy

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    return save_policy(tmp_path / "policy", model, "CartPole-v1", kind="argmax")


def test_corrupt_keras_policy_is_named_not_file_not_found(saved_policy, capsys):
    model_file = saved_policy / "model.keras"
    model_file.write_bytes(model_file.read_bytes()[:200])  # truncated
    code, out, err = kcourse(capsys, "eval", saved_policy, "--episodes", "1")
    assert code == 2
    assert one_error(err) == (f"kcourse: error: saved policy {saved_policy} is corrupt: {model_file} does not match its "
                              "SHA-256 in manifest.json (truncated or modified)")
    (saved_policy / "manifest.json").unlink()  # a folder without a manifest: Keras itself finds the fault
    code, out, err = kcourse(capsys, "eval", saved_policy, "--episodes", "1")
    assert code == 2
    line = one_error(err)
    assert line.startswith(f"kcourse: error: cannot load the policy model {model_file}: it is missing or corrupt")
    assert "File not found" not in line


@pytest.mark.parametrize("content, message", [
    ("5", "is corrupt: expected a JSON object, got int 5"),
    ('["CartPole-v1"]', "is corrupt: expected a JSON object, got list"),
    ("{\"kind\": 5", "is unreadable or corrupt (Expecting"),
    ('{"kind": "argmax"}', "is missing the 'env_id' entry"),
])
def test_bad_policy_json_is_one_line(saved_policy, capsys, content, message):
    (saved_policy / "policy.json").write_text(content)
    code, out, err = kcourse(capsys, "eval", saved_policy, "--episodes", "1")
    assert code == 2
    line = one_error(err)
    assert str(saved_policy / "policy.json") in line and message in line


def test_checkpoint_and_policy_folders_get_the_umasks_mode(tmp_path):
    from keras_impl.checkpoints import CheckpointManager

    old = os.umask(0o022)
    try:
        path = CheckpointManager(tmp_path / "checkpoints", log=lambda line: None).save(
            1, lambda folder: (folder / "w.txt").write_text("1"))
        with files.atomic_directory(tmp_path / "policy") as tmp:
            (tmp / "policy.json").write_text("{}")
    finally:
        os.umask(old)
    # tempfile.mkdtemp makes 0700: the run folder would be readable by others but its checkpoints not
    for folder in (path, tmp_path / "policy", tmp_path / "checkpoints"):
        assert folder.stat().st_mode & 0o777 == 0o755, folder


def test_dqn_checkpoint_folders_have_the_run_folders_mode(dqn_run):
    run_mode = dqn_run.stat().st_mode & 0o777
    for ckpt in (dqn_run / "checkpoints").glob("ckpt-*"):
        assert ckpt.stat().st_mode & 0o777 == run_mode


def test_import_agents_registers_the_movielens_env_without_tensorflow():
    script = textwrap.dedent("""
        import sys
        import gymnasium as gym
        assert "MovieLensRecommendation-v0" not in gym.registry
        import agents
        spec = gym.registry["MovieLensRecommendation-v0"]
        print("entry point:", spec.entry_point)
        print("tensorflow imported:", "tensorflow" in sys.modules)
        import numpy as np
        from agents.movielens_env import RecTables
        n = 4
        tables = RecTables(user_ids=np.arange(n) + 1, candidate_index=np.array([0, 1, 2], "int32"),
                           candidate_ids=np.array([10, 20, 30]), titles=np.array(["A", "B", "C"]),
                           user_features=np.eye(n, 2, dtype="float32"),
                           predicted=np.full((n, 3), 3.0, "float32"), observed=np.full((n, 3), np.nan, "float32"),
                           heldout=np.full((n, 3), np.nan, "float32"), popularity=np.array([3, 2, 1]))
        env = gym.make("MovieLensRecommendation-v0", tables=tables, k=2)
        obs, info = env.reset(seed=0)
        print("made:", type(env.unwrapped).__name__, obs.shape)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "entry point: agents.movielens_env:MovieLensRecommendationEnv" in proc.stdout  # a string: nothing imported
    assert "tensorflow imported: False" in proc.stdout
    assert "made: MovieLensRecommendationEnv" in proc.stdout


# ----------------------------------------------------------------------------------------------
# A resumed run's config.json that is corrupt is named
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("content, message", [
    ("{\"env\": \"CartPole-v1\"", "is unreadable or corrupt (Expecting"),
    ("5", "is corrupt: expected a JSON object"),
    ('{"total_timesteps": -3}', "is corrupt: Received an invalid value for argument `total_timesteps`: expected >= 1"),
    ('{"hidden": "64"}', "is corrupt: Received an invalid value for argument `hidden`: expected a value of type tuple"),
    ('{"env": 5}', "is corrupt: Received an invalid value for argument `env`: expected a value of type str, got 5"),
    ('{"variant": "triple"}', "is corrupt: Received an invalid value for argument `variant`: expected one of dqn, "),
])
def test_resumed_dqn_run_with_a_corrupt_config_json_names_it(dqn_run, tmp_path, capsys, content, message):
    run_dir = tmp_path / "run"
    shutil.copytree(dqn_run, run_dir)
    (run_dir / "config.json").write_text(content)
    before = snapshot(run_dir)
    code, out, err = kcourse(capsys, "run", "dqn", "--resume", run_dir)
    assert code == 2
    line = one_error(err)
    assert f"the run's config {run_dir / 'config.json'} " in line and message in line, line
    assert snapshot(run_dir) == before


def test_resume_of_another_exercises_run_says_whose_it_is(dqn_run, tmp_path, capsys):
    run_dir = tmp_path / "dqn__0__20260101-120000"  # the name make_run_dir gives a dqn run
    shutil.copytree(dqn_run, run_dir)
    before = snapshot(run_dir)
    code, out, err = kcourse(capsys, "run", "tfa-dqn", "--resume", run_dir)
    assert code == 2  # not "config.json is corrupt": it is a healthy run of another exercise
    assert one_error(err) == (f"kcourse: error: --resume {run_dir}: a run of 'dqn', not 'tfa-dqn' (resume it with "
                              f"`kcourse run dqn --resume {run_dir}`)")
    (run_dir / "result.json").write_text(json.dumps({"exercise": "dqn"}))  # any folder name: result.json tells
    renamed = run_dir.rename(tmp_path / "my-run")
    code, out, err = kcourse(capsys, "run", "tfa-dqn", "--resume", renamed)
    assert code == 2 and "a run of 'dqn', not 'tfa-dqn'" in one_error(err)
    assert snapshot(renamed) == dict(before, **{"result.json": b'{"exercise": "dqn"}'})


# ----------------------------------------------------------------------------------------------
# kcourse eval: every numeric argument checked
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("option, value, expected", [
    ("--episodes", "0", ">= 1"),
    ("--seed", "-1", ">= 0"),  # was a gymnasium.error.Error traceback
    ("--max-steps", "0", ">= 1"),  # was accepted: every episode cut after one step
    ("--render-steps", "0", ">= 1"),  # was accepted: a one-frame video
])
def test_kcourse_eval_refuses_meaningless_numbers(tmp_path, capsys, monkeypatch, option, value, expected):
    from kcourse import eval_command

    def no_evaluation(*args, **kwargs):
        raise AssertionError("evaluated with a meaningless argument")

    monkeypatch.setattr(eval_command, "evaluate", no_evaluation)
    code, out, err = kcourse(capsys, "eval", "random", "--env", "cartpole", "--render", "gif", "--render-out",
                             tmp_path / "v.gif", option, value)
    assert code == 2
    assert one_error(err) == f"kcourse: error: Received an invalid value for argument `{option}`: expected {expected}, " \
                             f"got {int(value)}"
    assert list(tmp_path.iterdir()) == []
