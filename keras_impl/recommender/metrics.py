"""Ranking metrics on the validation split: would a person accept the top-10?

Protocol (:func:`ranking_report`): a validation rating >= 4 counts as relevant; the users evaluated
are those with at least one relevant validation rating; each user's candidates are the films they
have not rated in training (their validation films included), and with ``min_ratings`` only films
with at least that many training ratings. Per user, the top ``k`` candidates are scored by:

* ``precision@k`` = hits / k,  ``recall@k`` = hits / relevant,
* ``NDCG@k`` = DCG / IDCG with ``DCG = sum_i hit_i / log2(i + 2)`` (rank ``i`` from 0) and IDCG the
  DCG of ``min(relevant, k)`` hits on top,

averaged over users; ``coverage`` is the share of the catalogue that appears in anybody's top
``k``, and ``median_count`` the median training-rating count of the recommended films. The
popularity baseline ranks every user's candidates by training count (most rated first).

Ratings are missing not at random (people rate what they watched, and they watch popular films),
so these metrics favour popular films; coverage and the median count show the price.
"""
from __future__ import annotations

import numpy as np

from keras_impl.movielens.course import films_by_user
from keras_impl.recommender.ranking import (DEFAULT_MIN_RATINGS, DEFAULT_Z, RANKINGS, Scorer, blend, check_rank,
    require_ease, top_n)

RELEVANT_RATING = 4.0
METRIC_NAMES = ("precision", "recall", "ndcg", "coverage", "median_count", "users")


def discount(k: int) -> np.ndarray:
    """``[k]``: ``1 / log2(i + 2)`` for ranks ``i = 0 .. k-1``."""
    return 1.0 / np.log2(np.arange(k) + 2.0)


def precision_at_k(hits: np.ndarray) -> float:
    """Mean over users of ``hits_u / k``; ``hits`` is ``[U, k]`` bool (rank ``i`` of user ``u`` is relevant)."""
    return float(np.mean(hits.sum(axis=1) / hits.shape[1]))


def recall_at_k(hits: np.ndarray, n_relevant: np.ndarray) -> float:
    """Mean over users of ``hits_u / relevant_u`` (every user has ``relevant_u >= 1``)."""
    return float(np.mean(hits.sum(axis=1) / np.asarray(n_relevant, "float64")))


def ndcg_at_k(hits: np.ndarray, n_relevant: np.ndarray) -> float:
    """Mean over users of ``DCG / IDCG`` (binary relevance; see the module docstring)."""
    k = hits.shape[1]
    weights = discount(k)
    dcg = hits.astype("float64") @ weights  # [U]
    ideal = np.cumsum(weights)[np.minimum(np.asarray(n_relevant), k) - 1]  # [U] IDCG
    return float(np.mean(dcg / ideal))


def coverage(top: np.ndarray, n_films: int) -> float:
    """Share of the ``n_films`` catalogue that appears in at least one list of ``top [U, k]``."""
    return len(np.unique(top[top >= 0])) / n_films


def relevant_sets(x_val: np.ndarray, y_val: np.ndarray, threshold: float = RELEVANT_RATING) -> dict[int, set]:
    """``{user: {films rated >= threshold in validation}}`` (users without one are left out)."""
    out: dict[int, set] = {}
    keep = np.asarray(y_val).reshape(-1) >= threshold
    for user, film in np.asarray(x_val)[keep]:
        out.setdefault(int(user), set()).add(int(film))
    return out


def summarize(top: np.ndarray, relevant: list[set], counts: np.ndarray, candidates: np.ndarray | None = None) -> dict:
    """The metrics of lists ``top [U, k]`` (-1: no film) for users with ``relevant[u]`` and film ``counts``;
    ``candidates [U]``: how many films each list was drawn from (its median is reported)."""
    hits = np.array([[film in rel for film in row] for row, rel in zip(top, relevant)], dtype=bool).reshape(top.shape)
    n_relevant = np.array([len(rel) for rel in relevant])
    shown = top[top >= 0]
    out = {"precision": precision_at_k(hits), "recall": recall_at_k(hits, n_relevant),
           "ndcg": ndcg_at_k(hits, n_relevant), "coverage": coverage(top, len(counts)),
           "median_count": float(np.median(counts[shown])) if len(shown) else 0.0, "users": int(len(top))}
    if candidates is not None:
        out["candidates"] = float(np.median(candidates)) if len(candidates) else 0.0
    return out


def ranked_lists(score_batch, x_train: np.ndarray, users: np.ndarray, n_users: int, n_movies: int, k: int = 10,
                 min_ratings: int = DEFAULT_MIN_RATINGS, chunk: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """``(top [len(users), k], candidates [len(users)])`` from ``score_batch(users [B]) -> [B, n_movies]`` scores.

    A user's candidates are the films with a finite score that they have not rated in ``x_train``
    and that have at least ``min_ratings`` training ratings; ``top`` holds the ``k`` best (-1 pads a
    list with fewer candidates), ``candidates`` how many there were. A model that scores only some
    films (EASE: at most ``EASE_MAX_ITEMS``) ranks fewer candidates than popularity does: the
    reports show the count.
    """
    x_train = np.asarray(x_train)
    counts = np.bincount(x_train[:, 1], minlength=n_movies)
    indptr, films = films_by_user(x_train[:, 0], x_train[:, 1], n_users)
    tops, sizes = [], []
    for start in range(0, len(users), chunk):
        batch = np.asarray(users[start:start + chunk], dtype="int64")
        scores = np.array(score_batch(batch), dtype="float64")  # [B, M] a copy: masked below
        scores[:, counts < min_ratings] = -np.inf
        for row, user in enumerate(batch):
            scores[row, films[indptr[user]:indptr[user + 1]]] = -np.inf
        top = top_n(scores, k)
        top[~np.isfinite(np.take_along_axis(scores, top, axis=1))] = -1  # fewer than k candidates
        tops.append(top)
        sizes.append(np.isfinite(scores).sum(axis=1))
    if not tops:
        return np.zeros((0, k), dtype="int64"), np.zeros(0, dtype="int64")
    return np.concatenate(tops), np.concatenate(sizes)


def scorer_batch(scorer: Scorer, x_train: np.ndarray, rank: str = "lower-bound", z: float = DEFAULT_Z):
    """``score_batch(users [B]) -> [B, M]`` of a ranking (:data:`RANKINGS` or ``"popularity"``) for :func:`ranked_lists`.

    ``"ease"``: the EASE model's scores from each user's training films; ``"ease-rating"``: those
    blended with the predicted rating (:func:`~keras_impl.recommender.ranking.blend`); ``"popularity"``:
    the training count (most rated first); otherwise the rating model's mean or lower bound.
    """
    check_rank(rank, RANKINGS + ("popularity",))
    x_train = np.asarray(x_train)
    counts = np.bincount(x_train[:, 1], minlength=len(scorer.movie)).astype("float64")
    indptr, films = films_by_user(x_train[:, 0], x_train[:, 1], len(scorer.user))

    def score_batch(batch):
        if rank == "popularity":
            return np.tile(counts, (len(batch), 1))
        if rank in ("ease", "ease-rating"):
            scores = require_ease(scorer.ease).scores(indptr, films, batch)
            return blend(scores, scorer.scores(batch, "mean")[0]) if rank == "ease-rating" else scores
        return scorer.scores(batch, rank, z)[1]

    return score_batch


def top_lists(scorer: Scorer, x_train: np.ndarray, users: np.ndarray, k: int = 10, rank: str = "lower-bound",
              z: float = DEFAULT_Z, min_ratings: int = DEFAULT_MIN_RATINGS, chunk: int = 256) -> np.ndarray:
    """``[len(users), k]`` top films of each user among those not rated in ``x_train`` (-1 pads a short list),
    by ``rank`` (:func:`scorer_batch`); films with fewer than ``min_ratings`` training ratings are left out."""
    score_batch = scorer_batch(scorer, x_train, rank, z)
    return ranked_lists(score_batch, x_train, users, len(scorer.user), len(scorer.movie), k, min_ratings, chunk)[0]


def ranking_report(scorer: Scorer, x_train: np.ndarray, x_val: np.ndarray, y_val: np.ndarray, k: int = 10,
                   rank: str = "lower-bound", z: float = DEFAULT_Z, min_ratings: int = DEFAULT_MIN_RATINGS) -> dict:
    """Top-``k`` metrics (:data:`METRIC_NAMES`, and the median ``candidates``) of :func:`top_lists` on a validation split."""
    return score_report(scorer_batch(scorer, x_train, rank, z), x_train, x_val, y_val, len(scorer.user),
                        len(scorer.movie), k, min_ratings)


def score_lists(score_fn, x_train: np.ndarray, users: np.ndarray, n_users: int, n_movies: int, k: int = 10,
                min_ratings: int = DEFAULT_MIN_RATINGS, chunk: int = 256) -> np.ndarray:
    """:func:`top_lists` for any model: ``score_fn(users [B]) -> [B, n_movies]`` scores (higher first)."""
    return ranked_lists(score_fn, x_train, users, n_users, n_movies, k, min_ratings, chunk)[0]


def score_report(score_fn, x_train: np.ndarray, x_val: np.ndarray, y_val: np.ndarray, n_users: int, n_movies: int,
                 k: int = 10, min_ratings: int = DEFAULT_MIN_RATINGS) -> dict:
    """:func:`ranking_report` for any ``score_fn`` (see :func:`ranked_lists`)."""
    relevant = relevant_sets(x_val, y_val)
    users = np.array(sorted(relevant), dtype="int64")
    top, candidates = ranked_lists(score_fn, x_train, users, n_users, n_movies, k, min_ratings)
    counts = np.bincount(np.asarray(x_train)[:, 1], minlength=n_movies)
    return summarize(top, [relevant[int(u)] for u in users], counts, candidates)
