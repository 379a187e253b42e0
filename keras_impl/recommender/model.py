"""The recommender model: biased matrix factorisation with genres and a variational posterior.

:class:`DotRecommender` (the model), :class:`IdMappings` (ids, titles and seen films saved with
it), :class:`FactorsAndBias` (the table initialiser) and :func:`build_model`.
"""
from __future__ import annotations

import json
import os

import keras
import numpy as np
from keras import ops

from keras_impl.configs import RecommenderConfig
from keras_impl.movielens import RATING_MAX, RATING_MIN, CourseData
from keras_impl.recommender.ease import Ease


@keras.saving.register_keras_serializable(package="kcourse")
class IdMappings(keras.layers.Layer):
    """Course index <-> MovieLens id and title, each user's seen films and each film's training count.

    Holds no weights; the arrays travel as assets of the ``.keras`` file (Keras' mechanism for
    vocabularies, as ``StringLookup`` uses), so a loaded model can answer by id and title.
    ``movie_counts`` (training ratings per film) is None in files saved before it existed, and so is
    ``ease`` (the :class:`~keras_impl.recommender.ease.Ease` ranking model fitted beside the rating model).
    """

    def __init__(self, user_ids=None, movie_ids=None, titles=None, seen_indptr=None, seen_indices=None,
                 movie_counts=None, ease=None, **kwargs):
        super().__init__(**kwargs)
        self.user_ids = np.asarray(user_ids if user_ids is not None else [], dtype="int64")
        self.movie_ids = np.asarray(movie_ids if movie_ids is not None else [], dtype="int64")
        self.titles = np.asarray(titles if titles is not None else [], dtype=object)
        self.seen_indptr = np.asarray(seen_indptr if seen_indptr is not None else [0], dtype="int64")
        self.seen_indices = np.asarray(seen_indices if seen_indices is not None else [], dtype="int32")
        self.movie_counts = None if movie_counts is None else np.asarray(movie_counts, dtype="int64")
        self.ease = ease
        self.built = True

    def call(self, inputs):  # not part of the forward pass
        return inputs

    def save_assets(self, dir_path):
        counts = {} if self.movie_counts is None else {"movie_counts": self.movie_counts}
        ease = {} if self.ease is None else self.ease.arrays()
        np.savez(os.path.join(dir_path, "mappings.npz"), user_ids=self.user_ids, movie_ids=self.movie_ids,
                 seen_indptr=self.seen_indptr, seen_indices=self.seen_indices, **counts, **ease)
        with open(os.path.join(dir_path, "titles.json"), "w", encoding="utf-8") as handle:
            json.dump([str(t) for t in self.titles], handle, ensure_ascii=False)

    def load_assets(self, dir_path):
        arrays = np.load(os.path.join(dir_path, "mappings.npz"))
        self.user_ids, self.movie_ids = arrays["user_ids"], arrays["movie_ids"]
        self.seen_indptr, self.seen_indices = arrays["seen_indptr"], arrays["seen_indices"]
        self.movie_counts = arrays["movie_counts"] if "movie_counts" in arrays.files else None
        self.ease = Ease.from_arrays({name: arrays[name] for name in arrays.files}, len(self.movie_ids))
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
      (MAP) of a factor model overfit the rarely rated rows, which the variances account for
      (the measured effect of each option: ``docs/recommender.md``).

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
        genre_matrix: ``[n_movies, G]`` weights of each film's genres (:func:`keras_impl.movielens.genre_matrix`),
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

    @property
    def movie_counts(self) -> np.ndarray:
        """``[M]`` training ratings per film (from the mappings; older files: ``1 / movie_inverse_count``, 0 read as 1)."""
        if self.mappings.movie_counts is not None and len(self.mappings.movie_counts) == self.n_movies:
            return self.mappings.movie_counts
        return np.rint(1.0 / np.asarray(self.movie_weight)).astype("int64")

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


def build_model(data: CourseData, cfg: RecommenderConfig) -> DotRecommender:
    """A :class:`DotRecommender` sized for ``data`` with its id/title mappings attached."""
    indptr, indices = data.seen()
    movie_counts = np.bincount(data.x_train[:, 1], minlength=data.n_movies)
    mappings = IdMappings(user_ids=data.user_ids, movie_ids=data.movie_ids, titles=data.titles,
                          seen_indptr=indptr, seen_indices=indices, movie_counts=movie_counts, name="mappings")
    genres = data.genre_matrix()[0] if cfg.genres else None
    model = DotRecommender(data.n_users, data.n_movies, cfg.embedding_dim, cfg.l2,
                           global_mean=float(np.mean(data.y_train)), init_std=cfg.init_std, mappings=mappings,
                           user_counts=np.bincount(data.x_train[:, 0], minlength=data.n_users),
                           movie_counts=movie_counts, l2_bias=cfg.l2_bias,
                           genre_matrix=genres if genres is not None and genres.shape[1] else None,
                           variational=cfg.posterior == "variational", noise_variance=cfg.noise_variance)
    model.build((None, 2))
    return model
