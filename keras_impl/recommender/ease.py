"""EASE (Steck 2019, "Embarrassingly Shallow Autoencoders for Sparse Data"): a closed-form linear item model.

A person's score for film ``j`` is ``sum_{i watched} B[i, j]``: the films they watched vote for
the films that are watched with them. ``B`` minimises ``|X - X B|^2 + lambda |B|^2`` subject to
``diag(B) = 0`` (a film may not vote for itself), with ``X [users, films]`` the 0/1 "rated in
training" matrix. The solution is closed form: ``P = (X^T X + lambda I)^-1``, ``B = -P / diag(P)``
(column ``j`` divided by ``P[j, j]``), ``diag(B) = 0``.

Hand-written (about ten lines of NumPy) rather than taken from a library: no maintained Python
package ships EASE, and the closed form is the whole method.

Two choices keep it small enough to save with the recommender:

* only films with at least ``min_ratings`` training ratings take part (they are the only
  candidates of the ranking protocol; rarer films neither vote nor get votes), and at most
  ``max_items`` of them (the most rated), so the inverse is ``K x K`` with ``K`` the number of such
  films (3,206 on ml-latest-small; the synthetic course set is capped at 4,000);
* each film keeps its ``neighbours`` largest weights ``|B[i, j]|`` (a sparse ``B``, saved as CSC
  arrays), so a saved model grows with ``K * neighbours``, not ``K^2``.

``lambda`` and ``neighbours`` were chosen on a selection split carved out of ml-latest-small's
*training* ratings (``docs/recommender.md``), never on the validation split that is reported.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from keras_impl.movielens.course import films_by_user

EASE_LAMBDA = 200.0  # L2 strength (Steck's lambda), chosen on a selection split of the training ratings
EASE_NEIGHBOURS = 200  # weights kept per film (sparse B); dense B ranked 0.3% better on the selection split
EASE_MAX_ITEMS = 4000  # at most this many films (the most rated): the inverse costs K^3, memory K^2


def ease_weights(x: np.ndarray, lam: float) -> np.ndarray:
    """Dense ``B [K, K]`` of the 0/1 matrix ``x [users, K]``: ``P = (x^T x + lam I)^-1``, ``B = -P / diag(P)``, ``diag(B) = 0``."""
    if not lam > 0:
        raise ValueError(f"Received an invalid value for argument `lam`: expected > 0, got {lam!r}")
    gram = x.T.astype("float64") @ x.astype("float64")  # [K, K] co-occurrence counts
    gram[np.diag_indices_from(gram)] += lam
    p = np.linalg.inv(gram)
    b = -p / np.diag(p)[None, :]  # column j divided by P[j, j]
    b[np.diag_indices_from(b)] = 0.0
    return b


def keep_largest(b: np.ndarray, neighbours: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CSC arrays ``(indptr [K + 1], indices, values)`` of ``b [K, K]`` keeping each column's ``neighbours`` largest ``|b|``."""
    k = b.shape[0]
    keep = min(neighbours, k)
    rows = np.argpartition(-np.abs(b), keep - 1, axis=0)[:keep] if keep < k else np.tile(np.arange(k)[:, None], (1, k))
    rows = np.sort(rows, axis=0)  # [keep, K] row indices of each column
    values = np.take_along_axis(b, rows, axis=0)  # [keep, K]
    indptr = np.arange(k + 1, dtype="int64") * keep
    return indptr, rows.T.reshape(-1).astype("int32"), values.T.reshape(-1).astype("float32")


@dataclasses.dataclass
class Ease:
    """A fitted EASE model over ``items`` (film indices); ``B`` as CSC arrays over those items."""

    items: np.ndarray  # [K] film indices taking part
    indptr: np.ndarray  # [K + 1]
    indices: np.ndarray  # row (voting item) positions in 0..K-1
    values: np.ndarray
    n_movies: int
    lam: float = EASE_LAMBDA
    min_ratings: int | None = None  # the fit's cutoff: rarer films have no score (None: a file saved before it was)

    def matrix(self):
        """``B`` as a ``scipy.sparse.csc_matrix [K, K]``."""
        import scipy.sparse  # a dependency of scikit-learn, imported where used

        k = len(self.items)
        return scipy.sparse.csc_matrix((self.values, self.indices, self.indptr), shape=(k, k))

    def scores(self, indptr: np.ndarray, films: np.ndarray, users) -> np.ndarray:
        """``[len(users), n_movies]`` scores from the users' watched films (CSR ``indptr``/``films``); -inf off the items."""
        position = np.full(self.n_movies, -1, dtype="int64")
        position[self.items] = np.arange(len(self.items))
        users = np.asarray(users, dtype="int64").reshape(-1)
        x = np.zeros((len(users), len(self.items)), dtype="float32")  # [B, K] 0/1 history on the items
        for row, user in enumerate(users):
            pos = position[films[indptr[user]:indptr[user + 1]]]
            x[row, pos[pos >= 0]] = 1.0
        out = np.full((len(users), self.n_movies), -np.inf)
        out[:, self.items] = np.asarray((self.matrix().T @ x.T).T)  # [B, K] = x @ B
        return out

    def arrays(self) -> dict[str, np.ndarray]:
        """The arrays saved with a model (``IdMappings``)."""
        out = {"ease_items": self.items, "ease_indptr": self.indptr, "ease_indices": self.indices,
               "ease_values": self.values, "ease_lambda": np.float64(self.lam)}
        if self.min_ratings is not None:
            out["ease_min_ratings"] = np.int64(self.min_ratings)
        return out

    @classmethod
    def from_arrays(cls, arrays, n_movies: int) -> "Ease | None":
        """The model saved by :meth:`arrays`, or None when ``arrays`` has none (older files)."""
        if "ease_items" not in arrays:
            return None
        return cls(items=np.asarray(arrays["ease_items"]), indptr=np.asarray(arrays["ease_indptr"]),
                   indices=np.asarray(arrays["ease_indices"]), values=np.asarray(arrays["ease_values"]),
                   n_movies=int(n_movies), lam=float(arrays["ease_lambda"]),
                   min_ratings=int(arrays["ease_min_ratings"]) if "ease_min_ratings" in arrays else None)

    def check_min_ratings(self, min_ratings: int, rank: str) -> None:
        """Refuse a ``min_ratings`` below the fit's cutoff: it would silently act as the cutoff.

        Raises:
            ValueError: one line naming ``min_ratings``, the cutoff and ``rank``.
        """
        if self.min_ratings is not None and min_ratings < self.min_ratings:
            raise ValueError(f"Received an invalid value for argument `min_ratings`: expected >= {self.min_ratings} "
                             f"with rank {rank!r} (EASE was fitted on films with at least {self.min_ratings} training "
                             f"ratings; rarer films have no EASE score), got {min_ratings}")


def fit_ease(x_train: np.ndarray, n_users: int, n_movies: int, lam: float = EASE_LAMBDA, min_ratings: int = 5,
             neighbours: int = EASE_NEIGHBOURS, max_items: int = EASE_MAX_ITEMS) -> Ease:
    """EASE on the training pairs ``x_train [N, 2]`` (user, film), over films with ``>= min_ratings`` of them."""
    x_train = np.asarray(x_train)
    counts = np.bincount(x_train[:, 1], minlength=n_movies)
    cutoff = max(min_ratings, 1)
    items = np.flatnonzero(counts >= cutoff)
    if len(items) > max_items:  # the most rated; ties by index
        items = np.sort(items[np.argsort(-counts[items], kind="stable")[:max_items]])
    position = np.full(n_movies, -1, dtype="int64")
    position[items] = np.arange(len(items))
    x = np.zeros((n_users, len(items)), dtype="float32")
    pos = position[x_train[:, 1]]
    x[x_train[pos >= 0, 0], pos[pos >= 0]] = 1.0
    if not len(items):
        return Ease(items, np.zeros(1, "int64"), np.zeros(0, "int32"), np.zeros(0, "float32"), n_movies, lam, cutoff)
    indptr, indices, values = keep_largest(ease_weights(x, lam), neighbours)
    return Ease(items, indptr, indices, values, n_movies, lam, cutoff)


def history(x_train: np.ndarray, n_users: int) -> tuple[np.ndarray, np.ndarray]:
    """Each user's training films as CSR ``(indptr, films)``."""
    x_train = np.asarray(x_train)
    return films_by_user(x_train[:, 0], x_train[:, 1], n_users)
