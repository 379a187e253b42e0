"""Ranking films for a person: by the predicted rating, or by a lower credible bound of it.

Ranking by the posterior mean puts films with one or two ratings on top: their estimate is their
genres' mean plus little shrinkage, and a lucky 5-star rating is enough. Ranking by a lower
credible bound asks instead "how good is this film *at least*, with probability ``Phi(z)``?", so a
film needs evidence to rank high.

The model predicts ``f(logit)`` with ``f(t) = 0.5 + 4.5 sigmoid(t)`` and ``logit = c + b_u + b_m +
p_u . q_m``. Its posterior makes the logit roughly Gaussian with

* **variational model**: the variance of the training loss, ``Var = v_bu + v_bm + sum_k (v_pk q_k^2
  + v_qk p_k^2 + v_pk v_qk)`` from the learned per-entry variances;
* **MAP model** (no variances), a documented fallback: the posterior variance of the film's bias in
  a linear-Gaussian model, ``noise_variance / (n_m + l2_bias)`` on the rating scale (``n_m``
  training ratings, prior variance ``noise_variance / l2_bias``), carried to the logit scale by
  dividing by the slope ``f'(mean)^2``: a shrinkage by count.

Because ``f`` is increasing, the ``z``-lower quantile of the rating is ``f`` of the logit's
quantile: ``lower = f(mean - z sqrt(Var))`` (exact for a Gaussian logit, no linearisation). Near
the mean it equals "mean rating minus ``z`` times the predictive std pushed through ``f``'s slope".
The variance is that of the *expected* rating (the noise of a single rating is the same for every
film and would not change the order).
"""
from __future__ import annotations

import dataclasses

import numpy as np

from keras_impl.configs import DEFAULT_MIN_RATINGS, DEFAULT_Z, RANKINGS  # noqa: F401  (re-exported)
from keras_impl.movielens import RATING_MAX, RATING_MIN
from keras_impl.recommender.ease import Ease

MODEL_RANKINGS = ("lower-bound", "mean")  # the rankings made from the rating model's scores alone
# "ease-rating": EASE's scores standardised per user plus this weight times the predicted rating.
# Chosen on a selection split of ml-latest-small's training ratings (weights 0, 0.5, 1, 2, 4: NDCG@10
# 0.1915, 0.1941, 0.1969, 0.2012, 0.1975), never on the validation split that is reported.
BLEND_WEIGHT = 2.0


def blend(ease_scores: np.ndarray, expected: np.ndarray, weight: float = BLEND_WEIGHT) -> np.ndarray:
    """``[B, M]``: each row's EASE scores standardised over its finite entries, plus ``weight`` x the predicted rating.

    EASE says what a person is likely to watch, the rating model how much they would like it;
    standardising puts every user's EASE scores on one scale (their spread differs with how many
    films the user rated). Films EASE does not score (-inf) stay out.
    """
    ease_scores = np.asarray(ease_scores, "float64")
    finite = np.isfinite(ease_scores)
    n = np.maximum(finite.sum(axis=1, keepdims=True), 1)
    safe = np.where(finite, ease_scores, 0.0)
    mean = safe.sum(axis=1, keepdims=True) / n
    std = np.sqrt((np.where(finite, safe - mean, 0.0) ** 2).sum(axis=1, keepdims=True) / n)
    z = (safe - mean) / np.where(std > 0, std, 1.0)
    return np.where(finite, z + weight * np.asarray(expected, "float64"), -np.inf)


def rating_from_logit(logit):
    """``f(t) = 0.5 + 4.5 sigmoid(t)``: the model's squashing onto the rating scale."""
    return RATING_MIN + (RATING_MAX - RATING_MIN) / (1.0 + np.exp(-np.asarray(logit, dtype="float64")))


def rating_slope(logit):
    """``f'(t) = 4.5 sigmoid(t) (1 - sigmoid(t))``."""
    s = 1.0 / (1.0 + np.exp(-np.asarray(logit, dtype="float64")))
    return (RATING_MAX - RATING_MIN) * s * (1.0 - s)


def lower_bound(logit_mean, logit_var, z: float = DEFAULT_Z):
    """The ``z``-lower credible bound of the rating, ``f(mean - z sqrt(var))`` (see the module docstring)."""
    return rating_from_logit(np.asarray(logit_mean, "float64") - z * np.sqrt(np.asarray(logit_var, "float64")))


def count_shrinkage_variance(logit_mean, counts, noise_variance: float, l2_bias: float):
    """MAP fallback: ``noise_variance / (n + l2_bias) / f'(mean)^2``, the logit variance a count implies."""
    counts = np.asarray(counts, dtype="float64")
    return noise_variance / (counts + l2_bias) / np.maximum(rating_slope(logit_mean), 1e-12) ** 2


@dataclasses.dataclass
class Scorer:
    """What ranking needs from a trained model, as NumPy arrays.

    Attributes:
        user, movie: ``[U, D + 1]`` / ``[M, D + 1]`` means ``[p, b]`` (films include their genres' part).
        offset: the constant ``c``.
        user_var, movie_var: ``[U, D + 1]`` / ``[M, D + 1]`` posterior variances (None: a MAP model).
        movie_counts: ``[M]`` training ratings per film.
        noise_variance, l2_bias: the model's, for the MAP fallback.
        ease: the EASE ranking model fitted beside the rating model (None: none saved with it).
    """

    user: np.ndarray
    movie: np.ndarray
    offset: float
    user_var: np.ndarray | None
    movie_var: np.ndarray | None
    movie_counts: np.ndarray
    noise_variance: float
    l2_bias: float
    ease: Ease | None = None

    @classmethod
    def from_model(cls, model) -> "Scorer":
        f = model.factors()
        user = np.concatenate([f["user"], f["user_bias"][:, None]], axis=1).astype("float64")
        movie = np.concatenate([f["movie"], f["movie_bias"][:, None]], axis=1).astype("float64")
        variational = "user_log_variance" in f
        return cls(user=user, movie=movie, offset=float(f["offset"]),
                   user_var=np.exp(f["user_log_variance"].astype("float64")) if variational else None,
                   movie_var=np.exp(f["movie_log_variance"].astype("float64")) if variational else None,
                   movie_counts=np.asarray(model.movie_counts), noise_variance=model.noise_variance,
                   l2_bias=model.l2_bias, ease=model.mappings.ease)

    def logit(self, users) -> tuple[np.ndarray, np.ndarray]:
        """``(mean [B, M], var [B, M])`` of the logit for users ``[B]`` and every film."""
        users = np.asarray(users, dtype="int64").reshape(-1)
        p, q = self.user[users], self.movie  # [B, D + 1], [M, D + 1]
        mean = self.offset + p[:, -1:] + q[None, :, -1] + p[:, :-1] @ q[:, :-1].T  # [B, M]
        if self.user_var is None:
            return mean, count_shrinkage_variance(mean, self.movie_counts[None, :], self.noise_variance, self.l2_bias)
        vp, vq = self.user_var[users], self.movie_var  # [B, D + 1], [M, D + 1]
        var = (vp[:, -1:] + vq[None, :, -1] + vp[:, :-1] @ (q[:, :-1] ** 2).T + (p[:, :-1] ** 2) @ vq[:, :-1].T
               + vp[:, :-1] @ vq[:, :-1].T)  # [B, M]
        return mean, var

    def scores(self, users, rank: str = "lower-bound", z: float = DEFAULT_Z) -> tuple[np.ndarray, np.ndarray]:
        """``(expected rating [B, M], ranking score [B, M])``: the score is the mean or the lower bound."""
        check_rank(rank, MODEL_RANKINGS)
        mean, var = self.logit(users)
        expected = rating_from_logit(mean)
        return expected, (expected if rank == "mean" else lower_bound(mean, var, z))


def require_ease(ease: Ease | None) -> Ease:
    """``ease``, or a ``ValueError`` saying the model has no EASE ranking (a file saved before it existed)."""
    if ease is None:
        raise ValueError("Received an invalid value for argument `rank`: this model has no 'ease' ranking (saved "
                         f"before it existed); use one of {', '.join(MODEL_RANKINGS)}, or train it again")
    return ease


def check_rank(rank: str, allowed: tuple[str, ...] = RANKINGS) -> None:
    """``ValueError`` naming ``rank`` unless it is one of ``allowed`` (the model's rankings by default)."""
    if rank not in allowed:
        raise ValueError(f"Received an invalid value for argument `rank`: expected one of {', '.join(allowed)}, "
                         f"got {rank!r}")


def top_n(scores: np.ndarray, n: int) -> np.ndarray:
    """Indices ``[B, n]`` of the ``n`` highest scores of each row, best first.

    Among the ``n`` picked, equal scores are ordered by index; which of several films tied at the
    cut is picked is up to ``argpartition`` (deterministic for the same input).
    """
    n = min(n, scores.shape[1])
    part = np.argpartition(-scores, n - 1, axis=1)[:, :n] if n < scores.shape[1] else \
        np.tile(np.arange(scores.shape[1]), (len(scores), 1))
    picked = np.take_along_axis(scores, part, axis=1)
    order = np.lexsort((part, -picked), axis=1)  # by score descending, then by index
    return np.take_along_axis(part, order, axis=1)
