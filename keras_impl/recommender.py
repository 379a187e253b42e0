"""MovieLens recommender in Keras 3: the exam's part 1 (``shared/seeds/dl2024-final-exam.txt``).

The model is a biased matrix factorisation::

    rating(u, m) = 0.5 + 4.5 * sigmoid(c + b_u + b_m + p_u . q_m)

with one row ``[p_u, b_u]`` / ``[q_m, b_m]`` per user/film (factors and bias in one table, so a
batch reads and updates two tables, not four), and a constant ``c`` started at the
logit of the training mean, so the very first prediction is the global mean rating (an N(0, 1)
init with ``5 * sigmoid`` starts saturated and stays at MSE 4.4: SPEC section 1). The dot product
is taken per row (``ops.sum(u * m, axis=1, keepdims=True)``; ``tensordot(u, m, 2)`` would sum over
the batch and still pass a shape test). L2 regularisation applies to the rows used in each batch.

Training is ``model.fit`` on a ``tf.data`` pipeline with the course's batch size 64 and Adam;
after each epoch the validation MSE is printed in the course's format (``epoch: 1\t val_loss:
0.7995``) and logged to TensorBoard. The trained model answers ``predict`` and ``recommend``
(unseen films only) by original MovieLens ids or course indices, and saves to one ``.keras``
file that carries the id/title mappings and each user's seen films.

Run it: ``kcourse run recommender [--data DIR | --data synthetic] [--epochs 5] [--batch-size 64]
[--strategy auto|mirrored|multi-worker]``. Multi-worker training runs one process per worker
with ``TF_CONFIG`` set: ``python -m keras_impl.recommender worker --data DIR --out result.json``.
"""
from __future__ import annotations

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # before TensorFlow: TF-Agents shares the process

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras import ops  # noqa: E402

from keras_impl import movielens, runtime  # noqa: E402
from keras_impl.config import arg  # noqa: E402
from keras_impl.registry import exercise  # noqa: E402

RATING_MIN, RATING_MAX = movielens.RATING_MIN, movielens.RATING_MAX
COURSE_VAL_MSE = (0.7995, 0.7595, 0.7444, 0.7383, 0.7334)  # the exam's printed val_loss, epochs 1-5
COURSE_QUESTION = (2303, 49)  # user index 2303, movie index 49 "Usual Suspects, The (1995)" (ml-20m)


@dataclasses.dataclass
class RecommenderConfig:
    data: str = arg("synthetic", "MovieLens folder (ratings.csv + movies.csv: ml-20m, ml-25m, ml-32m, "
                                 "ml-latest-small) or 'synthetic'")
    synthetic_size: str = arg("course", "size of the synthetic set with --data synthetic",
                              choices=tuple(movielens.SYNTHETIC_SIZES))
    merge_order: str = arg("pre-2.2", "row order of pd.merge: the course's (pandas < 2.2) or this pandas'",
                           choices=movielens.MERGE_ORDERS)
    users: int = arg(movielens.COURSE_USERS, "users sampled by the course preprocessing (all when fewer)")
    epochs: int = arg(5, "training epochs (course: 5)")
    batch_size: int = arg(64, "batch size (course: 64)")
    learning_rate: float = arg(1e-2, "initial Adam learning rate (the course used Adam's default 0.001 with dense Adam)")
    lr_decay: bool = arg(True, "cosine-decay the learning rate to 10% of its start over the run")
    optimizer: str = arg("sparse-adam", "Adam updating only the rows a batch uses (= torch.optim.SparseAdam), "
                                        "or dense Adam as in the course", choices=("sparse-adam", "adam"))
    posterior: str = arg("variational", "variational: a mean and a variance per factor, trained by variational Bayes "
                                        "(predictions use the means); map: point estimates with L2, as the course's "
                                        "model (best with --l2 20 --embedding-dim 32 --learning-rate 0.005)",
                         choices=("variational", "map"))
    genres: bool = arg(True, "use the films' genres (movies.csv) as side information: a film's row is its own plus "
                             "the mean of its genres' rows, so rarely rated films start from their genres")
    embedding_dim: int = arg(8, "size of the user and film embeddings")
    l2: float = arg(5.0, "L2 on the factors per row and epoch (each row's penalty divided by its count; "
                         "noise variance / prior variance)")
    l2_bias: float = arg(3.0, "L2 on the user and film biases, counted like --l2 (their prior is wider)")
    noise_variance: float = arg(0.75, "variational: assumed variance of a rating around its expectation "
                                      "(weights the posterior's entropy; 0.5-1.0 give the same MSE within 0.3%)")
    init_std: float = arg(0.05, "standard deviation of the embedding initialisation")
    steps_per_execution: int = arg(256, "training steps per compiled call (speed; results unchanged)")
    jit_compile: bool = arg(True, "compile the train step with XLA")
    intra_op_threads: int = arg(1, "TensorFlow intra-op threads (0: TF's default). One is fastest for the tiny "
                                   "ops of batch-64 steps: the second core runs the input pipeline")
    strategy: str = arg("auto", "tf.distribute strategy (multi-worker reads TF_CONFIG)",
                        choices=runtime.STRATEGY_KINDS)
    top_n: int = arg(10, "recommendations listed for the example user")
    seed: int = arg(0, "seed for initialisation, shuffling and the synthetic data")


# ----------------------------------------------------------------------------------------------
# Model
# ----------------------------------------------------------------------------------------------


@keras.saving.register_keras_serializable(package="kcourse")
class IdMappings(keras.layers.Layer):
    """Course index <-> MovieLens id and title, and each user's seen films, saved with the model.

    Holds no weights; the arrays travel as assets of the ``.keras`` file (Keras' mechanism for
    vocabularies, as ``StringLookup`` uses), so a loaded model can answer by id and title.
    """

    def __init__(self, user_ids=None, movie_ids=None, titles=None, seen_indptr=None, seen_indices=None, **kwargs):
        super().__init__(**kwargs)
        self.user_ids = np.asarray(user_ids if user_ids is not None else [], dtype="int64")
        self.movie_ids = np.asarray(movie_ids if movie_ids is not None else [], dtype="int64")
        self.titles = np.asarray(titles if titles is not None else [], dtype=object)
        self.seen_indptr = np.asarray(seen_indptr if seen_indptr is not None else [0], dtype="int64")
        self.seen_indices = np.asarray(seen_indices if seen_indices is not None else [], dtype="int32")
        self.built = True

    def call(self, inputs):  # not part of the forward pass
        return inputs

    def save_assets(self, dir_path):
        np.savez(os.path.join(dir_path, "mappings.npz"), user_ids=self.user_ids, movie_ids=self.movie_ids,
                 seen_indptr=self.seen_indptr, seen_indices=self.seen_indices)
        with open(os.path.join(dir_path, "titles.json"), "w", encoding="utf-8") as handle:
            json.dump([str(t) for t in self.titles], handle, ensure_ascii=False)

    def load_assets(self, dir_path):
        arrays = np.load(os.path.join(dir_path, "mappings.npz"))
        self.user_ids, self.movie_ids = arrays["user_ids"], arrays["movie_ids"]
        self.seen_indptr, self.seen_indices = arrays["seen_indptr"], arrays["seen_indices"]
        with open(os.path.join(dir_path, "titles.json"), encoding="utf-8") as handle:
            self.titles = np.asarray(json.load(handle), dtype=object)

    def seen(self, user_index: int) -> np.ndarray:
        """Film indices user ``user_index`` has rated."""
        return self.seen_indices[self.seen_indptr[user_index]: self.seen_indptr[user_index + 1]]


@keras.saving.register_keras_serializable(package="kcourse")
class FactorsAndBias(keras.initializers.Initializer):
    """Initialiser of a ``[rows, D + 1]`` table: N(0, stddev) factors, then a zero bias column.

    With ``log_variance`` set, the table is ``[rows, 2 (D + 1)]`` and its second half (the
    variational model's log-variances) starts at that constant.
    """

    def __init__(self, stddev: float = 0.05, seed=None, log_variance: float | None = None):
        self.stddev, self.seed = float(stddev), seed
        self.log_variance = None if log_variance is None else float(log_variance)
        self._normal = keras.initializers.RandomNormal(stddev=self.stddev, seed=seed)

    def __call__(self, shape, dtype=None):
        width = shape[1] if self.log_variance is None else shape[1] // 2  # D + 1
        parts = [self._normal((shape[0], width - 1), dtype=dtype), ops.zeros((shape[0], 1), dtype=dtype)]
        if self.log_variance is not None:
            parts.append(ops.full((shape[0], width), self.log_variance, dtype=dtype))
        return ops.concatenate(parts, axis=1)  # [rows, D + 1] or [rows, 2 (D + 1)]

    def get_config(self):
        return {"stddev": self.stddev, "seed": self.seed, "log_variance": self.log_variance}


@keras.saving.register_keras_serializable(package="kcourse")
class DotRecommender(keras.Model):
    """Biased matrix factorisation with a per-row dot product and a squashed output.

    Each user's row in ``user_embedding`` is ``[p_u (D values), b_u]`` and each film's row in
    ``movie_embedding`` is ``[q_m, b_m]``: one lookup per side gives both the factors and the bias,
    and the optimizer updates two tables per step instead of four (the step is a handful of tiny
    ops, so the count of lookups and scatter updates sets its speed). :meth:`factors` splits
    them back.

    Two options, both on in :class:`RecommenderConfig`'s defaults:

    * **Genres** (``genre_matrix``): a film's row is its own row plus the mean of its genres' rows
      (a small trainable ``genre_embedding``), and the L2 pulls the film's own part to zero, so
      a film's prior is centred on its genres' mean instead of on zero. A film with 3 ratings
      then starts from what "Thriller|Crime" fans think of thrillers rather than from nothing.
    * **Variational** (``variational=True``): each table entry has a Gaussian posterior, a mean
      (the row above) and a log-variance (a second ``D + 1`` columns), trained by variational
      Bayes. Predictions use the means, so inference is the same as without; training minimises
      the expected squared error plus ``2 * noise_variance`` times the KL to the N(0, s^2) prior.
      With ``l2 = noise_variance / s^2`` that is, per row and epoch, ``l2 (v + mu^2) -
      noise_variance * log v`` (the MAP penalty ``l2 mu^2`` plus a variance term), and the expected
      error is ``(y - f(mu))^2 + f'(mu)^2 Var[logit]`` with ``f`` the squashing (a linearisation;
      ``f'`` is held constant in the gradient) and, for independent entries,
      ``Var[logit] = v_bu + v_bm + sum_k (v_pk q_k^2 + v_qk p_k^2 + v_pk v_qk)``. Point estimates
      (MAP) of a factor model overfit the rarely rated rows, which the variances account for. On
      the course-size synthetic set (5 epochs): 1.136x the oracle MSE with point estimates, 1.116x
      variational, 1.084x variational with genres (``docs/recommender.md``).

    Args:
        n_users, n_movies: table sizes (course indices run from 0).
        embedding_dim: size ``D`` of ``p_u`` and ``q_m``.
        l2, l2_bias: L2 strength per row and epoch on the factors and on the biases. A batch adds
            ``mean_batch((l2 |p_u|^2 + l2_bias b_u^2) / n_u + (l2 |q_m|^2 + l2_bias b_m^2) / n_m)``
            with ``n_u``, ``n_m`` the rows' training counts, so over one epoch each row is penalised
            ``l2 * |row|^2 / batch`` once, whatever its popularity: the MAP estimate under a Gaussian
            prior (``l2 ~ noise var / prior var``; biases vary more than single factors, hence a
            smaller ``l2_bias``). A plain per-lookup penalty would shrink popular films hardest and
            rare ones least.
        user_counts, movie_counts: ``[n_users]``, ``[n_movies]`` training counts (default 1).
        global_mean: the mean training rating; the output starts there.
        init_std: std of the N(0, std) factor initialisation (small: no saturation at start).
        mappings: an :class:`IdMappings` (ids, titles, seen films) kept with the model.
        genre_matrix: ``[n_movies, G]`` weights of each film's genres (:func:`movielens.genre_matrix`),
            or None for no genre side information. ``n_genres`` alone (loading) makes a zero one
            that the saved weights fill.
        variational: learn a variance per entry (variational Bayes) instead of point estimates.
        noise_variance: the variational model's assumed variance of a rating around its expectation.

    Call: ``x [B, 2]`` int (user index, movie index) -> ``[B, 1]`` ratings in 0.5..5.0.
    """

    INIT_LOG_VARIANCE = -4.0  # variational: posterior std 0.14 at the start, below the prior's

    def __init__(self, n_users: int, n_movies: int, embedding_dim: int = 32, l2: float = 10.0,
                 global_mean: float = 3.5, init_std: float = 0.05, mappings: IdMappings | None = None,
                 user_counts=None, movie_counts=None, l2_bias: float | None = None, genre_matrix=None,
                 n_genres: int = 0, variational: bool = False, noise_variance: float = 0.75, **kwargs):
        super().__init__(**kwargs)
        for name, value in (("n_users", n_users), ("n_movies", n_movies), ("embedding_dim", embedding_dim)):
            if int(value) < 1:
                raise ValueError(f"Received an invalid value for argument `{name}`, expected >= 1, got {value}")
        if not RATING_MIN < global_mean < RATING_MAX:
            raise ValueError(f"Received an invalid value for argument `global_mean`, expected a value inside "
                             f"({RATING_MIN}, {RATING_MAX}), got {global_mean}")
        l2_bias = l2 if l2_bias is None else l2_bias
        for name, value in (("l2", l2), ("l2_bias", l2_bias)):
            if float(value) < 0 or (variational and float(value) == 0):
                raise ValueError(f"Received an invalid value for argument `{name}`, expected "
                                 f"{'> 0 (the variational prior must be proper)' if variational else '>= 0'}, got {value}")
        if variational and not float(noise_variance) > 0:
            raise ValueError(f"Received an invalid value for argument `noise_variance`, expected > 0, got {noise_variance}")
        if genre_matrix is not None:
            genre_matrix = np.asarray(genre_matrix, dtype="float32")
            if genre_matrix.ndim != 2 or genre_matrix.shape[0] != int(n_movies) or genre_matrix.shape[1] < 1:
                raise ValueError(f"Received an invalid value for argument `genre_matrix`: expected shape "
                                 f"({n_movies}, n_genres >= 1), got {genre_matrix.shape}")
            n_genres = genre_matrix.shape[1]
        self.n_users, self.n_movies, self.embedding_dim = int(n_users), int(n_movies), int(embedding_dim)
        self.l2, self.l2_bias, self.global_mean, self.init_std = float(l2), float(l2_bias), float(global_mean), float(init_std)
        self.n_genres, self.variational, self.noise_variance = int(n_genres), bool(variational), float(noise_variance)
        width = (embedding_dim + 1) * (2 if self.variational else 1)  # means, then log-variances
        init = FactorsAndBias(init_std, log_variance=self.INIT_LOG_VARIANCE if self.variational else None)
        self.user_embedding = keras.layers.Embedding(n_users, width, embeddings_initializer=init,
                                                     name="user_embedding")  # rows [p_u, b_u(, log-variances)]
        self.movie_embedding = keras.layers.Embedding(n_movies, width, embeddings_initializer=init,
                                                      name="movie_embedding")  # rows [q_m, b_m(, log-variances)]
        # logit of the mean on the squashed scale: the untrained model predicts the global mean.
        start = np.log((global_mean - RATING_MIN) / (RATING_MAX - global_mean))
        self.offset = self.add_weight(shape=(), initializer=keras.initializers.Constant(start), name="offset")
        # 1 / training count of each row (non-trainable, saved with the weights).
        inverse = lambda counts, n: (1.0 / np.maximum(np.asarray(counts, "float32"), 1.0)) if counts is not None \
            else np.ones(n, "float32")  # noqa: E731
        self.user_weight = self.add_weight(shape=(n_users,), initializer=keras.initializers.Constant(0.0),
                                           trainable=False, name="user_inverse_count")
        self.movie_weight = self.add_weight(shape=(n_movies,), initializer=keras.initializers.Constant(0.0),
                                            trainable=False, name="movie_inverse_count")
        self.user_weight.assign(inverse(user_counts, n_users))
        self.movie_weight.assign(inverse(movie_counts, n_movies))
        if self.n_genres:
            self.movie_genres = self.add_weight(shape=(n_movies, self.n_genres), initializer="zeros", trainable=False,
                                                name="movie_genres")  # [M, G] saved with the weights
            if genre_matrix is not None:
                self.movie_genres.assign(genre_matrix)
            self.genre_embedding = self.add_weight(shape=(self.n_genres, embedding_dim + 1), initializer="zeros",
                                                   name="genre_embedding")  # [G, D + 1] rows [q_g, b_g]
        # per-column penalty of a table row: l2 on the D factors, l2_bias on the bias
        self._column_l2 = np.array([self.l2] * self.embedding_dim + [self.l2_bias], "float32")  # [D + 1]
        self.mappings = mappings if mappings is not None else IdMappings(name="mappings")

    def _film_rows(self, movies, own):
        """``[B, D + 1]``: the films' own ``[q_m, b_m]`` plus the mean of their genres' rows."""
        if not self.n_genres:
            return own
        return own + ops.matmul(ops.take(self.movie_genres, movies, axis=0), self.genre_embedding)  # [B, G] @ [G, D + 1]

    def call(self, x, training=False):
        users, movies = x[:, 0], x[:, 1]  # [B], [B]
        d, w = self.embedding_dim, self.embedding_dim + 1
        u = self.user_embedding(users)  # [B, W]: p_u, b_u (then their log-variances)
        own = self.movie_embedding(movies)  # [B, W]: q_m, b_m (then their log-variances)
        p, m = u[:, :w], self._film_rows(movies, own[:, :w])  # [B, D + 1] means
        dot = ops.sum(p[:, :d] * m[:, :d], axis=1, keepdims=True)  # [B, 1]: one dot product per row
        squashed = ops.sigmoid(self.offset + p[:, d:] + m[:, d:] + dot)  # [B, 1]
        if training:
            self._add_training_losses(users, movies, u, own, p, m, squashed)
        return RATING_MIN + (RATING_MAX - RATING_MIN) * squashed  # [B, 1] in (0.5, 5)

    def _add_training_losses(self, users, movies, u, own, p, m, squashed):
        """The L2 penalty (MAP) or the KL and the expected error's variance term (variational)."""
        if not (self.l2 > 0 or self.l2_bias > 0):
            return
        d, w = self.embedding_dim, self.embedding_dim + 1
        user_penalty = ops.sum(p * p * self._column_l2, axis=1)  # [B] l2 |p_u|^2 + l2_bias b_u^2
        film_penalty = ops.sum(own[:, :w] ** 2 * self._column_l2, axis=1)  # [B] own part: the genres are the prior's centre
        if self.variational:
            log_vu, log_vm = u[:, w:], own[:, w:]  # [B, D + 1] log-variances
            vu, vm = ops.exp(log_vu), ops.exp(log_vm)
            user_penalty += ops.sum(vu * self._column_l2 - self.noise_variance * log_vu, axis=1)  # [B]
            film_penalty += ops.sum(vm * self._column_l2 - self.noise_variance * log_vm, axis=1)
            logit_var = vu[:, d] + vm[:, d] + ops.sum(vu[:, :d] * m[:, :d] ** 2 + vm[:, :d] * p[:, :d] ** 2
                                                      + vu[:, :d] * vm[:, :d], axis=1)  # [B] Var[logit]
            slope = ops.stop_gradient((RATING_MAX - RATING_MIN) * squashed * (1 - squashed))[:, 0]  # [B] f'(logit)
            self.add_loss(ops.mean(slope ** 2 * logit_var))
        w_u = ops.take(self.user_weight, users, axis=0)  # [B] 1 / n_u
        w_m = ops.take(self.movie_weight, movies, axis=0)  # [B] 1 / n_m
        self.add_loss(ops.mean(w_u * user_penalty + w_m * film_penalty))

    def factors(self) -> dict[str, np.ndarray]:
        """The learned means: ``{"user": [U, D], "user_bias": [U], "movie": [M, D], "movie_bias": [M], "offset"}``.

        A film's values include its genres' part, so ``offset + b_u + b_m + p_u . q_m`` is the logit
        the model predicts from. A variational model adds ``"user_log_variance"`` ``[U, D + 1]`` and
        ``"movie_log_variance"`` ``[M, D + 1]``.
        """
        d, w = self.embedding_dim, self.embedding_dim + 1
        users, own = np.asarray(self.user_embedding.embeddings), np.asarray(self.movie_embedding.embeddings)
        movies = own[:, :w] + (np.asarray(self.movie_genres) @ np.asarray(self.genre_embedding) if self.n_genres else 0.0)
        out = {"user": users[:, :d], "user_bias": users[:, d], "movie": movies[:, :d], "movie_bias": movies[:, d],
               "offset": float(np.asarray(self.offset))}
        if self.variational:
            out.update(user_log_variance=users[:, w:], movie_log_variance=own[:, w:])
        return out

    def set_factors(self, user, movie, user_bias=None, movie_bias=None) -> None:
        """Assign the means ``user [U, D]``, ``movie [M, D]`` and the biases (``[U]``, ``[M]``; default 0).

        The genre rows are set to zero (the films' values are then exactly ``movie``); a
        variational model keeps its log-variances.
        """
        user, movie = np.asarray(user, "float32"), np.asarray(movie, "float32")
        if user.shape != (self.n_users, self.embedding_dim) or movie.shape != (self.n_movies, self.embedding_dim):
            raise ValueError(f"Received an invalid value for argument `user`/`movie`: expected shapes "
                             f"{(self.n_users, self.embedding_dim)} and {(self.n_movies, self.embedding_dim)}, "
                             f"got {user.shape} and {movie.shape}")
        user_bias = np.zeros(self.n_users, "float32") if user_bias is None else np.asarray(user_bias, "float32")
        movie_bias = np.zeros(self.n_movies, "float32") if movie_bias is None else np.asarray(movie_bias, "float32")
        w = self.embedding_dim + 1
        for table, values in ((self.user_embedding.embeddings, np.concatenate([user, user_bias.reshape(-1, 1)], axis=1)),
                              (self.movie_embedding.embeddings, np.concatenate([movie, movie_bias.reshape(-1, 1)], axis=1))):
            table.assign(np.concatenate([values, np.asarray(table)[:, w:]], axis=1))  # keeps log-variances
        if self.n_genres:
            self.genre_embedding.assign(np.zeros((self.n_genres, w), "float32"))

    def get_config(self):
        return {"n_users": self.n_users, "n_movies": self.n_movies, "embedding_dim": self.embedding_dim,
                "l2": self.l2, "l2_bias": self.l2_bias, "global_mean": self.global_mean, "init_std": self.init_std,
                "n_genres": self.n_genres, "variational": self.variational, "noise_variance": self.noise_variance,
                "name": self.name, "trainable": self.trainable}

    def build(self, input_shape=None):
        for layer in (self.user_embedding, self.movie_embedding):
            layer.build((None,))
        self.built = True


def build_model(data: movielens.CourseData, cfg: RecommenderConfig) -> DotRecommender:
    """A :class:`DotRecommender` sized for ``data`` with its id/title mappings attached."""
    indptr, indices = data.seen()
    mappings = IdMappings(user_ids=data.user_ids, movie_ids=data.movie_ids, titles=data.titles,
                          seen_indptr=indptr, seen_indices=indices, name="mappings")
    genres = data.genre_matrix()[0] if cfg.genres else None
    model = DotRecommender(data.n_users, data.n_movies, cfg.embedding_dim, cfg.l2,
                           global_mean=float(np.mean(data.y_train)), init_std=cfg.init_std, mappings=mappings,
                           user_counts=np.bincount(data.x_train[:, 0], minlength=data.n_users),
                           movie_counts=np.bincount(data.x_train[:, 1], minlength=data.n_movies), l2_bias=cfg.l2_bias,
                           genre_matrix=genres if genres is not None and genres.shape[1] else None,
                           variational=cfg.posterior == "variational", noise_variance=cfg.noise_variance)
    model.build((None, 2))
    return model


# ----------------------------------------------------------------------------------------------
# Data pipeline and training
# ----------------------------------------------------------------------------------------------


def make_dataset(x: np.ndarray, y: np.ndarray, batch_size: int, shuffle: bool, seed: int = 0):
    """``tf.data`` pipeline of ``(x [B, 2] int32, y [B, 1] float32)`` batches, reshuffled every epoch.

    Like ``DataLoader(shuffle=True)``: a fresh permutation each pass, the last batch may be
    smaller. Each pass gathers the whole permuted epoch at once and hands out ready-made batches
    (slices of a ``[n_batches, B, ...]`` tensor), because per-example tf.data elements, or even a
    per-batch ``map`` with a gather, cost more than the model's step at batch 64 (a per-batch map
    capped training at ~200,000 samples/s here, this layout passes ~350,000).
    """
    import tensorflow as tf

    if batch_size < 1:
        raise ValueError(f"Received an invalid value for argument `batch_size`, expected >= 1, got {batch_size}")
    x = tf.constant(np.asarray(x, dtype="int32"))
    y = tf.constant(np.asarray(y, dtype="float32").reshape(-1, 1))
    n = int(x.shape[0])
    full, rest = divmod(n, batch_size)  # full batches, size of the last partial one

    def one_epoch(epoch_seed):
        if shuffle:  # a new permutation on every pass: Dataset.random rerandomizes per iteration
            order = tf.random.experimental.stateless_shuffle(tf.range(n, dtype=tf.int64),
                                                             seed=tf.stack([epoch_seed, tf.constant(seed, tf.int64)]))
            xs, ys = tf.gather(x, order), tf.gather(y, order)  # [n, 2], [n, 1] this epoch's order
        else:
            xs, ys = x, y
        batches = tf.data.Dataset.from_tensor_slices((tf.reshape(xs[:full * batch_size], (full, batch_size, 2)),
                                                      tf.reshape(ys[:full * batch_size], (full, batch_size, 1))))
        if rest:
            batches = batches.concatenate(tf.data.Dataset.from_tensors((xs[full * batch_size:], ys[full * batch_size:])))
        return batches

    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).take(1)
    ds = seeds.flat_map(one_epoch).apply(tf.data.experimental.assert_cardinality(full + (1 if rest else 0)))
    return ds.prefetch(tf.data.AUTOTUNE)


@keras.saving.register_keras_serializable(package="kcourse")
class SparseAdam(keras.optimizers.Adam):
    """Adam that updates only the embedding rows a batch uses (lazy Adam).

    The same algorithm as ``torch.optim.SparseAdam`` (and TF-Addons' ``LazyAdam``): for a row-sparse
    gradient (``tf.IndexedSlices`` from an ``Embedding`` lookup), the moments and weights of the
    rows in the batch get the Adam update and the other rows are left alone. Dense Adam touches all
    ``(users + films) x dim`` entries every step, which is memory-bound and caps a CPU at about
    15,000 samples/s at batch 64 here; dense variables (the offset) get the ordinary Adam update.

    A row used twice in a batch must get one update with the sum of its gradients (as a dense
    gradient would). ``tf.unique`` has a data-dependent output shape, which XLA handles slowly, so
    the rows are sorted instead and every position gets its row's summed gradient: positions of one
    row compute the same new values, and the scatter writes identical values whichever lands last.
    """

    def update_step(self, gradient, variable, learning_rate):
        import tensorflow as tf

        if not isinstance(gradient, tf.IndexedSlices):
            return super().update_step(gradient, variable, learning_rate)
        order = tf.argsort(gradient.indices, stable=True)
        rows = tf.gather(gradient.indices, order)  # [K] sorted, repeats adjacent
        first = tf.concat([tf.zeros([1], tf.int32), tf.cast(rows[1:] != rows[:-1], tf.int32)], axis=0)
        segment = tf.cumsum(first)  # [K] one id per distinct row
        values = tf.gather(tf.cast(gradient.values, variable.dtype), order)  # [K, D]
        summed = tf.math.unsorted_segment_sum(values, segment, tf.shape(rows)[0])  # [K, D] (tail unused)
        grad = tf.gather(summed, segment)  # [K, D] each position: its row's summed gradient
        lr = ops.cast(learning_rate, variable.dtype)
        local_step = ops.cast(self.iterations + 1, variable.dtype)
        beta_1_power = ops.power(ops.cast(self.beta_1, variable.dtype), local_step)
        beta_2_power = ops.power(ops.cast(self.beta_2, variable.dtype), local_step)
        alpha = lr * ops.sqrt(1 - beta_2_power) / (1 - beta_1_power)
        m = self._momentums[self._get_variable_index(variable)]
        v = self._velocities[self._get_variable_index(variable)]
        m_rows = self.beta_1 * ops.take(m, rows, axis=0) + (1 - self.beta_1) * grad  # [K, D]
        v_rows = self.beta_2 * ops.take(v, rows, axis=0) + (1 - self.beta_2) * ops.square(grad)
        w_rows = ops.take(variable, rows, axis=0) - alpha * m_rows / (ops.sqrt(v_rows) + self.epsilon)
        self.assign(m, tf.IndexedSlices(m_rows, rows))
        self.assign(v, tf.IndexedSlices(v_rows, rows))
        self.assign(variable, tf.IndexedSlices(w_rows, rows))


class CourseLog(keras.callbacks.Callback):
    """Prints ``epoch: N\\t val_loss: X.XXXX`` (the course's line) and logs ``eval/val_mse``.

    ``val_loss`` in the course is the plain MSE on ``X_val``, and so is Keras' ``val_loss`` here:
    the model adds its L2 penalty only when called with ``training=True`` (tested), so no extra
    ``mse`` metric has to run in every training step.
    """

    def __init__(self, eval_writer=None, printer=print):
        super().__init__()
        self.eval_writer, self.printer = eval_writer, printer
        self.val_mse: list[float] = []

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        value = float(logs.get("val_mse", logs.get("val_loss", float("nan"))))
        self.val_mse.append(value)
        self.printer(f"epoch: {epoch + 1}\t val_loss: {value:.4f}")
        if self.eval_writer is not None:
            runtime.log_scalars(self.eval_writer, epoch + 1, {"eval/val_mse": value,
                                                              "losses/train_loss": float(logs.get("loss", np.nan))})


def make_optimizer(cfg: RecommenderConfig, total_steps: int):
    """Adam (row-sparse by default) with an optional cosine decay over ``total_steps``."""
    lr = cfg.learning_rate
    if cfg.lr_decay:
        lr = keras.optimizers.schedules.CosineDecay(cfg.learning_rate, decay_steps=max(1, total_steps), alpha=0.1)
    return SparseAdam(lr) if cfg.optimizer == "sparse-adam" else keras.optimizers.Adam(lr)


def compile_model(model: DotRecommender, cfg: RecommenderConfig, n_train: int | None = None) -> None:
    """Adam + MSE, as in the course (``val_loss`` is the plain validation MSE: see :class:`CourseLog`)."""
    steps = cfg.epochs * -(-(n_train or 1) // cfg.batch_size)
    model.compile(optimizer=make_optimizer(cfg, steps), loss="mse",
                  steps_per_execution=cfg.steps_per_execution, jit_compile=cfg.jit_compile)


def train(data: movielens.CourseData, cfg: RecommenderConfig, run_dir: Path | None = None,
          strategy=None, verbose_lines: bool = True):
    """Build and fit the model on ``data``; returns ``(model, history, CourseLog)``."""
    if cfg.epochs < 1:
        raise ValueError(f"Received an invalid value for argument `epochs`, expected >= 1, got {cfg.epochs}")
    runtime.set_intra_op_threads(cfg.intra_op_threads)  # speed only; kept as is if TF already runs
    strategy = strategy or runtime.strategy(cfg.strategy)
    with strategy.scope():
        model = build_model(data, cfg)
        compile_model(model, cfg, len(data.x_train))
    train_ds = make_dataset(data.x_train, data.y_train, cfg.batch_size, shuffle=True, seed=cfg.seed)
    val_ds = make_dataset(data.x_val, data.y_val, 8192, shuffle=False)
    writers = runtime.summary_writers(run_dir) if run_dir is not None else (None, None)
    log = CourseLog(eval_writer=writers[1], printer=print if verbose_lines else (lambda *_: None))
    callbacks = [log]
    if run_dir is not None:
        callbacks.append(keras.callbacks.TensorBoard(log_dir=str(Path(run_dir) / "tensorboard"), write_graph=False))
    history = model.fit(train_ds, validation_data=val_ds, epochs=cfg.epochs, verbose=0, callbacks=callbacks,
                        shuffle=False)  # the dataset reshuffles itself every epoch
    return model, history, log


# ----------------------------------------------------------------------------------------------
# Using a trained model: predict, recommend, plot
# ----------------------------------------------------------------------------------------------


def _user_index(model: DotRecommender, user, by: str) -> int:
    maps = model.mappings
    if by == "index":
        if not 0 <= int(user) < model.n_users:
            raise ValueError(f"Received an invalid value for argument `user`: user index {user} is out of range "
                             f"(the model knows {model.n_users} users, indices 0..{model.n_users - 1})")
        return int(user)
    found = np.flatnonzero(maps.user_ids == int(user))
    if not len(found):
        raise ValueError(f"Received an invalid value for argument `user`: userId {user} is not in the training "
                         f"data ({model.n_users} users; pass by='index' for a course index)")
    return int(found[0])


def _movie_index(model: DotRecommender, movie, by: str) -> int:
    maps = model.mappings
    if by == "index":
        if not 0 <= int(movie) < model.n_movies:
            raise ValueError(f"Received an invalid value for argument `movie`: movie index {movie} is out of range "
                             f"(the model knows {model.n_movies} films, indices 0..{model.n_movies - 1})")
        return int(movie)
    found = np.flatnonzero(maps.movie_ids == int(movie))
    if not len(found):
        raise ValueError(f"Received an invalid value for argument `movie`: movieId {movie} is not in the training "
                         f"data ({model.n_movies} films; pass by='index' for a course index)")
    return int(found[0])


def _check_by(by: str) -> None:
    if by not in ("index", "id"):
        raise ValueError(f"Received an invalid value for argument `by`, expected 'index' or 'id', got {by!r}")


def predict(model: DotRecommender, user, movie, by: str = "index") -> dict:
    """Predicted rating of one film for one user.

    Args:
        user, movie: course indices (``by="index"``) or MovieLens ``userId``/``movieId`` (``by="id"``).

    Returns:
        ``{"rating", "user_index", "user_id", "movie_index", "movie_id", "title"}``.

    Raises:
        ValueError: an id or index the model does not know.
    """
    _check_by(by)
    u, m = _user_index(model, user, by), _movie_index(model, movie, by)
    rating = float(model(np.array([[u, m]], dtype="int32"))[0, 0])
    maps = model.mappings
    return {"rating": rating, "user_index": u, "user_id": int(maps.user_ids[u]), "movie_index": m,
            "movie_id": int(maps.movie_ids[m]), "title": str(maps.titles[m])}


def recommend(model: DotRecommender, user, n: int = 10, by: str = "index") -> list[dict]:
    """The ``n`` films with the highest predicted rating that ``user`` has not rated.

    Returns:
        Dicts ``{"movie_index", "movie_id", "title", "rating"}``, best first.
    """
    _check_by(by)
    if n < 1:
        raise ValueError(f"Received an invalid value for argument `n`, expected >= 1, got {n}")
    u = _user_index(model, user, by)
    movies = np.arange(model.n_movies, dtype="int32")
    x = np.stack([np.full_like(movies, u), movies], axis=1)  # [M, 2]
    scores = np.array(model(x)).reshape(-1)  # one call for all films, not a per-film loop
    scores[model.mappings.seen(u)] = -np.inf
    n = min(n, int(np.isfinite(scores).sum()))
    best = np.argsort(-scores, kind="stable")[:n]
    maps = model.mappings
    return [{"movie_index": int(m), "movie_id": int(maps.movie_ids[m]), "title": str(maps.titles[m]),
             "rating": float(scores[m])} for m in best]


def predict_batch(model: DotRecommender, x: np.ndarray, batch_size: int = 65536) -> np.ndarray:
    """Predictions ``[N]`` for ``x [N, 2]`` course indices, in large batches."""
    out = [np.asarray(model(x[i: i + batch_size])).reshape(-1) for i in range(0, len(x), batch_size)]
    return np.concatenate(out) if out else np.zeros(0, dtype="float32")


def scatter_plot(y_true: np.ndarray, y_pred: np.ndarray, path: Path, title: str = "") -> Path:
    """The course's ``plt.plot(y_val, yhat, '.', alpha=...)``, with jitter to show the half stars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    y_true = np.asarray(y_true).reshape(-1)
    rng = np.random.default_rng(0)
    fig, ax = plt.subplots(figsize=(5, 4.5))
    jitter = rng.uniform(-0.12, 0.12, len(y_true))
    ax.plot(y_true + jitter, np.asarray(y_pred).reshape(-1), ".", alpha=max(0.002, min(0.3, 300 / len(y_true))))
    means = [np.mean(y_pred[y_true == v]) if np.any(y_true == v) else np.nan for v in np.arange(1, 11) * 0.5]
    ax.plot(np.arange(1, 11) * 0.5, means, "r-o", label="mean prediction")
    ax.plot([0.5, 5], [0.5, 5], "k--", lw=0.8, label="y = x")
    ax.set(xlabel="true rating (jittered)", ylabel="predicted rating", xlim=(0.2, 5.3), ylim=(0.3, 5.2), title=title)
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return Path(path)


def save(model: DotRecommender, path: str | os.PathLike) -> Path:
    """Save to a ``.keras`` file (weights, config, id/title mappings, seen films)."""
    path = Path(path)
    if path.suffix != ".keras":
        raise ValueError(f"Received an invalid value for argument `path`, expected a name ending in .keras, got {str(path)!r}")
    model.save(path)
    return path


def load(path: str | os.PathLike) -> DotRecommender:
    """Load a model written by :func:`save`."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such model file")
    return keras.models.load_model(path, custom_objects={"DotRecommender": DotRecommender, "IdMappings": IdMappings})


# ----------------------------------------------------------------------------------------------
# The exercise
# ----------------------------------------------------------------------------------------------


def load_data(cfg: RecommenderConfig) -> tuple[movielens.CourseData, Path, bool]:
    """The course data from ``cfg.data`` (a folder or ``synthetic``); returns (data, folder, is_synthetic)."""
    if cfg.data == "synthetic":
        folder = movielens.synthetic_folder(cfg.synthetic_size, seed=cfg.seed)
    else:
        folder = Path(cfg.data).expanduser()
    data = movielens.load_course_data(folder, merge_order=cfg.merge_order, n_users=cfg.users)
    return data, folder, (folder / movielens.TRUTH_FILE).is_file()


def _is_ml20m(data: movielens.CourseData, folder: Path) -> bool:
    return "ml-20m" in folder.name and data.n_users > COURSE_QUESTION[0] and data.n_movies > COURSE_QUESTION[1]


@exercise("recommender", config=RecommenderConfig, section="supervised",
          summary="MovieLens recommender (exam part 1): biased MF with per-row dot, top-N, save/load",
          reference="val MSE 0.7995, 0.7595, 0.7444, 0.7383, 0.7334 (ml-20m, 5000 users, 5 epochs)",
          quick={"synthetic_size": "small", "epochs": 3, "batch_size": 256, "jit_compile": False})
def run(cfg: RecommenderConfig, run_dir: Path) -> dict:
    with runtime.Timer() as load_timer:
        data, folder, synthetic = load_data(cfg)
    print(f"data: {folder} -> {len(data.frame):,} ratings, {data.n_users} users, {data.n_movies} films "
          f"(merge order {cfg.merge_order}, {load_timer.seconds:.1f}s); train {len(data.x_train):,}, val {len(data.x_val):,}",
          flush=True)
    with runtime.Timer() as fit_timer:
        if cfg.strategy == "multi-worker":  # one process per worker, cluster from TF_CONFIG
            model, log = train_multi_worker(data, cfg, runtime.strategy("multi-worker"))
        else:
            model, _, log = train(data, cfg, run_dir)
    samples_per_s = len(data.x_train) * cfg.epochs / fit_timer.seconds
    y_pred = predict_batch(model, data.x_val)
    val_mse = float(np.mean((y_pred - data.y_val.reshape(-1)) ** 2))
    metrics = {"val_mse": val_mse, "val_mse_per_epoch": log.val_mse, "train_samples_per_s": samples_per_s,
               "n_ratings": len(data.frame), "n_users": data.n_users, "n_movies": data.n_movies}
    headline = f"val MSE {val_mse:.4f} after {cfg.epochs} epochs"
    if synthetic:
        oracle = movielens.oracle_mse(folder, data.rows_val, data.y_val)
        metrics["oracle_val_mse"] = oracle
        headline += f" (synthetic {cfg.synthetic_size}; oracle {oracle:.4f}, +{100 * (val_mse / oracle - 1):.1f}%)"
    scatter_plot(data.y_val, y_pred, run_dir / "scatter.png", title=f"validation: MSE {val_mse:.4f}")
    model_path = save(model, run_dir / "checkpoints" / "recommender.keras")
    # An example user: the course's question when the data is ml-20m, else the most active user.
    if _is_ml20m(data, folder):
        answer = predict(model, *COURSE_QUESTION, by="index")
        metrics["question2"] = answer
        print(f"question 2: user index {answer['user_index']} (userId {answer['user_id']}), movie index "
              f"{answer['movie_index']} {answer['title']!r}: predicted rating {answer['rating']:.2f}")
        headline += f"; Q2 user 2303 x {answer['title']}: {answer['rating']:.2f}"
        user = COURSE_QUESTION[0]
    else:
        user = int(np.argmax(np.diff(model.mappings.seen_indptr)))
    top = recommend(model, user, cfg.top_n, by="index")
    print(f"top {cfg.top_n} unseen films for user index {user} (userId {int(model.mappings.user_ids[user])}):")
    for rank, item in enumerate(top, 1):
        print(f"  {rank:2d}. {item['rating']:.2f}  {item['title']}")
    runtime.atomic_write_json(run_dir / "recommendations.json", {"user_index": user, "top": top})
    print(f"trained {fit_timer.seconds:.1f}s ({samples_per_s:,.0f} samples/s); model: {model_path}", flush=True)
    return {"headline": headline, "metrics": metrics,
            "artifacts": ["scatter.png", "recommendations.json", "checkpoints/recommender.keras"]}


# ----------------------------------------------------------------------------------------------
# Multi-worker training: python -m keras_impl.recommender worker --data DIR --out result.json
# ----------------------------------------------------------------------------------------------


def train_multi_worker(data: movielens.CourseData, cfg: RecommenderConfig, strategy, printer=print):
    """Train under a ``tf.distribute`` strategy with an explicit loop (``strategy.run``).

    Keras 3.15's ``fit`` cannot take a dataset distributed by ``MultiWorkerMirroredStrategy``
    (its symbolic build reduces the first ``PerReplica`` batch and fails), so multi-worker runs use
    the loop TensorFlow's multi-worker tutorial uses. Every worker builds the same seeded stream of
    global batches and keeps its slice of each (``distribute_datasets_from_function``), gradients
    are all-reduced by the optimizer, so all workers hold identical weights. The last partial global
    batch of an epoch is dropped (every replica needs a share). Returns ``(model, CourseLog)``.
    """
    import tensorflow as tf

    global_batch = cfg.batch_size
    replicas = strategy.num_replicas_in_sync
    if global_batch % replicas:
        raise ValueError(f"Received an invalid value for argument `batch_size`: the global batch {global_batch} must "
                         f"divide evenly over {replicas} replicas")
    per_replica = global_batch // replicas
    n = len(data.x_train)
    steps = n // global_batch
    x_all = tf.constant(np.asarray(data.x_train, "int32"))
    y_all = tf.constant(np.asarray(data.y_train, "float32").reshape(-1, 1))

    def dataset_fn(context):
        index = context.input_pipeline_id * (replicas // context.num_input_pipelines)

        def epoch(epoch_seed):
            order = tf.random.experimental.stateless_shuffle(
                tf.range(n, dtype=tf.int64), seed=tf.stack([epoch_seed, tf.constant(cfg.seed, tf.int64)]))

            def batch(i):
                start = i * global_batch + index * per_replica  # this replica's slice of global batch i
                idx = order[start: start + per_replica]
                return tf.gather(x_all, idx), tf.gather(y_all, idx)

            return tf.data.Dataset.range(steps).map(batch)

        # the same seed on every worker: all see the same permutation, each takes its own slice
        return tf.data.Dataset.random(seed=cfg.seed, rerandomize_each_iteration=True).take(1).flat_map(epoch)

    with strategy.scope():
        model = build_model(data, cfg)
        optimizer = make_optimizer(cfg, cfg.epochs * steps)
        optimizer.build(model.trainable_variables)

    @tf.function
    def train_step(x, y):
        with tf.GradientTape() as tape:
            pred = model(x, training=True)  # [b, 1]
            # mean over the *global* batch, penalty split over replicas: the all-reduced gradient
            # equals the single-process gradient of the same global batch.
            loss = tf.reduce_sum(tf.square(pred - y)) / global_batch + tf.add_n(model.losses) / replicas
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply(grads, model.trainable_variables)
        return loss

    log = CourseLog(printer=printer)
    dist = strategy.distribute_datasets_from_function(dataset_fn)
    for epoch in range(cfg.epochs):
        for x, y in dist:
            strategy.run(train_step, args=(x, y))
        val = float(np.mean((predict_batch(model, data.x_val) - data.y_val.reshape(-1)) ** 2))
        log.on_epoch_end(epoch, {"val_mse": val})
    return model, log


def worker_main(argv: list[str] | None = None) -> int:
    """One worker of a multi-worker run (cluster from ``TF_CONFIG``); writes its val MSE as JSON.

    Every worker reads the same folder and computes the same split (the preprocessing is
    deterministic). ``--strategy cpu`` runs the same loop in one process, as the reference.
    """
    parser = argparse.ArgumentParser(prog="python -m keras_impl.recommender worker")
    parser.add_argument("--data", required=True)
    parser.add_argument("--out", required=True, help="JSON file for this worker's result")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=256, help="global batch size")
    parser.add_argument("--users", type=int, default=movielens.COURSE_USERS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--strategy", default="multi-worker", choices=runtime.STRATEGY_KINDS)
    args = parser.parse_args(argv)
    cfg = RecommenderConfig(data=args.data, epochs=args.epochs, batch_size=args.batch_size, users=args.users,
                            seed=args.seed, strategy=args.strategy)
    strategy = runtime.strategy(cfg.strategy)  # before any other TF op: collectives are set up here
    runtime.seed_everything(cfg.seed)
    data, _, _ = load_data(cfg)
    model, log = train_multi_worker(data, cfg, strategy, printer=lambda line: print(line, flush=True))
    task = json.loads(os.environ.get("TF_CONFIG", "{}")).get("task", {}).get("index", 0)
    runtime.atomic_write_json(args.out, {"val_mse": log.val_mse[-1], "val_mse_per_epoch": log.val_mse,
                                         "workers": strategy.num_replicas_in_sync, "task": task})
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "worker":
        sys.exit(worker_main(sys.argv[2:]))
    print("usage: python -m keras_impl.recommender worker --data DIR --out result.json  "
          "(or `kcourse run recommender`)", file=sys.stderr)
    sys.exit(2)
