"""Using a trained recommender: predict, recommend, batch predictions, the scatter plot, save and load."""
from __future__ import annotations

import os
from pathlib import Path

import keras
import numpy as np
from matplotlib.figure import Figure

from keras_impl.movielens import course_index
from keras_impl.recommender.model import DotRecommender, IdMappings
from keras_impl.recommender.ranking import (DEFAULT_MIN_RATINGS, DEFAULT_Z, RANKINGS, Scorer, blend, check_rank,
    lower_bound, rating_from_logit, require_ease)


def predict(model: DotRecommender, user, movie, by: str = "index") -> dict:
    """Predicted rating of one film for one user (the posterior mean: no credible bound here).

    Args:
        user, movie: course indices (``by="index"``) or MovieLens ``userId``/``movieId`` (``by="id"``).

    Returns:
        ``{"rating", "user_index", "user_id", "movie_index", "movie_id", "title", "n_ratings"}``
        (``n_ratings``: the film's training ratings).

    Raises:
        ValueError: an id or index the model does not know.
    """
    maps = model.mappings
    u = course_index(user, maps.user_ids, by, "user", "user")
    m = course_index(movie, maps.movie_ids, by, "movie", "movie")
    rating = float(model(np.array([[u, m]], dtype="int32"))[0, 0])
    return {"rating": rating, "user_index": u, "user_id": int(maps.user_ids[u]), "movie_index": m,
            "movie_id": int(maps.movie_ids[m]), "title": str(maps.titles[m]), "n_ratings": int(model.movie_counts[m])}


def recommend(model: DotRecommender, user, n: int = 10, by: str = "index", rank: str = RANKINGS[0],
              z: float = DEFAULT_Z, min_ratings: int = DEFAULT_MIN_RATINGS) -> list[dict]:
    """The ``n`` best films for ``user`` among those they have not rated (:mod:`~keras_impl.recommender.ranking`).

    Args:
        user: a course index (``by="index"``) or a MovieLens ``userId`` (``by="id"``).
        n: how many films (fewer when fewer are left).
        rank: ``"ease-rating"`` (default): EASE's scores blended with the predicted rating
            (:func:`~keras_impl.recommender.ranking.blend`; it ranks best on real MovieLens);
            ``"ease"``: by the EASE item model saved with the model, from every film the user rated
            (:mod:`~keras_impl.recommender.ease`);
            ``"lower-bound"``: by the ``z``-lower credible bound of the rating, so a film needs
            evidence to rank high; ``"mean"``: by the predicted rating.
        z: the bound's width in posterior standard deviations (1: an 84% bound).
        min_ratings: films with fewer training ratings are never recommended (0: no limit).

    Returns:
        Dicts ``{"movie_index", "movie_id", "title", "rating", "lower_bound", "score", "n_ratings"}``,
        best first: ``rating`` is the predicted rating (as :func:`predict`), ``score`` the ranking key,
        ``n_ratings`` the film's training ratings.

    Raises:
        ValueError: an unknown user, or a bad ``n``, ``rank``, ``z`` or ``min_ratings`` (``"ease"``
            with a model saved before EASE was; with ``"ease"``/``"ease-rating"``, a ``min_ratings``
            below the cutoff EASE was fitted with).
    """
    for name, value, low in (("n", n, 1), ("min_ratings", min_ratings, 0)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise ValueError(f"Received an invalid value for argument `{name}`: expected an integer >= {low}, got {value!r}")
    if isinstance(z, bool) or not isinstance(z, (int, float, np.number)) or not 0 <= float(z) < float("inf"):
        raise ValueError(f"Received an invalid value for argument `z`: expected a number >= 0, got {z!r}")
    check_rank(rank)
    maps = model.mappings
    u = course_index(user, maps.user_ids, by, "user", "user")
    scorer = Scorer.from_model(model)
    mean, var = scorer.logit([u])  # [1, M] each: every film in one go, not a per-film loop
    expected, bound = rating_from_logit(mean[0]), lower_bound(mean[0], var[0], z)
    if rank in ("ease", "ease-rating"):
        require_ease(maps.ease).check_min_ratings(min_ratings, rank)
        seen = maps.seen(u)
        scores = maps.ease.scores(np.array([0, len(seen)]), seen, [0])[0]
        if rank == "ease-rating":
            scores = blend(scores[None, :], expected[None, :])[0]
    else:
        scores = (expected if rank == "mean" else bound).copy()
    counts = model.movie_counts
    scores[maps.seen(u)] = -np.inf
    scores[counts < min_ratings] = -np.inf
    best = np.argsort(-scores, kind="stable")[: min(n, int(np.isfinite(scores).sum()))]
    return [{"movie_index": int(m), "movie_id": int(maps.movie_ids[m]), "title": str(maps.titles[m]),
             "rating": float(expected[m]), "lower_bound": float(bound[m]), "score": float(scores[m]),
             "n_ratings": int(counts[m])} for m in best]


def predict_batch(model: DotRecommender, x: np.ndarray, batch_size: int = 65536) -> np.ndarray:
    """Predictions ``[N]`` for ``x [N, 2]`` course indices, in large batches."""
    out = [np.asarray(model(x[i: i + batch_size])).reshape(-1) for i in range(0, len(x), batch_size)]
    return np.concatenate(out) if out else np.zeros(0, dtype="float32")


def scatter_plot(y_true: np.ndarray, y_pred: np.ndarray, path: Path, title: str = "") -> Path:
    """The course's ``plt.plot(y_val, yhat, '.', alpha=...)``, with jitter to show the half stars."""
    y_true, y_pred = np.asarray(y_true).reshape(-1), np.asarray(y_pred).reshape(-1)
    rng = np.random.default_rng(0)
    fig = Figure(figsize=(5, 4.5))
    ax = fig.subplots()
    jitter = rng.uniform(-0.12, 0.12, len(y_true))
    ax.plot(y_true + jitter, y_pred, ".", alpha=max(0.002, min(0.3, 300 / len(y_true))))
    means = [np.mean(y_pred[y_true == v]) if np.any(y_true == v) else np.nan for v in np.arange(1, 11) * 0.5]
    ax.plot(np.arange(1, 11) * 0.5, means, "r-o", label="mean prediction")
    ax.plot([0.5, 5], [0.5, 5], "k--", lw=0.8, label="y = x")
    ax.set(xlabel="true rating (jittered)", ylabel="predicted rating", xlim=(0.2, 5.3), ylim=(0.3, 5.2), title=title)
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    return Path(path)


def save(model: DotRecommender, path: str | os.PathLike) -> Path:
    """Save to a ``.keras`` file (weights, config, id/title mappings, seen films)."""
    path = Path(path)
    if path.suffix != ".keras":
        raise ValueError(f"Received an invalid value for argument `path`, expected a name ending in .keras, got {str(path)!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    model.save(path)
    return path


def load(path: str | os.PathLike) -> DotRecommender:
    """Load a model written by :func:`save` (Keras' safe mode: no code from the file runs).

    Raises:
        FileNotFoundError: no such file. ValueError: the file is not a readable recommender.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such model file")
    try:
        model = keras.models.load_model(path, custom_objects={"DotRecommender": DotRecommender,
                                                              "IdMappings": IdMappings}, safe_mode=True)
    except Exception as err:  # Keras reports a corrupt zip as "File not found": say what it is
        raise ValueError(f"{path} is not a readable .keras recommender (corrupt or another kind of file): "
                         f"{type(err).__name__}") from None
    if not isinstance(model, DotRecommender):
        raise ValueError(f"{path} holds a {type(model).__name__}, not a recommender saved by kcourse")
    return model
