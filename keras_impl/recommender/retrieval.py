"""A two-tower retrieval model trained with an in-batch softmax on what people watched (a ranking peer).

Each user and each film gets a vector; the score of film ``j`` for user ``u`` is ``u . v_j + b_j``.
A training batch is ``B`` (user, film) pairs from the training ratings (every rated film counts as
watched, whatever its rating); for row ``i`` the other rows' films are the negatives, so the
logits are ``[B, B]`` and the loss is the softmax cross-entropy with the diagonal as the label.

Two corrections make the in-batch softmax estimate the full softmax over the catalogue:

* **sampling probability** (``keras_rs.layers.SamplingProbabilityCorrection``): a film appears in a
  batch with probability ``q_j ~ B * count_j / N``, so popular films are over-represented among the
  negatives; ``logit - log q_j`` (the "logQ" correction) removes that bias;
* **accidental hits**: a film that appears twice in a batch must not be its own negative. Its
  logits are masked with ``where`` here, because keras-rs 0.4's ``RemoveAccidentalHits`` adds
  ``finfo(float32).smallest_normal / 100`` (about 1e-40) to them, which leaves float32 logits
  unchanged (keras-team/keras-rs pull request 206, open).

keras-rs needs Python >= 3.11; without it the correction is computed inline (the same formula:
``logit - log(clip(q, 1e-6, 1))``).

Measured against EASE and popularity in ``benchmarks/recommender_ranking.py`` (``docs/recommender.md``):
on ml-latest-small it beats popularity but not EASE, so it is a peer, not the default.
"""
from __future__ import annotations

import dataclasses

import keras
import numpy as np
from keras import ops

try:  # optional: keras-rs needs Python >= 3.11
    import keras_rs
except ImportError:  # pragma: no cover - exercised only on Python 3.10
    keras_rs = None


def sampling_correction(logits, probability, epsilon: float = 1e-6):
    """``logits - log(clip(probability, epsilon, 1))``: keras-rs' layer when installed, else the same formula."""
    if keras_rs is not None:
        return keras_rs.layers.SamplingProbabilityCorrection(epsilon=epsilon)(logits, probability)
    return logits - ops.log(ops.clip(probability, epsilon, 1.0))


def mask_accidental_hits(logits, items):
    """``logits [B, B]`` with ``-1e9`` where column ``j``'s film equals row ``i``'s positive film and ``i != j``."""
    same = ops.equal(ops.expand_dims(items, 1), ops.expand_dims(items, 0))  # [B, B]
    off_diagonal = ops.logical_not(ops.cast(ops.eye(ops.shape(items)[0]), "bool"))
    return ops.where(ops.logical_and(same, off_diagonal), ops.cast(-1e9, logits.dtype), logits)


class TwoTower(keras.Model):
    """User and film towers (embedding tables) with an in-batch softmax loss; ``x [B, 2]`` (user, film)."""

    def __init__(self, n_users: int, n_movies: int, log_q: np.ndarray, dim: int = 64, l2: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        init = keras.initializers.RandomNormal(stddev=0.05)
        reg = keras.regularizers.L2(l2) if l2 else None
        self.users = keras.layers.Embedding(n_users, dim, embeddings_initializer=init, embeddings_regularizer=reg)
        self.films = keras.layers.Embedding(n_movies, dim, embeddings_initializer=init, embeddings_regularizer=reg)
        self.bias = keras.layers.Embedding(n_movies, 1, embeddings_initializer="zeros")
        self.log_q = np.asarray(log_q, "float32")  # [M] log of a film's in-batch probability

    def build(self, input_shape=None):
        for layer in (self.users, self.films, self.bias):
            layer.build((None,))
        self.built = True

    def call(self, x):
        return self.users(x[:, 0]), x[:, 1]  # [B, D], [B]

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        u, items = y_pred
        logits = ops.matmul(u, ops.transpose(self.films(items))) + ops.reshape(self.bias(items), (1, -1))  # [B, B]
        q = ops.exp(ops.take(ops.convert_to_tensor(self.log_q), items))  # [B]
        logits = sampling_correction(logits, ops.broadcast_to(ops.expand_dims(q, 0), ops.shape(logits)))
        logits = mask_accidental_hits(logits, items)
        labels = ops.eye(ops.shape(items)[0])
        loss = ops.mean(keras.losses.categorical_crossentropy(labels, logits, from_logits=True))
        return loss + ops.sum(self.losses) if self.losses else loss


@dataclasses.dataclass
class TwoTowerScores:
    """The trained vectors: ``score(u, j) = user[u] . film[j] + bias[j]``."""

    user: np.ndarray
    film: np.ndarray
    bias: np.ndarray

    def scores(self, users) -> np.ndarray:
        return self.user[np.asarray(users, "int64")] @ self.film.T + self.bias[None, :]


def fit_two_tower(x_train: np.ndarray, n_users: int, n_movies: int, dim: int = 64, epochs: int = 10,
                  batch_size: int = 512, learning_rate: float = 1e-2, l2: float = 0.0, seed: int = 0) -> TwoTowerScores:
    """Train :class:`TwoTower` on the training pairs ``x_train [N, 2]``; returns its vectors."""
    import tensorflow as tf  # the input pipeline only

    keras.utils.set_random_seed(seed)
    x = np.asarray(x_train, "int32")
    counts = np.bincount(x[:, 1], minlength=n_movies)
    log_q = np.minimum(np.log(np.maximum(counts, 1) * batch_size / len(x)), 0.0)  # P(film in a batch), at most 1
    model = TwoTower(n_users, n_movies, log_q, dim=dim, l2=l2)
    model.build()
    model.compile(optimizer=keras.optimizers.Adam(learning_rate))
    ds = tf.data.Dataset.from_tensor_slices(x).shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size).map(lambda b: (b, b)).prefetch(2)
    model.fit(ds, epochs=epochs, verbose=0)
    return TwoTowerScores(np.asarray(model.users.embeddings), np.asarray(model.films.embeddings),
                          np.asarray(model.bias.embeddings)[:, 0])
