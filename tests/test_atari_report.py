"""scripts/atari_report.py: the per-seed table, the committed-policy rule and rliable's IQM interval."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import atari_report  # noqa: E402

ANALYSIS_PYTHON = ROOT / ".venv-analysis" / "bin" / "python"


def fake_run(folder: Path, seed: int, sticky: float, atari100k: float, selection: list[float]) -> Path:
    """A finished run's JSON files as `kcourse run dqn --env breakout` writes them."""
    (folder / "checkpoints" / "ckpt-000100").mkdir(parents=True)
    reports = {p: {"mean": m, "std": 1.0, "min": m - 1, "max": m + 1, "episodes": 100, "distinct_outcomes": 90,
                   "returns": [], "lengths": []} for p, m in (("sticky", sticky), ("atari100k", atari100k))}
    (folder / "result.json").write_text(json.dumps({"metrics": {"reports": reports, "resumed_at": []},
                                                    "code": {"commit": "abc", "dirty": False}}))
    (folder / "config.json").write_text(json.dumps({"seed": seed, "env": "ALE/Breakout-v5"}))
    evals = [[10_000 * (i + 1), i, m, 0.0, 5] for i, m in enumerate(selection)]
    (folder / "checkpoints" / "ckpt-000100" / "state.json").write_text(json.dumps({"state": {"evals": evals}}))
    return folder


def five_runs(tmp_path):
    # sticky means 1, 2, 3, 4, 100: mean 22, median 3, worst 1; the IQM trims one run at each end
    # (25% of 5, rounded down) and averages 2, 3, 4 = 3.0.
    # selection scores (mean of the last 3 evaluations): seeds 0-4 -> 5, 9, 7, 7, 1; sorted by
    # (score, seed): 1 (s4), 5 (s0), 7 (s2), 7 (s3), 9 (s1); the median is the third: seed 2.
    selections = [[0, 5, 5, 5], [0, 9, 9, 9], [0, 6, 7, 8], [0, 7, 7, 7], [0, 1, 1, 1]]
    return [fake_run(tmp_path / f"dqn__{s}", s, m, m + 5, selections[s]) for s, m in enumerate([1, 2, 3, 4, 100])]


def test_rule_and_summary_by_hand(tmp_path):
    runs = [atari_report.read_run(f) for f in five_runs(tmp_path)]
    assert [r["selection_score"] for r in runs] == [5, 9, 7, 7, 1]
    assert atari_report.committed_seed(runs)["seed"] == 2


def test_a_folder_that_is_not_a_finished_run_is_one_line(tmp_path, capsys):
    assert atari_report.main([str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip() == f"atari_report: error: {tmp_path}: no result.json (not a finished run)"


def test_a_tf_agents_run_takes_its_selection_from_eval_history(tmp_path):
    # TF-Agents keeps no state.json; its eval_history.json lists the selection evaluations. The last
    # three means are 12.0, 9.0 and 12.0: the selection score is 33 / 3 = 11.0.
    folder = fake_run(tmp_path / "tfa-dqn__1", 1, 11.16, 11.4, [])
    for state in (folder / "checkpoints").glob("*/state.json"):
        state.unlink()
    (folder / "eval_history.json").write_text(json.dumps(
        [{"env_steps": 10_000 * (i + 1), "train_avg_return": 0.0, "eval_mean": m} for i, m in enumerate([4.2, 12.0, 9.0, 12.0])]))
    assert atari_report.read_run(folder)["selection_score"] == 11.0


def test_one_run_prints_no_interval_over_runs(tmp_path):
    # rliable's bootstrap over a single run resamples that one value: [412.45, 412.45], which reads as
    # certainty. One run (SpaceInvaders seed 0) gets its mean and a pointer to the interval over games.
    run = atari_report.read_run(fake_run(tmp_path / "dqn__0", 0, 412.45, 399.15, [1, 2, 3]))
    text, summary = atari_report.table([run], reps=10)
    assert summary["sticky"]["iqm"] == 412.45 and summary["sticky"]["iqm_low"] is None
    assert ("| **IQM [95% CI]** | 412.45 (one run: no interval over runs; `kcourse eval` gives one over games) | "
            "399.15 (one run") in text


@pytest.mark.slow
def test_iqm_and_its_interval_come_from_rliable(tmp_path):
    if not ANALYSIS_PYTHON.is_file():
        pytest.fail("the analysis venv is missing: `make analysis` (make test-slow builds it)")
    out = tmp_path / "table.json"
    done = subprocess.run([str(ANALYSIS_PYTHON), str(ROOT / "scripts" / "atari_report.py"),
                           *map(str, five_runs(tmp_path)), "--reps", "2000", "--json", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    summary = json.loads(out.read_text())["summary"]
    sticky = summary["sticky"]
    assert (sticky["mean"], sticky["median"], sticky["worst"], sticky["iqm"]) == (22.0, 3.0, 1.0, 3.0)
    assert 1.0 <= sticky["iqm_low"] <= 3.0 <= sticky["iqm_high"] <= 100.0 and sticky["iqm_low"] < sticky["iqm_high"]
    assert summary["atari100k"]["iqm"] == 8.0 and summary["committed_seed"] == 2
    assert "| **IQM [95% CI]** | 3.00 [" in done.stdout


def test_human_normalised_scores_by_hand():
    # Breakout: (17.38 - 1.7) / (30.5 - 1.7) = 15.68 / 28.8 = 0.544444...
    assert atari_report.human_normalised(17.38, "Breakout") == pytest.approx(0.5444444, abs=1e-6)
    # Pong: DER's -19.3 -> (-19.3 + 20.7) / (14.6 + 20.7) = 1.4 / 35.3 = 0.0396601...
    assert atari_report.human_normalised(-19.3, "Pong") == pytest.approx(0.0396601, abs=1e-6)
    # SpaceInvaders: random play's own 148 -> 0; the human's 1668.7 -> 1
    assert atari_report.human_normalised(148.0, "SpaceInvaders") == 0.0
    assert atari_report.human_normalised(1668.7, "SpaceInvaders") == pytest.approx(1.0)
    assert atari_report.human_normalised(5.0, "Tetris") is None
    assert atari_report.game_of("ALE/SpaceInvaders-v5") == "SpaceInvaders"


def test_runs_of_two_games_are_refused_in_one_line(tmp_path, capsys):
    a = fake_run(tmp_path / "a", 0, 10, 12, [1, 1, 1])
    b = fake_run(tmp_path / "b", 1, 10, 12, [1, 1, 1])
    (b / "config.json").write_text(json.dumps({"seed": 1, "env": "ALE/Pong-v5"}))
    assert atari_report.main([str(a), str(b), "--reps", "10"]) == 2
    assert capsys.readouterr().err.strip() == \
        "atari_report: error: the runs are of 2 games (Breakout, Pong); give one game's runs at a time"
