"""How close to the oracle can any recommender get on the synthetic set? Reference estimators.

    python benchmarks/recommender_floor.py                 # course-size synthetic set, ~5 minutes
    python benchmarks/recommender_floor.py --size small    # a quick look

The synthetic generator's oracle MSE is the error of the *true* expected rating: the noise alone.
A model trained on 649,335 ratings must also estimate ~16,000 biases and a rank-4 factor per user
and film, so its MSE sits above the oracle by the estimation error. This script measures that
floor with two classical estimators that are *given the true rank* (the Keras model is not), on
the same course split, and prints their validation MSE next to the oracle:

* ``als``: alternating least squares of the biased MF (the MAP estimate, L2 per row), rank ``k``;
* ``vb``: variational Bayes matrix factorisation (Lim & Teh 2007, mean-field Gaussian posteriors
  per row, the posterior covariances of the other side enter each solve), with the generator's
  true prior variances and noise: about the best a rank-k factor model can do on this data.

Both are written here with NumPy because they are references, not the course's model (the course
trains the model by gradient descent; see ``keras_impl/recommender.py``). Each user/film solve is
a small ``(k+1) x (k+1)`` linear system; the loops over rows are plain Python.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402


def factor_model(train: tuple, shape: tuple[int, int], k: int, prior_factor: float, prior_bias: float, noise: float,
                 bayes: bool, iterations: int = 12, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Fit ``r = mu + b_u + b_m + p_u . q_m`` by alternating per-row solves.

    Args:
        train: ``(users [N], movies [N], ratings [N])``.
        shape: ``(n_users, n_movies)``.
        k: rank.
        prior_factor, prior_bias: prior variances of a factor entry and of a bias.
        noise: rating noise variance (``lambda = noise / prior`` for the MAP solve).
        bayes: False: MAP (ALS); True: mean-field variational Bayes (adds the other side's
            posterior covariance to each solve and keeps this side's).

    Returns:
        ``(users [U, k+1], movies [M, k+1])``: factor means with the bias in the last column.
    """
    import scipy.sparse as sp

    users, movies, ratings = train
    mu = float(ratings.mean())
    rng = np.random.default_rng(seed)
    by_user = sp.csr_matrix((ratings, (users, movies)), shape=shape)
    by_movie = by_user.T.tocsr()
    means = [np.hstack([rng.normal(0, 0.1, (n, k)), np.zeros((n, 1))]) for n in shape]  # [n, k+1] each
    covs = [np.zeros((n, k, k)) for n in shape]  # posterior covariance of the factor part (VB only)
    prior_precision = np.diag([1 / prior_factor] * k + [1 / prior_bias])  # [k+1, k+1]
    for _ in range(iterations):
        for side, matrix in ((0, by_user), (1, by_movie)):
            other, other_cov = means[1 - side], covs[1 - side]
            for i in range(matrix.shape[0]):
                start, stop = matrix.indptr[i], matrix.indptr[i + 1]
                if start == stop:
                    continue
                j = matrix.indices[start:stop]
                features = np.hstack([other[j, :k], np.ones((stop - start, 1))])  # [n_i, k+1]: q_j and 1
                gram = features.T @ features
                if bayes:
                    gram[:k, :k] += other_cov[j].sum(axis=0)  # E[q q^T] = mean mean^T + covariance
                target = matrix.data[start:stop] - mu - other[j, k]  # minus the other side's bias
                precision = prior_precision + gram / noise
                cov = np.linalg.inv(precision)
                means[side][i] = cov @ features.T @ target / noise
                covs[side][i] = cov[:k, :k] if bayes else 0.0
    return means[0], means[1]


def predict(users_table: np.ndarray, movies_table: np.ndarray, mu: float, x: np.ndarray) -> np.ndarray:
    k = users_table.shape[1] - 1
    u, m = users_table[x[:, 0]], movies_table[x[:, 1]]
    return np.clip(mu + u[:, k] + m[:, k] + np.einsum("ij,ij->i", u[:, :k], m[:, :k]), 0.5, 5.0)


def main(argv=None) -> int:
    from keras_impl import movielens

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="course", help="synthetic size: tiny, small, course")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--ranks", default="4,8", help="ranks to fit (the generator's true rank is 4)")
    args = parser.parse_args(argv)
    folder = movielens.synthetic_folder(args.size, seed=args.seed)
    data = movielens.load_course_data(folder)
    spec = movielens.SyntheticSpec(1, 1, 1)  # the generator's defaults: priors and noise
    oracle = movielens.oracle_mse(folder, data.rows_val, data.y_val)
    y_val = data.y_val.reshape(-1).astype("float64")
    train = (data.x_train[:, 0], data.x_train[:, 1], data.y_train.reshape(-1).astype("float64"))
    mu = float(train[2].mean())
    noise = spec.noise ** 2 + 1 / 48  # Gaussian noise plus half-star rounding (uniform, width 0.5)
    prior_bias = (spec.user_bias_std ** 2 + spec.movie_bias_std ** 2) / 2
    print(f"synthetic {args.size}: train {len(train[2]):,} / val {len(y_val):,}; oracle val MSE {oracle:.4f}")
    print(f"{'estimator':<34}{'val MSE':>9}{'x oracle':>10}{'seconds':>9}")
    baseline = float(np.mean((y_val - mu) ** 2))
    print(f"{'global mean':<34}{baseline:>9.4f}{baseline / oracle:>10.3f}{0:>9.0f}")
    for k in [int(r) for r in args.ranks.split(",") if r.strip()]:
        for bayes in (False, True):
            start = time.perf_counter()
            users_table, movies_table = factor_model(train, (data.n_users, data.n_movies), k, spec.factor_std ** 2,
                                                     prior_bias, noise, bayes)
            mse = float(np.mean((predict(users_table, movies_table, mu, data.x_val) - y_val) ** 2))
            name = f"{'VB' if bayes else 'ALS (MAP)'} rank {k}, true priors"
            print(f"{name:<34}{mse:>9.4f}{mse / oracle:>10.3f}{time.perf_counter() - start:>9.0f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
