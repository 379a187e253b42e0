"""What a synthetic MovieLens folder knows that real data does not: the generator's true expected ratings.

:mod:`keras_impl.movielens.synthetic` writes ``synthetic_truth.npz`` (factors, biases, each row's true
and expected rating) and ``SYNTHETIC.json`` (spec, oracle MSE, the centre of the true ratings) into
every folder it generates; the functions here read them.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
from scipy.special import ndtr

TRUTH_FILE = "synthetic_truth.npz"
INFO_FILE = "SYNTHETIC.json"


def expected_rating(r_true: np.ndarray, noise: float) -> np.ndarray:
    """E[observed rating] when ``observed = clip(round_half(r_true + N(0, noise)), 0.5, 5)``.

    Half-star value ``v`` is observed when ``r_true + eps`` falls in ``[v - 0.25, v + 0.25)``,
    0.5 absorbs everything below 0.75 and 5.0 everything from 4.75 up. So
    ``E = sum_v v * (Phi((hi_v - r)/s) - Phi((lo_v - r)/s))``.
    """

    values = np.arange(1, 11) * 0.5  # 0.5 .. 5.0
    edges = np.concatenate([[-np.inf], values[:-1] + 0.25, [np.inf]])  # [11]
    r = np.asarray(r_true, dtype="float64")[..., None]
    cdf = ndtr((edges - r) / noise)  # [..., 11]
    return ((cdf[..., 1:] - cdf[..., :-1]) * values).sum(-1)


def true_expected_ratings(folder: str | os.PathLike, users: np.ndarray, films: np.ndarray,
                          chunk: int = 200) -> np.ndarray:
    """``[len(users), len(films)]`` the generator's expected observed rating of every (user, film) pair.

    ``users``/``films`` are the generator's indices (``userId - 1``; a film's place in ``movieId`` order).
    The true rating is ``rating_centre + b_u + b_m + p_u . q_m`` with the centre the generator used
    (``SYNTHETIC.json``), which with exposure is not ``spec.mean``.

    Raises:
        FileNotFoundError: not a folder written by :func:`generate_synthetic`. ValueError: one written
            before the centre was saved (regenerate it).
    """
    folder = Path(folder)
    if not (folder / TRUTH_FILE).is_file() or not (folder / INFO_FILE).is_file():
        raise FileNotFoundError(f"{folder}: no {TRUTH_FILE}/{INFO_FILE}; true ratings exist only for folders written "
                                f"by generate_synthetic")
    info = json.loads((folder / INFO_FILE).read_text())
    if not isinstance(info.get("rating_centre"), (int, float)):
        raise ValueError(f"{folder / INFO_FILE} has no rating_centre (written by an older kcourse): generate the "
                         f"folder again")
    users, films = np.asarray(users, "int64"), np.asarray(films, "int64")
    with np.load(folder / TRUTH_FILE) as truth:
        p, q = truth["user_factors"][users], truth["movie_factors"][films]
        b_user, b_movie = truth["user_bias"][users], truth["movie_bias"][films]
    out = np.empty((len(users), len(films)), dtype="float32")
    for start in range(0, len(users), chunk):  # expected_rating makes an [.., 11] array: chunks keep it small
        rows = slice(start, start + chunk)
        r_true = info["rating_centre"] + b_user[rows][:, None] + b_movie[None, :] + p[rows] @ q.T
        out[rows] = expected_rating(r_true, info["spec"]["noise"])
    return out


def oracle_mse(folder: str | os.PathLike, rows: np.ndarray, y: np.ndarray) -> float:
    """MSE of the generator's true expected rating on the given examples (the best any model can do).

    Args:
        folder: a folder written by :func:`generate_synthetic`.
        rows: ``[N]`` row numbers in its ``ratings.csv`` (``CourseData.rows_val``).
        y: ``[N]`` or ``[N, 1]`` observed ratings of those rows.
    """
    path = Path(folder) / TRUTH_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not found; oracle MSEs exist only for folders written by generate_synthetic")
    expected = np.load(path)["expected"][np.asarray(rows)]
    return float(np.mean((np.asarray(y, dtype="float64").reshape(-1) - expected) ** 2))
