"""Ranking by a lower credible bound, and the ranking metrics, against numbers worked out by hand."""
from __future__ import annotations

import keras_impl  # noqa: F401
import numpy as np
import pytest

from keras_impl import recommender as rec
from keras_impl.recommender import ease, metrics, ranking

# f(t) = 0.5 + 4.5 sigmoid(t): f(-1) = 1.710236, f(0) = 2.75, f(0.4) = 3.194094, f(0.5) = 3.301067, f(1) = 3.789764


def test_lower_bound_by_hand():
    # mean logit 0, variance 1, z = 1: f(0 - 1) = 0.5 + 4.5 * sigmoid(-1) = 0.5 + 4.5 * 0.268941 = 1.710236
    # z = 0 is the mean: f(0) = 2.75; variance 0.25 with z = 2 is again f(0 - 2 * 0.5) = f(-1).
    np.testing.assert_allclose(ranking.lower_bound([0.0, 0.0, 0.0], [1.0, 1.0, 0.25], 1.0)[:1], [1.710236], atol=1e-6)
    np.testing.assert_allclose(ranking.lower_bound(0.0, 1.0, 0.0), 2.75)
    np.testing.assert_allclose(ranking.lower_bound(0.0, 0.25, 2.0), 1.710236, atol=1e-6)
    # The slope at logit 0 is 4.5 / 4 = 1.125; MAP fallback with noise 0.75, 2 ratings, l2_bias 3:
    # 0.75 / (2 + 3) / 1.125^2 = 0.15 / 1.265625 = 0.118519
    np.testing.assert_allclose(ranking.rating_slope(0.0), 1.125)
    np.testing.assert_allclose(ranking.count_shrinkage_variance(0.0, 2, 0.75, 3.0), 0.118519, atol=1e-6)


def _variational_two_films():
    """One user, two films (D = 1, offset 0), user variances ~0.

    Film 0: q = 1,   b = 0 -> logit 1;   v_q = v_b = 2     -> Var = 2 + 2 * p^2 = 4     -> lower f(1 - 2)   = 1.710236
    Film 1: q = 0.5, b = 0 -> logit 0.5; v_q = v_b = 0.005 -> Var = 0.005 + 0.005 = 0.01 -> lower f(0.5 - 0.1) = 3.194094
    By the mean film 0 wins (3.789764 vs 3.301067); by the 84% lower bound film 1 does.
    """
    mappings = rec.IdMappings(user_ids=[7], movie_ids=[10, 20], titles=["Zero", "One"], seen_indptr=[0, 0],
                              seen_indices=[], movie_counts=[1, 40])
    model = rec.DotRecommender(1, 2, 1, l2=1.0, global_mean=2.75, variational=True, mappings=mappings)
    model.build((None, 2))
    tiny = np.log(1e-12)
    model.user_embedding.embeddings.assign(np.array([[1.0, 0.0, tiny, tiny]], "float32"))
    model.movie_embedding.embeddings.assign(np.array([[1.0, 0.0, np.log(2.0), np.log(2.0)],
                                                      [0.5, 0.0, np.log(0.005), np.log(0.005)]], "float32"))
    return model


def test_scorer_variance_and_recommend_by_hand():
    model = _variational_two_films()
    mean, var = ranking.Scorer.from_model(model).logit([0])
    np.testing.assert_allclose(mean[0], [1.0, 0.5], atol=1e-6)
    np.testing.assert_allclose(var[0], [4.0, 0.01], rtol=1e-4)
    by_mean = rec.recommend(model, 0, n=2, rank="mean", min_ratings=0)
    by_bound = rec.recommend(model, 0, n=2, rank="lower-bound", z=1.0, min_ratings=0)
    assert [r["title"] for r in by_mean] == ["Zero", "One"]
    assert [r["title"] for r in by_bound] == ["One", "Zero"]
    np.testing.assert_allclose([r["lower_bound"] for r in by_bound], [3.194094, 1.710236], atol=1e-4)
    np.testing.assert_allclose([r["rating"] for r in by_bound], [3.301067, 3.789764], atol=1e-5)
    assert [r["n_ratings"] for r in by_bound] == [40, 1]
    # the predicted rating is the mean, as predict gives it
    assert by_mean[0]["rating"] == pytest.approx(rec.predict(model, 0, 0)["rating"], abs=1e-5)
    # min_ratings 2 leaves out film 0 (1 training rating) under either ranking
    assert [r["title"] for r in rec.recommend(model, 0, n=2, rank="mean", min_ratings=2)] == ["One"]


@pytest.mark.parametrize("kwargs, message", [
    ({"rank": "median"}, r"argument `rank`: expected one of ease-rating, ease, lower-bound, mean, got 'median'"),
    ({"rank": "ease"}, r"argument `rank`: this model has no 'ease' ranking"),
    ({"min_ratings": -1}, r"argument `min_ratings`: expected an integer >= 0, got -1"),
    ({"z": -1.0}, r"argument `z`: expected a number >= 0, got -1.0"),
    ({"n": 0}, r"argument `n`: expected an integer >= 1, got 0"),
])
def test_recommend_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        rec.recommend(_variational_two_films(), 0, **kwargs)


def test_map_model_falls_back_to_count_shrinkage():
    # Point estimates: the variance is noise / (n + l2_bias) / f'^2. Two films with the same logit 0
    # (rating 2.75): the one with 1 rating gets 0.75 / 4 / 1.265625 = 0.148148, the one with 97 ratings
    # 0.75 / 100 / 1.265625 = 0.005926, so the lower bound prefers the well-rated one.
    mappings = rec.IdMappings(user_ids=[1], movie_ids=[1, 2], titles=["Rare", "Known"], seen_indptr=[0, 0],
                              seen_indices=[], movie_counts=[1, 97])
    model = rec.DotRecommender(1, 2, 1, l2=1.0, l2_bias=3.0, global_mean=2.75, noise_variance=0.75, mappings=mappings)
    model.build((None, 2))
    model.set_factors([[0.0]], [[0.0], [0.0]])
    var = ranking.Scorer.from_model(model).logit([0])[1][0]
    np.testing.assert_allclose(var, [0.148148, 0.005926], atol=1e-6)
    assert [r["title"] for r in rec.recommend(model, 0, n=2, rank="lower-bound", min_ratings=0)] == ["Known", "Rare"]


# ----------------------------------------------------------------------------------------------
# Ranking metrics on a hand-made table
# ----------------------------------------------------------------------------------------------

# 3 users, 6 films. Training: user 0 rated films 0, 1; user 1 films 0, 3; user 2 films 0, 2, 3.
# Training counts: film 0: 3, film 1: 1, film 2: 1, film 3: 2, films 4, 5: 0.
X_TRAIN = np.array([[0, 0], [0, 1], [1, 0], [1, 3], [2, 0], [2, 2], [2, 3]])
# Validation: user 0 rates film 2 a 5 (relevant) and film 4 a 2; user 1 rates films 1, 2, 5 with 4, 4.5, 4
# (all relevant); user 2 rates film 5 a 3 (no relevant film: user 2 is not evaluated).
X_VAL = np.array([[0, 2], [0, 4], [1, 1], [1, 2], [1, 5], [2, 5]])
Y_VAL = np.array([5.0, 2.0, 4.0, 4.5, 4.0, 3.0])


def _bias_scorer(biases, counts):
    """A Scorer whose films differ only by bias (D = 0): the mean ranking is by bias."""
    return ranking.Scorer(user=np.zeros((3, 1)), movie=np.asarray(biases, float)[:, None], offset=0.0,
                          user_var=None, movie_var=None, movie_counts=np.asarray(counts), noise_variance=0.75,
                          l2_bias=3.0)


def test_popularity_metrics_by_hand():
    # k = 2. User 0's candidates (not rated in training): films 2, 3, 4, 5 with counts 1, 2, 0, 0 -> top [3, 2];
    # hits [no, yes]. User 1's candidates 1, 2, 4, 5 with counts 1, 1, 0, 0 -> top [1, 2]; hits [yes, yes].
    # precision: (1/2 + 2/2) / 2 = 0.75;  recall: (1/1 + 2/3) / 2 = 0.833333
    # NDCG: user 0 DCG = 1/log2(3) = 0.630930, IDCG (1 relevant) = 1 -> 0.630930;
    #       user 1 DCG = 1 + 0.630930, IDCG (min(3, 2) = 2 relevant) = the same -> 1;  mean 0.815465
    # coverage: films {1, 2, 3} of 6 = 0.5; counts of the 4 recommendations [2, 1, 1, 1]: median 1
    # candidates: 4 films each (min_ratings 0), median 4
    scorer = _bias_scorer(np.zeros(6), [3, 1, 1, 2, 0, 0])
    report = metrics.ranking_report(scorer, X_TRAIN, X_VAL, Y_VAL, k=2, rank="popularity", min_ratings=0)
    assert report["users"] == 2
    assert report["precision"] == pytest.approx(0.75)
    assert report["recall"] == pytest.approx(0.833333, abs=1e-6)
    assert report["ndcg"] == pytest.approx(0.815465, abs=1e-6)
    assert report["coverage"] == pytest.approx(0.5) and report["median_count"] == 1.0
    assert report["candidates"] == 4.0


def test_every_ranking_draws_from_the_same_protocol_candidates_and_reports_their_count():
    # min_ratings 1: user 0's candidates are films 2, 3 (counts 1, 2), user 1's films 1, 2 (1, 1): 2 each.
    # Popularity used to skip the min_ratings filter (its lists only matched by luck); now every ranking
    # is masked alike, and a model that scores fewer films (EASE: at most EASE_MAX_ITEMS) shows fewer.
    scorer = _bias_scorer(np.zeros(6), [3, 1, 1, 2, 0, 0])
    popular = metrics.ranking_report(scorer, X_TRAIN, X_VAL, Y_VAL, k=2, rank="popularity", min_ratings=1)
    assert popular["candidates"] == 2.0 and popular["coverage"] == pytest.approx(0.5)  # films {1, 2, 3}

    def only_films_2_and_3(batch):  # a model that scores two films (like a capped EASE)
        scores = np.full((len(batch), 6), -np.inf)
        scores[:, [2, 3]] = [1.0, 2.0]
        return scores

    capped = metrics.score_report(only_films_2_and_3, X_TRAIN, X_VAL, Y_VAL, 3, 6, k=2, min_ratings=1)
    # user 0: films 2, 3 (2 candidates); user 1 rated 3 in training: film 2 only (1): median 1.5
    assert capped["candidates"] == 1.5


def test_model_metrics_and_min_ratings_by_hand():
    # Biases make film 5 (never rated in training) the best, then 4, 2, 1. By the mean with no limit:
    # user 0 top [5, 4] (no hit), user 1 top [5, 4] (film 5 is relevant at rank 0). precision (0 + 1/2) / 2 = 0.25,
    # recall (0 + 1/3) / 2 = 0.166667, NDCG (0 + 1 / 1.630930) / 2 = 0.306574; coverage 2/6; median count 0.
    scorer = _bias_scorer([0.0, 0.5, 1.0, 0.0, 2.0, 3.0], [3, 1, 1, 2, 0, 0])
    report = metrics.ranking_report(scorer, X_TRAIN, X_VAL, Y_VAL, k=2, rank="mean", min_ratings=0)
    assert (report["precision"], report["median_count"]) == (pytest.approx(0.25), 0.0)
    assert report["recall"] == pytest.approx(0.166667, abs=1e-6)
    assert report["ndcg"] == pytest.approx(0.306574, abs=1e-6)
    # min_ratings 1 removes films 4 and 5: user 0 gets [2, 3] (hit at rank 0), user 1 gets [2, 1] (two hits).
    # precision (1/2 + 1) / 2 = 0.75, recall (1 + 2/3) / 2 = 0.833333, NDCG (1 + 1) / 2 = 1.
    for rank in ("mean", "lower-bound"):
        report = metrics.ranking_report(scorer, X_TRAIN, X_VAL, Y_VAL, k=2, rank=rank, min_ratings=1)
        assert report["precision"] == pytest.approx(0.75) and report["ndcg"] == pytest.approx(1.0)
        assert report["recall"] == pytest.approx(0.833333, abs=1e-6)
    top = metrics.top_lists(scorer, X_TRAIN, np.arange(3), k=3, rank="lower-bound", min_ratings=1)
    counts = np.bincount(X_TRAIN[:, 1], minlength=6)
    assert (counts[top[top >= 0]] >= 1).all()  # never a film below min_ratings
    assert top[2].tolist() == [1, -1, -1]  # user 2 has one candidate left with a rating: the list is padded


def test_metric_functions_on_explicit_hits():
    hits = np.array([[True, False, True], [False, False, False]])
    # precision (2/3 + 0) / 2 = 0.333333; recall with 4 and 1 relevant: (2/4 + 0) / 2 = 0.25
    # NDCG user 0: DCG 1 + 1/log2(4) = 1.5, IDCG (3 of 4 relevant fit in k=3) 1 + 0.630930 + 0.5 = 2.130930 -> 0.703918
    assert metrics.precision_at_k(hits) == pytest.approx(1 / 3)
    assert metrics.recall_at_k(hits, [4, 1]) == pytest.approx(0.25)
    assert metrics.ndcg_at_k(hits, [4, 1]) == pytest.approx(0.703918 / 2, abs=1e-6)
    assert metrics.coverage(np.array([[0, 1], [1, -1]]), 4) == 0.5


def test_lower_bound_never_recommends_below_min_ratings(tmp_path):
    from keras_impl import movielens as ml, runtime

    folder = tmp_path / "tiny"
    ml.generate_synthetic(folder, ml.SyntheticSpec(n_users=60, n_movies=120, n_ratings=2000, seed=2))
    data = ml.load_course_data(folder)
    runtime.seed_everything(0)
    cfg = rec.RecommenderConfig(epochs=2, batch_size=64, jit_compile=False, steps_per_execution=8)
    model, _, _ = rec.train(data, cfg, run_dir=None, verbose_lines=False)
    counts = model.movie_counts
    assert counts.tolist() == np.bincount(data.x_train[:, 1], minlength=data.n_movies).tolist()
    for min_ratings in (1, 5, 12):
        for user in range(0, data.n_users, 7):
            top = rec.recommend(model, user, n=10, rank="lower-bound", min_ratings=min_ratings)
            assert top and all(t["n_ratings"] >= min_ratings for t in top)
            assert all(counts[t["movie_index"]] == t["n_ratings"] for t in top)
            scores = [t["score"] for t in top]
            assert scores == sorted(scores, reverse=True) and all(t["score"] == t["lower_bound"] for t in top)


# ----------------------------------------------------------------------------------------------
# EASE
# ----------------------------------------------------------------------------------------------

def test_ease_weights_by_hand():
    # X = [[1, 1], [1, 0], [0, 1]]: X^T X = [[2, 1], [1, 2]]; lambda 1 -> G = [[3, 1], [1, 3]],
    # P = G^-1 = [[3, -1], [-1, 3]] / 8; B = -P / diag(P) = -[[3, -1], [-1, 3]] / 3 -> off-diagonal 1/3, diagonal 0.
    b = ease.ease_weights(np.array([[1, 1], [1, 0], [0, 1]], "float32"), 1.0)
    np.testing.assert_allclose(b, [[0.0, 1 / 3], [1 / 3, 0.0]], atol=1e-12)


def test_ease_weights_solve_the_constrained_ridge_regression():
    # Column j of B is the ridge regression of film j's column on the *other* films' columns
    # (diag(B) = 0): B[-j, j] = (X_-j^T X_-j + lambda I)^-1 X_-j^T X_j, solved here directly.
    rng = np.random.default_rng(0)
    x = (rng.random((40, 5)) < 0.4).astype("float64")
    b = ease.ease_weights(x, 2.5)
    for j in range(5):
        others = [i for i in range(5) if i != j]
        xo = x[:, others]
        expected = np.linalg.solve(xo.T @ xo + 2.5 * np.eye(4), xo.T @ x[:, j])
        np.testing.assert_allclose(b[others, j], expected, atol=1e-10)
        assert b[j, j] == 0.0
    with pytest.raises(ValueError, match="argument `lam`: expected > 0, got 0"):
        ease.ease_weights(x, 0)


def test_ease_keeps_each_films_largest_weights():
    # keep 1 per column: column 0 keeps -5 (row 2), column 1 keeps 3 (row 0), column 2 keeps 4 (row 1)
    b = np.array([[0.0, 3.0, -1.0], [2.0, 0.0, 4.0], [-5.0, 1.0, 0.0]])
    indptr, indices, values = ease.keep_largest(b, 1)
    assert indptr.tolist() == [0, 1, 2, 3] and indices.tolist() == [2, 0, 1] and values.tolist() == [-5.0, 3.0, 4.0]
    indptr, indices, values = ease.keep_largest(b, 5)  # more than there are: all kept
    assert indptr.tolist() == [0, 3, 6, 9] and values.tolist() == b.T.reshape(-1).tolist()


def test_ease_scores_and_ranking_report_by_hand(tmp_path):
    # Films 1 and 2 have one training rating each (users 0 and 2), film 3 two, film 0 three; min_ratings 2
    # leaves films 0 and 3 in the model: x = [[1, 0], [1, 1], [1, 1]] (users x films 0, 3),
    # G = X^T X + lambda I = [[4, 2], [2, 3]] (lambda 1); with two films B = -P / diag(P) gives
    # B[i, j] = G[i, j] / G[i, i]: B[0, 3] = 2 / 4 = 0.5 (film 0 votes for film 3), B[3, 0] = 2 / 3.
    # User 0 (watched 0, 1): film 3 scores 0.5; films 1, 2, 4, 5 are not in the model.
    model = ease.fit_ease(X_TRAIN, 3, 6, lam=1.0, min_ratings=2)
    assert model.items.tolist() == [0, 3]
    np.testing.assert_allclose(model.matrix().toarray(), [[0.0, 0.5], [2 / 3, 0.0]], atol=1e-6)
    indptr, films = ease.history(X_TRAIN, 3)
    scores = model.scores(indptr, films, [0, 1])
    np.testing.assert_allclose(scores[0], [0.0, -np.inf, -np.inf, 0.5, -np.inf, -np.inf], atol=1e-6)
    # top_lists removes the watched films: user 0 gets [3], user 1 (watched 0 and 3) gets nothing;
    # neither is relevant in validation -> precision, recall, NDCG 0; coverage 1/6, median count 2.
    scorer = _bias_scorer(np.zeros(6), [3, 1, 1, 2, 0, 0])
    scorer.ease = model
    report = metrics.ranking_report(scorer, X_TRAIN, X_VAL, Y_VAL, k=2, rank="ease", min_ratings=2)
    assert (report["ndcg"], report["coverage"], report["median_count"]) == (0.0, pytest.approx(1 / 6), 2.0)
    # saved with a model and back: recommend by EASE from the user's seen films
    model_rec = _variational_two_films()
    model_rec.mappings.ease = ease.fit_ease(np.array([[0, 0], [0, 1], [0, 0]]), 1, 2, lam=1.0, min_ratings=1)
    loaded = rec.load(rec.save(model_rec, tmp_path / "m.keras"))
    assert loaded.mappings.ease.items.tolist() == [0, 1] and loaded.mappings.ease.lam == 1.0
    np.testing.assert_allclose(loaded.mappings.ease.values, model_rec.mappings.ease.values)
    # min_ratings at the fit cutoff (a lower one is refused); user 0 has seen nothing: both films score 0
    top = rec.recommend(loaded, 0, n=2, rank="ease", min_ratings=1)
    assert [t["title"] for t in top] == ["Zero", "One"] and all(t["score"] == 0.0 for t in top)
    # ease-rating (the default): EASE's equal scores standardise to 0, so the predicted rating decides:
    # 2 x 3.789764 (Zero) and 2 x 3.301067 (One)
    top = rec.recommend(loaded, 0, n=2, min_ratings=1)
    assert [t["title"] for t in top] == ["Zero", "One"]
    np.testing.assert_allclose([t["score"] for t in top], [7.579528, 6.602134], atol=1e-4)


def test_blend_by_hand():
    # Row 0: EASE scores [1, 3, -inf]: mean 2, std 1 -> z [-1, 1]; plus 2 x ratings [4, 3]: [7, 7], film 2 stays out.
    # Row 1: equal scores [2, 2, 2]: std 0 -> z 0 (no division by zero); plus 2 x [1, 2, 3] -> [2, 4, 6].
    out = ranking.blend(np.array([[1.0, 3.0, -np.inf], [2.0, 2.0, 2.0]]), np.array([[4.0, 3.0, 5.0], [1.0, 2.0, 3.0]]))
    np.testing.assert_allclose(out, [[7.0, 7.0, -np.inf], [2.0, 4.0, 6.0]])
