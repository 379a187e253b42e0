"""The recommender's tuned constants and their evidence (issue 33, items 12-13): the selection split, the
grid script, the generator's saved centre of the true ratings."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from keras_impl import movielens as ml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))

import recommender_selection  # noqa: E402  (benchmarks/ is a folder of scripts)

EXPOSURE = dict(exposure_taste=1.5, exposure_interest=2.5, interest_rank=6, popularity_exponent=1.3,
                popularity_offset=5.0, activity_sigma=1.4)


def test_selection_split_holds_out_a_ninth_of_the_training_ratings_and_never_the_validation_ones(tmp_path):
    ml.generate_synthetic(tmp_path / "d", ml.SyntheticSpec(60, 80, 1500, seed=0))
    data = ml.load_course_data(tmp_path / "d")
    split = recommender_selection.selection_split(data)
    n = len(data.x_train)  # 1,350 (90% of 1,500): 150 held out (1/9), 1,200 fitted
    assert (len(split.x_train), len(split.x_val)) == (n - round(n / 9), round(n / 9)) == (1200, 150)
    assert sorted(np.r_[split.rows_train, split.rows_val].tolist()) == sorted(data.rows_train.tolist())
    assert not set(data.rows_val.tolist()) & set(np.r_[split.rows_train, split.rows_val].tolist())
    again = recommender_selection.selection_split(data)  # seed 1: the same split every time
    assert np.array_equal(again.rows_val, split.rows_val)


def test_ease_table_by_hand():
    grid = {(100.0, 50): 0.1, (100.0, 0): 0.2, (200.0, 50): 0.3, (200.0, 0): 0.4}
    assert recommender_selection.ease_table(grid, [100.0, 200.0], [50, 0]) == [
        "| lambda | 50 weights | dense weights |", "|---|---|---|",
        "| 100 | 0.1000 | 0.2000 |", "| 200 | 0.3000 | 0.4000 |"]


@pytest.mark.slow
def test_selection_script_prints_both_grids(tmp_path):
    out = tmp_path / "grid.json"
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "recommender_selection.py"), "--data",
                           "synthetic:small", "--quick", "--epochs", "1", "--json", str(out)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "| lambda | 200 weights |" in proc.stdout and "| EASE | weight 0 | weight 2 |" in proc.stdout
    result = json.loads(out.read_text())
    assert [row["weight"] for row in result["blend"]] == [0.0, 2.0, 0.0, 2.0] and 0 < result["ease"][0]["ndcg"] < 1


@pytest.mark.parametrize("options", [{}, EXPOSURE], ids=["no exposure", "exposure"])
def test_true_ratings_use_the_centre_the_generator_saved(tmp_path, options):
    info = ml.generate_synthetic(tmp_path / "d", ml.SyntheticSpec(60, 80, 1500, seed=2, **options))
    truth = np.load(tmp_path / "d" / ml.TRUTH_FILE)
    ratings, movies = ml.read_movielens(tmp_path / "d")
    users = ratings["userId"].to_numpy() - 1  # generator users are userId - 1, films in movieId order
    films = np.searchsorted(np.sort(movies["movieId"].to_numpy()), ratings["movieId"].to_numpy())
    table = ml.true_expected_ratings(tmp_path / "d", np.arange(60), np.arange(80))  # [60, 80]
    # every rated pair's entry is the expected rating the generator stored for that row
    np.testing.assert_allclose(table[users, films], truth["expected"], atol=1e-5)
    if options:  # with exposure the centre is not spec.mean: rebuilding from spec.mean (the old way) is off
        assert abs(info["rating_centre"] - info["spec"]["mean"]) > 0.01
    else:
        assert info["rating_centre"] == info["spec"]["mean"] == 3.5


def test_a_folder_without_the_saved_centre_is_a_one_line_error(tmp_path):
    ml.generate_synthetic(tmp_path / "d", ml.SyntheticSpec(60, 80, 1500, seed=2))
    path = tmp_path / "d" / ml.INFO_FILE
    info = json.loads(path.read_text())
    del info["rating_centre"]
    path.write_text(json.dumps(info))
    with pytest.raises(ValueError, match=r"SYNTHETIC\.json has no rating_centre \(written by an older kcourse\): "
                                         r"generate the folder again"):
        ml.true_expected_ratings(tmp_path / "d", [0], [0])
