"""Recommender: per-row dot, init, sparse Adam, tf.data pipeline, predict/recommend, save/load, CLI."""
from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import keras_impl  # noqa: F401
import numpy as np
import pytest

from kcourse import cli
from keras_impl import movielens as ml, recommender as rec, runtime

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A tiny synthetic folder (60 users, 80 films, 1,500 ratings) and its course data."""
    folder = tmp_path_factory.mktemp("ml") / "tiny"
    ml.generate_synthetic(folder, ml.SyntheticSpec(n_users=60, n_movies=80, n_ratings=1500, seed=1))
    return folder, ml.load_course_data(folder)


@pytest.fixture(scope="module")
def trained(tiny):
    folder, data = tiny
    runtime.seed_everything(0)
    cfg = rec.RecommenderConfig(epochs=3, batch_size=32, learning_rate=0.01, jit_compile=False, steps_per_execution=8)
    model, history, log = rec.train(data, cfg, run_dir=None, verbose_lines=False)
    return model, log


def make_model(p, q, b_u=None, b_m=None, global_mean=2.75):
    """A DotRecommender with hand-set weights."""
    p, q = np.asarray(p, "float32"), np.asarray(q, "float32")
    model = rec.DotRecommender(len(p), len(q), p.shape[1], l2=0.0, global_mean=global_mean)
    model.build((None, 2))
    model.set_factors(p, q, b_u, b_m)
    return model


# ----------------------------------------------------------------------------------------------
# The model's math
# ----------------------------------------------------------------------------------------------


def test_output_by_hand():
    # global_mean 2.75 is the middle of 0.5..5, so the offset is logit(0.5) = 0.
    # user 0 p=[1, 0], user 1 p=[0, 1]; film 0 q=[1, 1], film 1 q=[2, 0]; b_u=[0, 0.5], b_m=[-1, 0]
    # (0, 1): dot 2,   logit 2 + 0 + 0      = 2   -> 0.5 + 4.5 * sigmoid(2)   = 0.5 + 4.5 * 0.880797 = 4.463587
    # (1, 0): dot 1,   logit 1 + 0.5 - 1    = 0.5 -> 0.5 + 4.5 * sigmoid(0.5) = 0.5 + 4.5 * 0.622459 = 3.301067
    # (1, 1): dot 0,   logit 0 + 0.5 + 0    = 0.5 -> 3.301067
    model = make_model([[1, 0], [0, 1]], [[1, 1], [2, 0]], b_u=[0, 0.5], b_m=[-1, 0])
    out = np.asarray(model(np.array([[0, 1], [1, 0], [1, 1]], "int32")))
    assert out.shape == (3, 1)
    np.testing.assert_allclose(out[:, 0], [4.463587, 3.301067, 3.301067], atol=1e-5)


def test_dot_is_per_row():
    # A batch-summing dot (tensordot(u, m, 2)) gives every row the same sum: here rows differ.
    rng = np.random.default_rng(0)
    model = make_model(rng.normal(size=(5, 4)), rng.normal(size=(7, 4)))
    x = np.array([[0, 0], [1, 3], [4, 6], [2, 2]], "int32")
    full = np.asarray(model(x))
    np.testing.assert_allclose(np.asarray(model(x[:1])), full[:1], rtol=1e-6)
    for i in range(len(x)):  # every row on its own equals its row in the batch
        np.testing.assert_allclose(np.asarray(model(x[i:i + 1])), full[i:i + 1], rtol=1e-6)
    assert len(np.unique(np.round(full, 5))) == len(x)


def test_untrained_model_predicts_the_global_mean():
    model = rec.DotRecommender(10, 20, 16, global_mean=3.6, init_std=0.0)
    model.build((None, 2))
    np.testing.assert_allclose(np.asarray(model(np.array([[0, 0], [9, 19]], "int32"))), 3.6, rtol=1e-5)


def test_output_stays_in_rating_range():
    model = make_model([[50.0, 50.0], [-50.0, 50.0]], [[50.0, 50.0]])
    out = np.asarray(model(np.array([[0, 0], [1, 0]], "int32")))
    assert out.min() >= 0.5 and out.max() <= 5.0


def test_invalid_arguments():
    with pytest.raises(ValueError, match="n_users"):
        rec.DotRecommender(0, 5)
    with pytest.raises(ValueError, match="global_mean"):
        rec.DotRecommender(3, 5, global_mean=5.5)
    with pytest.raises(ValueError, match=r"`l2_bias`, expected >= 0, got -1"):
        rec.DotRecommender(3, 5, l2_bias=-1)
    with pytest.raises(ValueError, match=r"`l2`, expected > 0 \(the variational prior must be proper\), got 0"):
        rec.DotRecommender(3, 5, l2=0.0, variational=True)
    with pytest.raises(ValueError, match=r"`noise_variance`, expected > 0, got -0.5"):
        rec.DotRecommender(3, 5, variational=True, noise_variance=-0.5)
    with pytest.raises(ValueError, match=r"`genre_matrix`: expected shape \(5, n_genres >= 1\), got \(4, 2\)"):
        rec.DotRecommender(3, 5, genre_matrix=np.zeros((4, 2)))


def test_sparse_adam_first_step_by_hand():
    # Step 1 of Adam from zero moments: m = (1-b1) g, v = (1-b2) g^2, and with bias correction the
    # update is lr * g / (|g| + eps) ~ lr * sign(g). Rows absent from the batch do not move.
    # Row 2 appears twice with gradient 0.3 each: summed to 0.6 first, like a dense gradient.
    import tensorflow as tf

    var = keras_variable = __import__("keras").Variable(np.ones((4, 1), "float32"))
    opt = rec.SparseAdam(learning_rate=0.1)
    grad = tf.IndexedSlices(tf.constant([[0.5], [0.3], [0.3]]), tf.constant([0, 2, 2]), tf.constant([4, 1]))
    opt.apply([grad], [keras_variable])
    np.testing.assert_allclose(np.asarray(var.value)[:, 0], [1 - 0.1, 1, 1 - 0.1, 1], atol=1e-5)
    m = np.asarray(opt._momentums[0].value)[:, 0]
    np.testing.assert_allclose(m, [0.1 * 0.5, 0, 0.1 * 0.6, 0], atol=1e-6)


def test_penalty_by_hand():
    # One user p=[1, 2], b_u=1 seen twice; one film q=[3, 0], b_m=2 seen 4 times; l2=2, l2_bias=0.5.
    # user:  (2 * (1 + 4) + 0.5 * 1^2) / 2 = 10.5 / 2 = 5.25
    # film:  (2 * (9 + 0) + 0.5 * 2^2) / 4 = 20 / 4   = 5.0   -> batch mean of one row: 10.25
    model = rec.DotRecommender(1, 1, 2, l2=2.0, l2_bias=0.5, user_counts=[2], movie_counts=[4])
    model.build((None, 2))
    model.set_factors([[1, 2]], [[3, 0]], [1], [2])
    x = np.array([[0, 0]], "int32")
    model(x, training=True)
    assert float(sum(model.losses)) == pytest.approx(10.25)
    model(x, training=False)
    assert not model.losses  # no penalty outside training: Keras' val_loss is the plain MSE
    tables = model.factors()
    assert tables["user"].tolist() == [[1, 2]] and tables["movie_bias"].tolist() == [2]
    with pytest.raises(ValueError, match=r"expected shapes \(1, 2\)"):
        model.set_factors([[1, 2, 3]], [[3, 0]])


def test_genre_rows_by_hand():
    # D = 1, one user p=[1], b_u=0; offset 0 (global mean 2.75). Film 0 is half genre 0, half
    # genre 1; film 1 has no genres. Genre rows [q_g, b_g]: [1, 0.2] and [3, -0.6] -> film 0 gets
    # their mean [2, -0.2] on top of its own [0.5, 0.1]:
    #   film 0: q = 2.5, b = -0.1 -> logit 1 * 2.5 - 0.1 = 2.4 -> 0.5 + 4.5 * sigmoid(2.4) = 4.625721
    #   film 1: q = 1,   b = 0    -> logit 1               -> 0.5 + 4.5 * sigmoid(1)   = 3.789764
    # The L2 (l2 2, l2_bias 0.5, counts 1) pulls the film's *own* part to 0, the genres are the
    # prior's centre: user 2 * 1^2 = 2; film 0: 2 * 0.5^2 + 0.5 * 0.1^2 = 0.505 -> 2.505.
    model = rec.DotRecommender(1, 2, 1, l2=2.0, l2_bias=0.5, global_mean=2.75, genre_matrix=[[0.5, 0.5], [0, 0]])
    model.build((None, 2))
    model.set_factors([[1.0]], [[0.5], [1.0]], [0.0], [0.1, 0.0])
    model.genre_embedding.assign(np.array([[1.0, 0.2], [3.0, -0.6]], "float32"))
    out = np.asarray(model(np.array([[0, 0], [0, 1]], "int32")))[:, 0]
    np.testing.assert_allclose(out, [4.625721, 3.789764], atol=1e-5)
    model(np.array([[0, 0]], "int32"), training=True)
    assert float(sum(model.losses)) == pytest.approx(2.505)
    tables = model.factors()  # the films' values include their genres' part
    np.testing.assert_allclose(tables["movie"][:, 0], [2.5, 1.0])
    np.testing.assert_allclose(tables["movie_bias"], [-0.1, 0.0], atol=1e-7)
    model.set_factors([[1.0]], [[0.5], [1.0]])  # resets the genre rows: the films are then exactly `movie`
    np.testing.assert_allclose(model.factors()["movie"][:, 0], [0.5, 1.0])


def test_variational_losses_by_hand():
    # D = 1, offset 0, l2 = 2, l2_bias = 0.5, noise variance tau = 0.5, user seen twice, film 4 times.
    # Means: p = 1, b_u = 0, q = 0.5, b_m = -0.5 -> logit 0 -> prediction 2.75, slope f' = 4.5/4 = 1.125.
    # Variances: v_p = 0.1, v_bu = 0.2, v_q = 0.4, v_bm = 0.1.
    # Var[logit] = v_bu + v_bm + v_p q^2 + v_q p^2 + v_p v_q = 0.2 + 0.1 + 0.025 + 0.4 + 0.04 = 0.765
    #   expected-error term: f'^2 Var = 1.265625 * 0.765                                  = 0.968203
    # user, per row: l2 (p^2 + v_p) + l2_bias (b_u^2 + v_bu) - tau (ln v_p + ln v_bu)
    #   = 2 * 1.1 + 0.5 * 0.2 - 0.5 * (ln 0.1 + ln 0.2) = 2.3 + 1.956012 = 4.256012, / 2 = 2.128006
    # film: 2 * (0.25 + 0.4) + 0.5 * (0.25 + 0.1) - 0.5 * (ln 0.4 + ln 0.1)
    #   = 1.3 + 0.175 + 1.609438 = 3.084438, / 4                                           = 0.771110
    # total 0.968203 + 2.128006 + 0.771110                                                 = 3.867319
    model = rec.DotRecommender(1, 1, 1, l2=2.0, l2_bias=0.5, global_mean=2.75, user_counts=[2], movie_counts=[4],
                               variational=True, noise_variance=0.5)
    model.build((None, 2))
    model.user_embedding.embeddings.assign(np.array([[1.0, 0.0, np.log(0.1), np.log(0.2)]], "float32"))
    model.movie_embedding.embeddings.assign(np.array([[0.5, -0.5, np.log(0.4), np.log(0.1)]], "float32"))
    x = np.array([[0, 0]], "int32")
    assert float(np.asarray(model(x, training=True))[0, 0]) == pytest.approx(2.75)
    assert float(sum(model.losses)) == pytest.approx(3.867319, abs=1e-5)
    model(x, training=False)
    assert not model.losses
    # Inference uses the means only: other variances, same prediction.
    model.user_embedding.embeddings.assign(np.array([[1.0, 0.0, 0.0, 0.0]], "float32"))
    assert float(np.asarray(model(x))[0, 0]) == pytest.approx(2.75)
    assert set(model.factors()) >= {"user_log_variance", "movie_log_variance"}


def test_sparse_adam_step_equals_dense_adam_under_xla():
    # From zero moments one Adam step moves only rows with a gradient, so the row-sparse update
    # must equal dense Adam on the densified gradient, duplicates summed (here under XLA).
    import keras
    import tensorflow as tf

    rng = np.random.default_rng(0)
    start = rng.normal(size=(50, 3)).astype("float32")
    indices = rng.integers(0, 50, 64).astype("int32")  # 64 lookups, many rows repeated
    values = rng.normal(size=(64, 3)).astype("float32")
    dense_grad = np.zeros_like(start)
    np.add.at(dense_grad, indices, values)
    sparse_var, dense_var = keras.Variable(start), keras.Variable(start)
    sparse_opt, dense_opt = rec.SparseAdam(learning_rate=0.01), keras.optimizers.Adam(learning_rate=0.01)
    sparse_opt.build([sparse_var])
    dense_opt.build([dense_var])

    @tf.function(jit_compile=True)
    def sparse_step():
        sparse_opt.apply([tf.IndexedSlices(tf.constant(values), tf.constant(indices), tf.constant([50, 3]))],
                         [sparse_var])

    sparse_step()
    dense_opt.apply([tf.constant(dense_grad)], [dense_var])
    np.testing.assert_allclose(np.asarray(sparse_var.value), np.asarray(dense_var.value), atol=1e-6)
    untouched = np.setdiff1d(np.arange(50), indices)
    np.testing.assert_array_equal(np.asarray(sparse_var.value)[untouched], start[untouched])


# ----------------------------------------------------------------------------------------------
# Data pipeline
# ----------------------------------------------------------------------------------------------


def test_dataset_covers_each_example_once_per_epoch_and_reshuffles():
    x = np.stack([np.arange(10), np.arange(10)], 1).astype("int32")
    y = np.arange(10, dtype="float32")
    ds = rec.make_dataset(x, y, 4, shuffle=True, seed=1)
    epochs = [[b[0].numpy()[:, 0] for b in ds] for _ in range(2)]
    assert [len(b) for b in epochs[0]] == [4, 4, 2]  # last batch smaller, as DataLoader
    flat = [np.concatenate(e) for e in epochs]
    assert sorted(flat[0]) == list(range(10)) and sorted(flat[1]) == list(range(10))
    assert not np.array_equal(flat[0], flat[1])  # a new order each pass
    again = np.concatenate([b[0].numpy()[:, 0] for b in rec.make_dataset(x, y, 4, shuffle=True, seed=1)])
    assert np.array_equal(again, flat[0])  # same seed, same first epoch
    pairs = [(int(a[0, 0]), float(b[0, 0])) for a, b in rec.make_dataset(x, y, 1, shuffle=True, seed=2)]
    assert all(u == yv for u, yv in pairs)  # features stay with their labels


# ----------------------------------------------------------------------------------------------
# Training, predict, recommend, save/load
# ----------------------------------------------------------------------------------------------


def test_training_beats_the_mean(tiny, trained):
    _, data = tiny
    model, log = trained
    mean_mse = float(np.mean((data.y_val - data.y_train.mean()) ** 2))
    assert len(log.val_mse) == 3
    assert log.val_mse[-1] < 0.97 * mean_mse
    # the course line's value is the plain validation MSE of the trained model
    mse = float(np.mean((rec.predict_batch(model, data.x_val) - data.y_val.reshape(-1)) ** 2))
    assert log.val_mse[-1] == pytest.approx(mse, rel=1e-5)


def test_course_log_line(capsys):
    log = rec.CourseLog()
    log.on_epoch_end(0, {"val_mse": 0.79951, "val_loss": 1.5})
    assert capsys.readouterr().out == "epoch: 1\t val_loss: 0.7995\n"  # the MSE, not the L2-penalised loss


def test_predict_by_index_and_id(tiny, trained):
    _, data = tiny
    model, _ = trained
    by_index = rec.predict(model, 3, 5, by="index")
    by_id = rec.predict(model, int(data.user_ids[3]), int(data.movie_ids[5]), by="id")
    assert by_index == by_id
    assert by_index["title"] == data.titles[5]
    assert by_index["rating"] == pytest.approx(float(model(np.array([[3, 5]], "int32"))[0, 0]))


@pytest.mark.parametrize("user, movie, by, message", [
    (10_000, 0, "index", r"user index 10000 is out of range"),
    (0, 10_000, "index", r"movie index 10000 is out of range"),
    (999_999, 0, "id", r"userId 999999 is not in the training data"),
    ("first", 0, "id", None),
    (0, 0, "title", r"argument `by`"),
])
def test_unknown_ids_give_clear_errors(tiny, trained, user, movie, by, message):
    model, _ = trained
    if message is None:  # a known user id with an unknown film id
        _, data = tiny
        with pytest.raises(ValueError, match=r"movieId 999999 is not in the training data"):
            rec.predict(model, int(data.user_ids[0]), 999_999, by="id")
        return
    with pytest.raises(ValueError, match=message):
        rec.predict(model, user, movie, by=by)


def test_recommend_never_returns_a_seen_film(tiny, trained):
    _, data = tiny
    model, _ = trained
    for user in range(data.n_users):
        seen = set(data.frame.loc[data.frame.userId == user, "movieId"])
        for rank in ("lower-bound", "mean"):
            top = rec.recommend(model, user, n=15, rank=rank, min_ratings=0)
            assert len(top) == 15 and not seen & {t["movie_index"] for t in top}
            scores = [t["score"] for t in top]
            assert scores == sorted(scores, reverse=True)
            assert [t["rating"] for t in top] == scores if rank == "mean" else all(
                t["lower_bound"] < t["rating"] for t in top)
    # asking for more than the unseen films returns just the unseen ones (with enough ratings)
    user = 0
    unseen = set(range(data.n_movies)) - set(data.frame.loc[data.frame.userId == user, "movieId"])
    assert len(rec.recommend(model, user, n=10_000, rank="lower-bound", min_ratings=0)) == len(unseen)
    counts = np.bincount(data.x_train[:, 1], minlength=data.n_movies)
    assert len(rec.recommend(model, user, n=10_000, rank="lower-bound", min_ratings=5)) == sum(counts[m] >= 5
                                                                                               for m in unseen)


def test_save_load_round_trip(tmp_path, tiny, trained):
    _, data = tiny
    model, _ = trained
    path = rec.save(model, tmp_path / "model.keras")
    loaded = rec.load(path)
    np.testing.assert_allclose(rec.predict_batch(loaded, data.x_val), rec.predict_batch(model, data.x_val), rtol=1e-6)
    assert loaded.mappings.user_ids.tolist() == data.user_ids.tolist()
    assert loaded.mappings.titles.tolist() == data.titles.tolist()
    assert rec.recommend(loaded, 2, 5, rank="lower-bound") == rec.recommend(model, 2, 5, rank="lower-bound")
    # the default model: variational, with genre side information, both restored
    assert loaded.variational and loaded.n_genres == model.n_genres > 0
    np.testing.assert_array_equal(np.asarray(loaded.movie_genres), np.asarray(model.movie_genres))
    assert rec.predict(loaded, int(data.user_ids[1]), int(data.movie_ids[2]), by="id") == \
        rec.predict(model, int(data.user_ids[1]), int(data.movie_ids[2]), by="id")
    with pytest.raises(ValueError, match=r"\.keras"):
        rec.save(model, tmp_path / "model.h5")


def test_scatter_plot(tmp_path):
    path = rec.scatter_plot(np.array([1.0, 3.0, 5.0]), np.array([1.5, 3.0, 4.0]), tmp_path / "s.png")
    assert path.stat().st_size > 1000


# ----------------------------------------------------------------------------------------------
# The CLI
# ----------------------------------------------------------------------------------------------


def test_cli_quick_run(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("KCOURSE_CACHE", str(tmp_path / "cache"))
    code = cli.main(["run", "recommender", "--quick", "--out", str(tmp_path / "runs")])
    out = capsys.readouterr().out
    assert code == 0
    assert re.search(r"^epoch: 1\t val_loss: \d\.\d{4}$", out, re.M)
    assert re.search(r"^epoch: 3\t val_loss: \d\.\d{4}$", out, re.M)
    run_dir = next((tmp_path / "runs").iterdir())
    result = json.loads((run_dir / "result.json").read_text())
    metrics = result["metrics"]
    assert metrics["val_mse"] < 1.1 * metrics["val_mse_per_epoch"][0]
    assert metrics["oracle_val_mse"] < metrics["val_mse"]
    for artifact in result["artifacts"]:
        assert (run_dir / artifact).is_file()
    assert list((run_dir / "eval").iterdir()), "TensorBoard eval log missing"
    model = rec.load(run_dir / "checkpoints" / "recommender.keras")
    top = json.loads((run_dir / "recommendations.json").read_text())
    assert [t["title"] for t in top["top"]] == [t["title"] for t in rec.recommend(model, top["user_index"], 10)]
    assert all(t["n_ratings"] >= 5 for t in top["top"]) and re.search(r"^   1\. \d\.\d\d \(lower bound \d\.\d\d, "
                                                                       r"[\d,]+ ratings\)  ", out, re.M)
    # the ranking metrics are printed and kept, for the four rankings and popularity; --quick stays synthetic
    assert "ranking on the validation split" in out and re.search(r"^  popularity +0\.\d{4} ", out, re.M)
    ranking = metrics["ranking@10"]
    assert set(ranking) == {"ease-rating", "ease", "mean", "lower-bound", "popularity"}
    assert re.search(r"NDCG@10 0\.\d{4} \(ease-rating\) = \d+\.\d\dx popularity 0\.\d{4} \(EASE 0\.\d{4}\)",
                     result["headline"])
    assert "data auto" not in out  # the --quick preset names its data
    for row in ranking.values():
        assert 0 <= row["precision"] <= 1 and 0 <= row["ndcg"] <= 1 and 0 < row["coverage"] <= 1
        assert row["users"] > 0 and row["median_count"] >= 0


def test_cli_missing_folder(tmp_path, capsys):
    code = cli.main(["run", "recommender", "--data", str(tmp_path / "nope"), "--out", str(tmp_path / "runs")])
    assert code == 2 and "does not exist" in capsys.readouterr().err


# ----------------------------------------------------------------------------------------------
# Multi-worker: two processes on 127.0.0.1 reach the single-worker validation MSE
# ----------------------------------------------------------------------------------------------


def _free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@pytest.mark.slow
def test_multi_worker_matches_single_worker(tmp_path):
    folder = tmp_path / "small"
    ml.generate_synthetic(folder, ml.SyntheticSpec(n_users=300, n_movies=400, n_ratings=20_000, seed=2))
    args = ["--data", str(folder), "--epochs", "4", "--batch-size", "128"]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    env.pop("TF_CONFIG", None)
    single = tmp_path / "single.json"
    subprocess.run([sys.executable, "-m", "keras_impl.recommender", "worker", *args, "--strategy", "cpu",
                    "--out", str(single)], cwd=REPO, env=env, check=True, timeout=600)
    ports = _free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    procs = []
    for index in range(2):
        worker_env = dict(env, TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}}))
        procs.append(subprocess.Popen([sys.executable, "-m", "keras_impl.recommender", "worker", *args,
                                       "--out", str(tmp_path / f"worker{index}.json")], cwd=REPO, env=worker_env))
    try:
        for proc in procs:
            assert proc.wait(timeout=600) == 0
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    reference = json.loads(single.read_text())["val_mse"]
    results = [json.loads((tmp_path / f"worker{i}.json").read_text()) for i in range(2)]
    assert all(r["workers"] == 2 for r in results)
    assert results[0]["val_mse"] == pytest.approx(results[1]["val_mse"], rel=1e-5)  # replicas in sync
    assert abs(results[0]["val_mse"] / reference - 1) < 0.02


# ----------------------------------------------------------------------------------------------
# Learning regression at the course's size (slow)
# ----------------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("overrides, bound", [
    # Measured (seed 0, generator v3, whose genres explain 14% of the films' factor variance):
    # 0.7550, 0.7299, 0.7172, 0.7117, 0.7104 vs oracle 0.6408: 1.109 x. (Generator v2's genres
    # explained 59% of it and gave 1.084 x on the same ratings.) Without genres: 0.7151, 1.116 x.
    ({}, 1.115),
    # Point estimates without genres (the course's kind of model), tuned: 0.7530, 0.7332, 0.7286,
    # 0.7276, 0.7278: 1.136 x. It beats the PyTorch loop (0.7593) but not 1.10 x.
    ({"posterior": "map", "genres": False, "l2": 20.0, "embedding_dim": 32, "learning_rate": 0.005}, 1.15),
], ids=["variational-genres", "map"])
def test_course_size_learning(tmp_path, monkeypatch, overrides, bound):
    monkeypatch.setenv("KCOURSE_CACHE", str(tmp_path / "cache"))
    folder = ml.synthetic_folder("course", seed=0)
    data = ml.load_course_data(folder)
    assert (data.n_users, len(data.frame)) == (5000, 721_484)
    assert (len(data.x_train), len(data.x_val)) == (649_335, 72_149)
    runtime.seed_everything(0)
    cfg = rec.RecommenderConfig(epochs=5, batch_size=64, **overrides)
    model, _, log = rec.train(data, cfg, run_dir=None, verbose_lines=False)
    oracle = ml.oracle_mse(folder, data.rows_val, data.y_val)
    assert log.val_mse[-1] < bound * oracle
    assert log.val_mse[1] < log.val_mse[0]
    assert log.val_mse[0] < 0.80  # trains well from epoch 1 (no saturated start)


def _popularity_and_ease_ndcg(folder):
    from keras_impl.recommender import ease, metrics

    data = ml.load_course_data(folder)
    x, nu, nm = np.asarray(data.x_train), data.n_users, data.n_movies
    counts = np.bincount(x[:, 1], minlength=nm)
    popularity = metrics.score_report(lambda b: np.tile(counts, (len(b), 1)), x, data.x_val, data.y_val, nu, nm)
    model, (indptr, films) = ease.fit_ease(x, nu, nm), ease.history(x, nu)
    by_ease = metrics.score_report(lambda b: model.scores(indptr, films, b), x, data.x_val, data.y_val, nu, nm)
    return popularity["ndcg"], by_ease["ndcg"]


def test_generator_exposure_by_interest_makes_films_watched_together(tmp_path):
    # Interest factors that play no part in the ratings: films are watched in clusters, so an item
    # model (EASE) beats popularity by far more than without them; the rated pairs' mean true
    # rating is `mean` (3.5) to float precision, where taste alone used to lift it (4.2 at taste 2).
    ratios = {}
    for name, spec in (("none", ml.SyntheticSpec(300, 600, 20_000, popularity_exponent=1.0, seed=4)),
                       ("interest", ml.SyntheticSpec(300, 600, 20_000, popularity_exponent=1.0, seed=4,
                                                     exposure_interest=2.5, interest_rank=6))):
        ml.generate_synthetic(tmp_path / name, spec)
        pop, by_ease = _popularity_and_ease_ndcg(tmp_path / name)
        ratios[name] = by_ease / pop
    assert ratios["interest"] > ratios["none"] + 0.4, ratios
    spec = ml.SyntheticSpec(300, 600, 20_000, seed=4, exposure_taste=2.0)
    ml.generate_synthetic(tmp_path / "taste", spec)
    assert abs(float(np.load(tmp_path / "taste" / ml.synthetic.TRUTH_FILE)["r_true"].astype("float64").mean())
               - 3.5) < 1e-4


def test_latest_small_synthetic_set_ranks_like_the_real_one(tmp_path):
    # The calibrated size on a generator seed used neither to choose it (0) nor to check it (1-4):
    # popularity is a strong list and EASE beats it about 2x, as on ml-latest-small (NDCG@10 0.117,
    # EASE / popularity 2.19; seeds 1-4 gave 1.99-2.40).
    folder = tmp_path / "ls"
    ml.generate_synthetic(folder, "latest-small", seed=5)
    pop, by_ease = _popularity_and_ease_ndcg(folder)
    assert 0.06 < pop < 0.2 and 1.6 < by_ease / pop < 3.0, (pop, by_ease)


def test_generator_exposure_by_taste(tmp_path):
    # exposure_taste 0 is the old generator bit for bit; > 0 keeps every user's count and distinct pairs,
    # and people rate what they like: the films' mean rating rises with their rating count (log).
    frames, infos = {}, {}
    for name, spec in (("old", ml.SyntheticSpec(200, 300, 8000, seed=3)),
                       ("zero", ml.SyntheticSpec(200, 300, 8000, seed=3, exposure_taste=0.0)),
                       ("taste", ml.SyntheticSpec(200, 300, 8000, seed=3, exposure_taste=1.5))):
        infos[name] = ml.generate_synthetic(tmp_path / name, spec)
        frames[name] = ml.read_movielens(tmp_path / name)[0]
    assert frames["old"].equals(frames["zero"])
    old, taste = frames["old"], frames["taste"]
    assert len(taste) == 8000 and not taste.duplicated(["userId", "movieId"]).any()
    assert (taste.userId.value_counts().sort_index() == old.userId.value_counts().sort_index()).all()

    def corr(frame):
        counts, means = frame.movieId.value_counts(), frame.groupby("movieId").rating.mean()
        return np.corrcoef(np.log(counts[means.index]), means)[0, 1]

    assert corr(taste) > corr(old) + 0.3  # measured 0.62 vs 0.02
    assert infos["taste"]["spec"]["exposure_taste"] == 1.5
