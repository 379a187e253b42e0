import json
import re

import pytest

from kcourse import cli, exercises


def test_list_shows_every_exercise_with_its_reference(capsys):
    assert cli.main(["list"]) == 0
    out = capsys.readouterr().out.splitlines()
    names = [line.split()[0] for line in out]
    assert names == [ex.name for ex in exercises.EXERCISES]
    assert names[:3] == ["linreg", "recommender", "hello"]
    assert names.index("markov") < names.index("policy-gradient") < names.index("dqn") < names.index("tfa-dqn")
    assert all("| reference: " in line for line in out)


@pytest.mark.parametrize("name", list(exercises.BY_NAME))
def test_every_exercise_prints_its_help(name, capsys):
    # argparse formats help strings with %: a literal "10%" in a config help once broke --help
    with pytest.raises(SystemExit) as stop:
        cli.main(["run", name, "--help"])
    assert stop.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: kcourse run {name}") and "(default: " in out


def test_doctor_prints_one_status_line_per_check_and_exits_0(capsys):
    code = cli.main(["doctor"])
    lines = capsys.readouterr().out.splitlines()
    checks = lines[:-1]
    assert lines[-1].startswith("doctor: ") and lines[-1].endswith(" 0 failed")
    assert code == 0
    assert all(re.match(r"^(PASS|FAIL|WARN)  \S+ +\S", line) for line in checks), checks
    names = {line.split()[1] for line in checks}
    for expected in ("tensorflow", "keras", "tf-keras", "tf-agents", "tensorflow-probability", "gymnasium",
                     "ale-py", "legacy-keras", "gpu", "tf.summary", "atari-roms", "agents-package"):
        assert expected in names


@pytest.mark.parametrize("tf_version, tf_keras_version, ok", [
    ("2.21.0", "2.21.0", True),    # make venv
    ("2.20.0", "2.20.1", True),    # Colab's preinstalled stack
    ("2.20.0", "2.21.0", False),   # tf-keras must have TensorFlow's minor
    ("2.21.0", "2.20.1", False),
    ("2.19.0", "2.19.0", True),    # tf-keras matches TF, but TensorFlow itself is out of range
])
def test_doctor_accepts_tf_2_20_and_2_21_with_tf_keras_of_the_same_minor(monkeypatch, capsys, tf_version,
                                                                          tf_keras_version, ok):
    from kcourse import doctor

    real = doctor._version
    fake = {"tensorflow": tf_version, "tf-keras": tf_keras_version}
    monkeypatch.setattr(doctor, "_version", lambda dist: fake.get(dist) or real(dist))
    cli.main(["doctor"])
    lines = {line.split()[1]: line for line in capsys.readouterr().out.splitlines()[:-1]}
    tf_ok = tf_version.startswith(("2.20.", "2.21."))
    assert lines["tensorflow"].startswith("PASS" if tf_ok else "FAIL"), lines["tensorflow"]
    assert lines["tf-keras"].startswith("PASS" if ok else "FAIL"), lines["tf-keras"]
    if not ok and tf_ok:
        assert f"(expected {tf_version[:4]}.x, the minor version of tensorflow {tf_version})" in lines["tf-keras"]
    assert doctor.version_check("tf-keras", tf_keras_version, tf_version)[0] == ok


def test_doctor_flags_a_foreign_agents_package(monkeypatch, capsys, tmp_path):
    import sys
    import types

    fake = types.ModuleType("agents")
    fake.__file__ = str(tmp_path / "agents" / "__init__.py")
    monkeypatch.setitem(sys.modules, "agents", fake)
    assert cli.main(["doctor"]) == 1
    out = capsys.readouterr().out
    assert re.search(r"^FAIL  agents-package +a foreign `agents` package shadows kcourse's", out, re.M)


def test_unknown_exercise_is_one_line_exit_2(capsys):
    assert cli.main(["run", "no-such-thing"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("kcourse: error: unknown exercise 'no-such-thing'; available: linreg, recommender, ")


def test_bad_config_key_and_value_are_one_line_exit_2(capsys):
    assert cli.main(["run", "linreg", "--config", "nope=1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown config key 'nope' for LinRegConfig" in err[0]
    assert cli.main(["run", "linreg", "--config", "epochs=many"]) == 2
    assert capsys.readouterr().err.strip() == "kcourse: error: config key 'epochs' expects int, got 'many'"
    with pytest.raises(SystemExit) as exc:
        cli.main(["run", "linreg", "--strategy", "tpu"])
    assert exc.value.code == 2
    assert "argument --strategy: config key 'strategy' must be one of auto, cpu, gpu, mirrored, multi-worker; got 'tpu'" in capsys.readouterr().err


def test_run_writes_config_result_and_tensorboard_logs(tmp_path, capsys):
    code = cli.main(["run", "linreg", "--quick", "--seed", "3", "--out", str(tmp_path), "--config", "noise=0.05"])
    assert code == 0
    (run_dir,) = tmp_path.iterdir()
    assert run_dir.name.startswith("linreg__3__")
    config = json.loads((run_dir / "config.json").read_text())
    assert config["seed"] == 3 and config["noise"] == 0.05 and config["epochs"] == 5  # quick preset applied
    result = json.loads((run_dir / "result.json").read_text())
    assert result["status"] == "ok" and result["exercise"] == "linreg"
    assert abs(result["metrics"]["w"] - 3) < 0.5
    assert list((run_dir / "train").glob("events.out.tfevents.*"))
    assert (run_dir / "fit.png").is_file()
    assert "[kcourse] linreg: w=" in capsys.readouterr().out


def test_same_seed_same_result(tmp_path):
    metrics = []
    for out in ("a", "b"):
        assert cli.main(["run", "linreg", "--quick", "--seed", "5", "--out", str(tmp_path / out)]) == 0
        (run_dir,) = (tmp_path / out).iterdir()
        metrics.append(json.loads((run_dir / "result.json").read_text())["metrics"])
    assert metrics[0] == metrics[1]


def test_run_all_writes_the_report(tmp_path, capsys):
    assert cli.main(["run", "all", "--quick", "--only", "linreg", "--out", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    for noise in ("E0000", "I0000", "failed call to cuInit", "absl::InitializeLog", "XDG_RUNTIME_DIR"):
        assert noise not in captured.err + captured.out, noise
    report = (tmp_path / "report.md").read_text()
    assert "| exercise | course's target | reference (course / peer) | ours | reached? | time (s) |" in report
    row = next(line for line in report.splitlines() if line.startswith("| linreg |"))
    assert "| **reached** |" in row and "w=" in row and "w and b within 0.1 of 3 and 2" in row
    assert "![fit.png](linreg__" in report and "1 reached." in report
    html = (tmp_path / "report.html").read_text()
    assert "data:image/png;base64," in html and "class='reached'" in html
    assert cli.main(["run", "all", "--only", "linreg,bogus", "--out", str(tmp_path)]) == 2
    assert "unknown exercise(s) bogus" in capsys.readouterr().err


def test_run_all_drops_only_the_known_start_up_noise():
    from kcourse.runner import NOISE

    noise = ["WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
             "I0000 00:00:1796070070.211431   31854 port.cc:153] oneDNN custom operations are on.",
             "E0000 00:00:1796065406.485250    2408 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error",
             "error: XDG_RUNTIME_DIR is invalid or not set in the environment.",
             # TF-Agents Breakout's first uint8 op on a CPU without AVX-512 (it falls back to Eigen)
             "E0000 00:00:1796070070.2    31854 mkl_util.h:1245] oneDNN supports DT_UINT8 only on platforms with "
             "AVX-512. Falling back to the default Eigen-based implementation if present."]
    kept = ["E0000 00:00:1796065406.485250    2408 bfc_allocator.cc:12] OOM when allocating tensor",
            "kcourse: error: Received an invalid value for argument `gamma`: expected > 0, got 0.0",
            "Traceback (most recent call last):"]
    assert all(NOISE.match(line) for line in noise)
    assert not any(NOISE.match(line) for line in kept)


def test_report_says_reached_missed_or_why_not(tmp_path):
    from kcourse import report

    rows = [{"exercise": "a", "status": "ok", "reached": True, "target": "t", "headline": "h", "seconds": 1},
            {"exercise": "b", "status": "ok", "reached": False, "target": "t", "headline": "h", "seconds": 2},
            {"exercise": "c", "status": "ok", "reached": None, "headline": "h", "seconds": 3},
            {"exercise": "d", "status": "failed", "headline": "exit code 1", "seconds": 4}]
    assert [report.verdict(r) for r in rows] == ["reached", "missed", "n/a", "failed"]
    md, _ = report.write_report(rows, tmp_path, total_seconds=10)
    text = md.read_text()
    assert "1 reached, 1 missed, 1 n/a, 1 failed. Total wall time 10 s." in text
    assert "| b | t | " in text and "| **missed** |" in text


def test_stochastic_eval_checks_that_the_model_fits_before_playing(tmp_path, capsys):
    # --stochastic skipped the fit check (a probe would have used the sampling generator): a softmax model
    # that takes 8 inputs, saved for CartPole (4), failed deep inside Keras; now one line, as for greedy
    import keras

    from agents.policy_files import save_policy

    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(2)])
    folder = save_policy(tmp_path / "pol", model, "CartPole-v1", kind="softmax")
    code = cli.main(["eval", str(folder), "--stochastic", "--episodes", "2"])
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(lines) == 1, lines
    assert lines[0].startswith(f"kcourse: error: {folder}: model.keras does not accept CartPole-v1's observations "
                               f"(shape [4], as policy.json says: Box shape [4])")
