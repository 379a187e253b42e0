"""MovieLens data for the recommender: read and validate a folder, the course preprocessing, a
synthetic generator in the same layout, and ``kcourse data download``.

The exam (``shared/seeds/dl2024-final-exam.txt``, part 1) builds its training frame like this::

    np.random.seed(43052)
    df_train_all = pd.merge(df_ratings, df_movies)
    userId_sampled = np.random.choice(df_train_all.userId.unique(), 5000, replace=False)
    userId_sampled[0] = 46889
    df_train = df_train_all.query("userId in @userId_sampled").reset_index(drop=True)
    df_train["userId"] = df_train.userId.map({u: i for i, u in enumerate(set(df_train.userId))})
    df_train["movieId"] = df_train.movieId.map({m: i for i, m in enumerate(set(df_train.movieId))})
    ... train_test_split(X, y, test_size=0.1, random_state=42)

:func:`course_preprocess` does exactly that, with one trap handled: the row order of
``pd.merge``. The course ran on pandas < 2.2, whose inner merge returned the rows *grouped by the
join key, in order of the key's first appearance in the left frame* (within a group, left rows
keep their order). pandas 2.2 made ``how="inner"`` keep the left frame's row order (whatsnew 2.2.0,
"merge() and DataFrame.join() now consistently follow documented sort behavior", GH 54611; the old
behaviour is shown in GH 55774: left keys ``[1, 2, 3, 1]`` came back ``[1, 1, 2, 3]``). The order
decides ``userId.unique()``'s order and therefore which 5000 users the seeded ``choice`` picks, and
which index each user and film gets. The course's own frame confirms the old order: it starts with
Jumanji (movieId 2, the first film rated in ml-20m's ``ratings.csv``) and is grouped by film.
``merge_order="pre-2.2"`` (the default) reproduces it on any pandas; ``"current"`` is what
``pd.merge`` does on pandas >= 2.2.

Folders in the MovieLens CSV layout (ml-20m, ml-25m, ml-32m, ml-latest-small) are read the same
way: ``ratings.csv`` (userId, movieId, rating[, timestamp]) and ``movies.csv`` (movieId, title,
genres). MovieLens data may not be redistributed, so tests and demos use :func:`generate_synthetic`.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import tempfile
import urllib.request
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from keras_impl import runtime
from keras_impl.registry import command

RATINGS_FILE = "ratings.csv"
MOVIES_FILE = "movies.csv"
RATINGS_COLUMNS = ("userId", "movieId", "rating")  # timestamp is optional
MOVIES_COLUMNS = ("movieId", "title", "genres")
RATING_MIN, RATING_MAX = 0.5, 5.0
MERGE_ORDERS = ("pre-2.2", "current")

# The course's constants (exam part 1).
COURSE_SEED = 43052
COURSE_USERS = 5000
COURSE_FORCED_USER = 46889
COURSE_TEST_SIZE = 0.1
COURSE_SPLIT_SEED = 42


# ----------------------------------------------------------------------------------------------
# Reading and validating a MovieLens folder
# ----------------------------------------------------------------------------------------------


def _line(position: int) -> int:
    """CSV line number of data row ``position`` (line 1 is the header)."""
    return int(position) + 2


def _read_csv(path: Path, what: str) -> pd.DataFrame:
    try:
        return pd.read_csv(path)
    except pd.errors.EmptyDataError:
        raise ValueError(f"{path}: the file is empty (expected a header line with {what})") from None
    except pd.errors.ParserError as err:
        raise ValueError(f"{path}: not a valid CSV file ({str(err).strip()})") from None


def _require_columns(frame: pd.DataFrame, path: Path, required: tuple[str, ...]) -> None:
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise ValueError(
            f"{path}: missing column(s) {', '.join(repr(c) for c in missing)} "
            f"(found: {', '.join(map(str, frame.columns))}; expected {', '.join(required)})"
        )


def _numeric_column(frame: pd.DataFrame, path: Path, column: str, integer: bool) -> np.ndarray:
    """The column as a NumPy array, or a ValueError naming the file, column, value and line."""
    values = frame[column]
    missing = values.isna().to_numpy()
    if missing.any():
        first = int(np.flatnonzero(missing)[0])
        raise ValueError(
            f"{path}: {int(missing.sum())} missing value(s) (NaN/empty) in column {column!r}, "
            f"first at line {_line(first)}"
        )
    if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        coerced = pd.to_numeric(values, errors="coerce").to_numpy()
        bad = np.flatnonzero(np.isnan(coerced.astype("float64")))
        first = int(bad[0]) if len(bad) else 0
        raise ValueError(
            f"{path}: non-numeric value {values.iloc[first]!r} in column {column!r} at line {_line(first)}"
        )
    array = values.to_numpy()
    if integer and not pd.api.types.is_integer_dtype(values):
        fractional = np.flatnonzero(array != np.round(array))
        if len(fractional):
            first = int(fractional[0])
            raise ValueError(
                f"{path}: column {column!r} must hold integer ids; got {array[first].item()!r} at line {_line(first)}"
            )
        array = array.astype("int64")
    return array


def validate_ratings(frame: pd.DataFrame, path: str | os.PathLike = RATINGS_FILE) -> pd.DataFrame:
    """Check a ratings frame and return it with compact dtypes (int32 ids, float32 ratings).

    Raises:
        ValueError: a missing column, NaN, a non-numeric or non-integer id, a rating outside
            0.5..5.0, or duplicate (userId, movieId) pairs; the message names the file, the
            column, a value and its CSV line.
    """
    path = Path(path)
    _require_columns(frame, path, RATINGS_COLUMNS)
    users = _numeric_column(frame, path, "userId", integer=True)
    movies = _numeric_column(frame, path, "movieId", integer=True)
    ratings = _numeric_column(frame, path, "rating", integer=False).astype("float64")
    outside = np.flatnonzero((ratings < RATING_MIN) | (ratings > RATING_MAX))
    if len(outside):
        first = int(outside[0])
        raise ValueError(
            f"{path}: {len(outside)} rating(s) outside {RATING_MIN}..{RATING_MAX} in column 'rating', "
            f"e.g. {float(ratings[first])} at line {_line(first)}"
        )
    out = {"userId": users.astype("int32"), "movieId": movies.astype("int32"),
           "rating": ratings.astype("float32")}
    if "timestamp" in frame.columns:
        out["timestamp"] = _numeric_column(frame, path, "timestamp", integer=True).astype("int64")
    # One key per pair: ids fit in 32 bits, so user * 2**32 + movie is collision free.
    key = users.astype("int64") * (1 << 32) + movies.astype("int64")
    duplicated = pd.Index(key).duplicated(keep="first")
    if duplicated.any():
        first = int(np.flatnonzero(duplicated)[0])
        earlier = int(np.flatnonzero(key == key[first])[0])
        raise ValueError(
            f"{path}: {int(duplicated.sum())} duplicate (userId, movieId) pair(s), e.g. "
            f"({int(users[first])}, {int(movies[first])}) at lines {_line(earlier)} and {_line(first)}"
        )
    return pd.DataFrame(out)


def validate_movies(frame: pd.DataFrame, path: str | os.PathLike = MOVIES_FILE) -> pd.DataFrame:
    """Check a movies frame (movieId, title, genres) and return it with an int32 ``movieId``.

    Raises:
        ValueError: a missing column, a NaN/non-integer ``movieId``, a missing title, or a
            ``movieId`` listed twice (the merge would duplicate ratings).
    """
    path = Path(path)
    _require_columns(frame, path, MOVIES_COLUMNS)
    ids = _numeric_column(frame, path, "movieId", integer=True)
    titles = frame["title"]
    if titles.isna().any():
        first = int(np.flatnonzero(titles.isna().to_numpy())[0])
        raise ValueError(f"{path}: missing title at line {_line(first)}")
    duplicated = pd.Index(ids).duplicated(keep="first")
    if duplicated.any():
        first = int(np.flatnonzero(duplicated)[0])
        raise ValueError(
            f"{path}: {int(duplicated.sum())} duplicate movieId value(s), e.g. {int(ids[first])} at line {_line(first)}"
        )
    return pd.DataFrame({"movieId": ids.astype("int32"), "title": titles.astype(str).to_numpy(),
                         "genres": frame["genres"].fillna("(no genres listed)").astype(str).to_numpy()})


def read_movielens(folder: str | os.PathLike) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read and validate ``ratings.csv`` and ``movies.csv`` from a MovieLens folder.

    Args:
        folder: a folder in the MovieLens CSV layout (ml-20m, ml-25m, ml-32m, ml-latest-small, or
            one written by :func:`generate_synthetic`).

    Returns:
        ``(ratings, movies)``: ratings with int32 ``userId``/``movieId``, float32 ``rating`` and
        int64 ``timestamp`` (when present), in file order; movies with ``movieId``, ``title``,
        ``genres``.

    Raises:
        FileNotFoundError: the folder or one of the two files is missing.
        ValueError: a file's content is invalid (see :func:`validate_ratings`).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(
            f"MovieLens folder {str(folder)!r} does not exist (expected a folder with "
            f"{RATINGS_FILE} and {MOVIES_FILE}, e.g. an unpacked ml-20m.zip; "
            f"`kcourse data download ml-latest-small --to DIR` fetches one)"
        )
    for name in (RATINGS_FILE, MOVIES_FILE):
        if not (folder / name).is_file():
            raise FileNotFoundError(f"{folder / name}: file not found (a MovieLens folder needs "
                                    f"{RATINGS_FILE} and {MOVIES_FILE})")
    ratings = validate_ratings(_read_csv(folder / RATINGS_FILE, ", ".join(RATINGS_COLUMNS)), folder / RATINGS_FILE)
    movies = validate_movies(_read_csv(folder / MOVIES_FILE, ", ".join(MOVIES_COLUMNS)), folder / MOVIES_FILE)
    return ratings, movies


# ----------------------------------------------------------------------------------------------
# The course preprocessing
# ----------------------------------------------------------------------------------------------


def merge_rows(ratings: pd.DataFrame, movies: pd.DataFrame, merge_order: str = "pre-2.2") -> np.ndarray:
    """Row numbers of ``ratings`` in the order ``pd.merge(ratings, movies)`` returns them.

    ``movies.movieId`` must be unique (checked by :func:`validate_movies`), so each kept rating
    appears once; ratings of films missing from ``movies`` are dropped, as by an inner merge.

    Args:
        merge_order: ``"pre-2.2"``: pandas < 2.2 (what the course ran): rows grouped by movieId in
            order of the id's first appearance in ``ratings``, rows within a group in file order.
            ``"current"``: pandas >= 2.2: the rows of ``ratings`` in file order.

    Returns:
        ``[N]`` int64 row positions into ``ratings``.
    """
    if merge_order not in MERGE_ORDERS:
        raise ValueError(f"Received an invalid value for argument `merge_order`: expected one of "
                         f"{', '.join(MERGE_ORDERS)}, got {merge_order!r}")
    movie_ids = ratings["movieId"].to_numpy()
    kept = np.flatnonzero(pd.Index(movies["movieId"].to_numpy()).get_indexer(movie_ids) >= 0)
    if merge_order == "current":
        return kept
    # Old pandas factorised the keys in order of first appearance in the left frame and then
    # grouped the rows by code with a stable counting sort (libjoin.inner_join); a stable argsort
    # of the first-appearance codes is the same permutation.
    codes, _ = pd.factorize(movie_ids[kept])
    return kept[np.argsort(codes, kind="stable")]


def course_merge(ratings: pd.DataFrame, movies: pd.DataFrame, merge_order: str = "pre-2.2") -> pd.DataFrame:
    """``pd.merge(ratings, movies)`` with the row order of ``merge_order`` (see :func:`merge_rows`)."""
    rows = merge_rows(ratings, movies, merge_order)
    merged = ratings.iloc[rows].reset_index(drop=True)
    position = pd.Index(movies["movieId"].to_numpy()).get_indexer(merged["movieId"].to_numpy())
    for column in movies.columns:
        if column != "movieId":
            merged[column] = movies[column].to_numpy()[position]
    return merged


@dataclasses.dataclass
class CourseData:
    """The course's ``df_train`` and split, with the way back to MovieLens ids and titles.

    Attributes:
        frame: ``df_train``: userId and movieId re-indexed from 0, rating, timestamp, title, genres.
        user_ids: ``[n_users]`` original userId of each user index.
        movie_ids: ``[n_movies]`` original movieId of each movie index.
        titles: ``[n_movies]`` title of each movie index.
        genres: ``[n_movies]`` each movie index's ``genres`` field (``"Crime|Thriller"``).
        x_train, x_val: ``[N, 2]`` int32 (user index, movie index).
        y_train, y_val: ``[N, 1]`` float32 ratings.
        rows_train, rows_val: ``[N]`` row number in ``ratings.csv`` of each example (to look up
            the synthetic generator's true expected rating).
        merge_order: the merge row order used.
    """

    frame: pd.DataFrame
    user_ids: np.ndarray
    movie_ids: np.ndarray
    titles: np.ndarray
    x_train: np.ndarray
    x_val: np.ndarray
    y_train: np.ndarray
    y_val: np.ndarray
    rows_train: np.ndarray
    rows_val: np.ndarray
    merge_order: str = "pre-2.2"
    genres: np.ndarray | None = None

    def genre_matrix(self) -> tuple[np.ndarray, list[str]]:
        """``(matrix [n_movies, G], names)``: :func:`genre_matrix` of :attr:`genres`."""
        genres = self.genres if self.genres is not None else np.full(self.n_movies, NO_GENRES, dtype=object)
        return genre_matrix(genres)

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_movies(self) -> int:
        return len(self.movie_ids)

    def seen(self) -> tuple[np.ndarray, np.ndarray]:
        """Each user's rated films (train and val) as CSR arrays ``(indptr [U+1], indices)``."""
        users = self.frame["userId"].to_numpy()
        order = np.argsort(users, kind="stable")
        indptr = np.zeros(self.n_users + 1, dtype="int64")
        np.cumsum(np.bincount(users, minlength=self.n_users), out=indptr[1:])
        return indptr, self.frame["movieId"].to_numpy()[order].astype("int32")


NO_GENRES = "(no genres listed)"  # MovieLens' value for a film without genres


def genre_matrix(genres) -> tuple[np.ndarray, list[str]]:
    """Films' ``genres`` fields (``"Action|Comedy"``) as rows of weights over the genre names.

    Returns ``(matrix [n_films, G] float32, names [G] sorted)``: a film's row is ``1 / k`` on each
    of its ``k`` genres, so ``matrix @ table`` is the mean of its genres' rows; a film listed as
    ``(no genres listed)`` (or empty) gets a zero row.
    """
    fields = [str(g) for g in np.asarray(genres, dtype=object).reshape(-1)]
    split = [{name for name in field.split("|") if name and name != NO_GENRES} for field in fields]
    names = sorted(set().union(*split))
    column = {name: j for j, name in enumerate(names)}
    matrix = np.zeros((len(fields), len(names)), dtype="float32")
    for i, film_genres in enumerate(split):
        for name in film_genres:
            matrix[i, column[name]] = 1.0 / len(film_genres)
    return matrix, names


def sample_users(user_order: np.ndarray, n_users: int = COURSE_USERS, seed: int = COURSE_SEED,
                 forced_user: int | None = COURSE_FORCED_USER) -> np.ndarray:
    """The course's ``np.random.choice(unique, n, replace=False); sampled[0] = forced``.

    ``np.random.seed(seed)`` followed by ``np.random.choice`` draws the same numbers as
    ``RandomState(seed).choice`` (nothing between the two calls in the course uses the generator).
    When the data holds no more than ``n_users`` users (small or synthetic folders), every user is
    kept: the course's call would fail (``n`` larger than the population) or drop a user.
    """
    if n_users <= 0:
        raise ValueError(f"Received an invalid value for argument `n_users`: expected > 0, got {n_users}")
    if len(user_order) <= n_users:
        return np.asarray(user_order).copy()
    sampled = np.random.RandomState(seed).choice(user_order, n_users, replace=False)
    if forced_user is not None:
        sampled[0] = forced_user
    return sampled


def course_preprocess(ratings: pd.DataFrame, movies: pd.DataFrame, *, merge_order: str = "pre-2.2",
                      n_users: int = COURSE_USERS, seed: int = COURSE_SEED,
                      forced_user: int | None = COURSE_FORCED_USER, test_size: float = COURSE_TEST_SIZE,
                      split_seed: int = COURSE_SPLIT_SEED) -> CourseData:
    """The exam's preprocessing, step by step (see the module docstring), on validated frames.

    Works on the merge's row numbers and adds titles only to the sampled rows, so a 20M-rating
    folder fits in a few GiB; the result equals the course's ``df_train``.
    """
    import sklearn.model_selection

    if not 0 < test_size < 1:
        raise ValueError(f"Received an invalid value for argument `test_size`: expected 0 < test_size < 1, got {test_size}")
    rows = merge_rows(ratings, movies, merge_order)  # df_train_all, as row numbers into ratings
    users_all = ratings["userId"].to_numpy()[rows]
    sampled = sample_users(pd.unique(users_all), n_users, seed, forced_user)
    rows = rows[np.isin(users_all, sampled)]  # query("userId in @userId_sampled"): keeps the order
    if len(rows) < 2:
        raise ValueError(f"the sampled users have {len(rows)} rating(s); need at least 2 to split")
    user_col = ratings["userId"].to_numpy()[rows]
    movie_col = ratings["movieId"].to_numpy()[rows]
    # Exactly the course's construction: a set built from the column in row order, enumerated.
    # Iteration order of a set of ints is fixed for given values and insertion order in CPython.
    user_map = {user: i for i, user in enumerate(set(user_col.tolist()))}
    movie_map = {movie: i for i, movie in enumerate(set(movie_col.tolist()))}
    user_ids = np.fromiter(user_map, dtype="int64")  # dicts keep insertion order: index i -> id
    movie_ids = np.fromiter(movie_map, dtype="int64")
    user_index = pd.Index(user_ids).get_indexer(user_col).astype("int32")
    movie_index = pd.Index(movie_ids).get_indexer(movie_col).astype("int32")
    title_position = pd.Index(movies["movieId"].to_numpy()).get_indexer(movie_ids)
    titles = movies["title"].to_numpy()[title_position]
    genres = movies["genres"].to_numpy()[title_position]
    frame = pd.DataFrame({"userId": user_index, "movieId": movie_index,
                          "rating": ratings["rating"].to_numpy()[rows]})
    if "timestamp" in ratings.columns:
        frame["timestamp"] = ratings["timestamp"].to_numpy()[rows]
    frame["title"] = titles[movie_index]
    frame["genres"] = genres[movie_index]
    x = np.stack([user_index, movie_index], axis=1)  # [N, 2]
    y = frame["rating"].to_numpy().astype("float32").reshape(-1, 1)  # [N, 1]
    x_train, x_val, y_train, y_val, rows_train, rows_val = sklearn.model_selection.train_test_split(
        x, y, rows, test_size=test_size, random_state=split_seed)
    return CourseData(frame=frame, user_ids=user_ids, movie_ids=movie_ids, titles=titles.astype(str), genres=genres.astype(str),
                      x_train=x_train, x_val=x_val, y_train=y_train, y_val=y_val,
                      rows_train=rows_train, rows_val=rows_val, merge_order=merge_order)


def load_course_data(folder: str | os.PathLike, **kwargs) -> CourseData:
    """:func:`read_movielens` then :func:`course_preprocess` (keyword arguments go to the latter)."""
    ratings, movies = read_movielens(folder)
    return course_preprocess(ratings, movies, **kwargs)


# ----------------------------------------------------------------------------------------------
# Synthetic MovieLens
# ----------------------------------------------------------------------------------------------

TRUTH_FILE = "synthetic_truth.npz"
INFO_FILE = "SYNTHETIC.json"
# Bump when generate_synthetic's output changes for the same spec, so cached folders are remade.
GENERATOR_VERSION = 2
GENRES = ("Action", "Adventure", "Animation", "Children", "Comedy", "Crime", "Documentary", "Drama",
          "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller",
          "War", "Western")
_WORDS_A = ("Silent", "Last", "Red", "Lost", "Dark", "Golden", "Broken", "Wild", "Hidden", "Usual",
            "Midnight", "Electric", "Frozen", "Little", "Big", "Secret", "Iron", "Crimson", "Empty", "Final")
_WORDS_B = ("River", "Suspects", "City", "Garden", "Heat", "Road", "Kingdom", "Letter", "Machine",
            "Island", "Summer", "Witness", "Harbor", "Circus", "Echo", "Frontier", "Signal", "Orchard",
            "Mirror", "Storm")

# name -> (users, films, ratings). "course" is the size of the course's df_train after sampling;
# "20m" is ml-20m (138,493 users, 26,744 films, 20,000,263 ratings).
SYNTHETIC_SIZES = {
    "tiny": (60, 80, 1_500),
    "small": (500, 1_000, 40_000),
    "course": (5_000, 11_000, 721_484),
    "20m": (138_493, 26_744, 20_000_263),
}


@dataclasses.dataclass(frozen=True)
class SyntheticSpec:
    """Parameters of the synthetic generator (the latent-factor model behind the ratings).

    A user's expected opinion of a film is ``mu + b_u + b_m + p_u . q_m``; the observed rating is
    that plus N(0, noise) noise, rounded to half stars and clipped to 0.5..5.0.
    """

    n_users: int
    n_movies: int
    n_ratings: int
    rank: int = 4
    factor_std: float = 0.40  # std of each entry of p_u and q_m: var(p.q) = rank * std**4 ~ 0.10
    user_bias_std: float = 0.4
    movie_bias_std: float = 0.5
    mean: float = 3.5
    noise: float = 0.85
    popularity_exponent: float = 0.8  # film popularity ~ rank ** -exponent (Zipf)
    activity_sigma: float = 1.1  # user activity: 20 + lognormal, heavy right tail
    min_user_ratings: int = 20  # as in ml-20m: every user rated at least 20 films
    seed: int = 0


def expected_rating(r_true: np.ndarray, noise: float) -> np.ndarray:
    """E[observed rating] when ``observed = clip(round_half(r_true + N(0, noise)), 0.5, 5)``.

    Half-star value ``v`` is observed when ``r_true + eps`` falls in ``[v - 0.25, v + 0.25)``,
    0.5 absorbs everything below 0.75 and 5.0 everything from 4.75 up. So
    ``E = sum_v v * (Phi((hi_v - r)/s) - Phi((lo_v - r)/s))``.
    """
    from scipy.special import ndtr

    values = np.arange(1, 11) * 0.5  # 0.5 .. 5.0
    edges = np.concatenate([[-np.inf], values[:-1] + 0.25, [np.inf]])  # [11]
    r = np.asarray(r_true, dtype="float64")[..., None]
    cdf = ndtr((edges - r) / noise)  # [..., 11]
    return ((cdf[..., 1:] - cdf[..., :-1]) * values).sum(-1)


def _user_counts(spec: SyntheticSpec, rng: np.random.Generator) -> np.ndarray:
    """Ratings per user: at least ``min_user_ratings``, lognormal tail, summing to ``n_ratings``."""
    floor = min(spec.min_user_ratings, spec.n_ratings // spec.n_users, spec.n_movies)
    cap = max(floor, int(spec.n_movies * 0.6))
    if spec.n_ratings > cap * spec.n_users:
        raise ValueError(f"Received an invalid value for argument `n_ratings`: {spec.n_ratings} ratings do not fit "
                         f"{spec.n_users} users x {spec.n_movies} films (at most {cap * spec.n_users})")
    weights = rng.lognormal(0.0, spec.activity_sigma, spec.n_users)
    counts = np.full(spec.n_users, floor, dtype="int64")
    extra = spec.n_ratings - counts.sum()
    for _ in range(50):  # hand the extra ratings out by weight, respecting the cap
        room = cap - counts
        w = np.where(room > 0, weights, 0.0)
        if extra <= 0 or w.sum() == 0:
            break
        share = w / w.sum() * extra
        add = np.minimum(np.floor(share).astype("int64"), room)
        left = int(extra - add.sum())
        if left > 0:  # the remainder: one more each to the largest fractional parts with room
            frac = np.where(room - add > 0, share - np.floor(share), -1.0)
            top = np.argsort(-frac, kind="stable")[:left]
            add[top[frac[top] >= 0]] += 1
        counts += add
        extra = spec.n_ratings - counts.sum()
    assert counts.sum() == spec.n_ratings, "user counts do not add up"
    return counts


def _sample_pairs(counts: np.ndarray, popularity: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Distinct (user, film) pairs, ``counts[u]`` per user, films drawn by ``popularity``.

    Weighted sampling without replacement per user, done for all users at once: draw with
    replacement, drop repeated pairs, draw again for the users still short (a few rounds).
    """
    n_users, n_movies = len(counts), len(popularity)
    cdf = np.cumsum(popularity / popularity.sum())
    keys = np.empty(0, dtype="int64")
    have = np.zeros(n_users, dtype="int64")
    for _ in range(12):
        need = counts - have
        if need.sum() == 0:
            break
        users = np.repeat(np.arange(n_users, dtype="int64"), np.ceil(need * 1.1).astype("int64") + 1)
        films = np.minimum(np.searchsorted(cdf, rng.random(len(users))), n_movies - 1)
        keys = np.unique(np.concatenate([keys, users * n_movies + films]))  # sorted by user
        user_of = keys // n_movies
        # keep at most counts[u] pairs per user, chosen at random among the distinct ones
        rank_in_user = _rank_within_groups(user_of, rng)
        keys = keys[rank_in_user < counts[user_of]]
        have = np.bincount(keys // n_movies, minlength=n_users)
    need = counts - have
    for user in np.flatnonzero(need):  # heavy users that keep colliding: exact top-k by Gumbel
        taken = keys[keys // n_movies == user] % n_movies
        score = np.log(popularity) + rng.gumbel(size=n_movies)
        score[taken] = -np.inf
        extra = np.argpartition(-score, need[user])[: need[user]]
        keys = np.concatenate([keys, user * n_movies + extra])
    keys.sort()
    return keys // n_movies, keys % n_movies


def _rank_within_groups(groups: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random rank 0..k-1 of each element within its group (``groups`` sorted)."""
    order = np.lexsort((rng.random(len(groups)), groups))
    starts = np.searchsorted(groups[order], groups[order], side="left")
    ranks = np.empty(len(groups), dtype="int64")
    ranks[order] = np.arange(len(groups)) - starts
    return ranks


def _titles(n_movies: int, years: np.ndarray, rng: np.random.Generator) -> list[str]:
    a = rng.integers(0, len(_WORDS_A), n_movies)
    b = rng.integers(0, len(_WORDS_B), n_movies)
    seen: dict[str, int] = {}
    titles = []
    for i in range(n_movies):
        base = f"{_WORDS_A[a[i]]} {_WORDS_B[b[i]]}"
        key = f"{base} ({years[i]})"
        seen[key] = seen.get(key, 0) + 1
        # MovieLens titles can repeat, but unique ones make tests and top-N lists readable.
        titles.append(key if seen[key] == 1 else f"{base} {_roman(seen[key])} ({years[i]})")
    return titles


def _roman(n: int) -> str:
    out = ""
    for value, digits in ((1000, "M"), (900, "CM"), (500, "D"), (400, "CD"), (100, "C"), (90, "XC"),
                          (50, "L"), (40, "XL"), (10, "X"), (9, "IX"), (5, "V"), (4, "IV"), (1, "I")):
        while n >= value:
            out, n = out + digits, n - value
    return out


def generate_synthetic(folder: str | os.PathLike, spec: SyntheticSpec | str = "small", seed: int | None = None) -> dict:
    """Write a synthetic MovieLens folder (``ratings.csv``, ``movies.csv``) and its ground truth.

    Users' activity and films' popularity follow heavy-tailed laws (lognormal activity with a
    floor of 20 ratings, Zipf popularity); ratings are half stars from a rank-``rank`` latent
    factor model plus noise (see :class:`SyntheticSpec`); titles and genres are made up (each
    film's genres follow its strongest latent factors, so "thriller fans" exist). Rows are sorted
    by userId then movieId, as in ml-20m, which matters for the merge order.

    Also writes ``synthetic_truth.npz`` (the expected rating of each row of ``ratings.csv``, for
    oracle MSEs: see :func:`oracle_mse`) and ``SYNTHETIC.json`` (spec and oracle MSE over all rows).

    Args:
        folder: the folder to create (written atomically; an existing one is replaced).
        spec: a :class:`SyntheticSpec`, or a size name from :data:`SYNTHETIC_SIZES`.
        seed: overrides ``spec.seed``.

    Returns:
        The ``SYNTHETIC.json`` content: spec, counts and ``oracle_mse``.
    """
    if isinstance(spec, str):
        if spec not in SYNTHETIC_SIZES:
            raise ValueError(f"Received an invalid value for argument `spec`: expected a SyntheticSpec or one of "
                             f"{', '.join(SYNTHETIC_SIZES)}, got {spec!r}")
        users, films, n = SYNTHETIC_SIZES[spec]
        spec = SyntheticSpec(users, films, n)
    if seed is not None:
        spec = dataclasses.replace(spec, seed=seed)
    for name in ("n_users", "n_movies", "n_ratings", "rank"):
        if getattr(spec, name) < 1:
            raise ValueError(f"Received an invalid value for argument `{name}`: expected >= 1, got {getattr(spec, name)}")
    rng = np.random.default_rng(spec.seed)
    # Films: sparse ids as in MovieLens, Zipf popularity in random id order, a year, latent traits.
    movie_ids = np.sort(rng.choice(np.arange(1, 5 * spec.n_movies + 1), spec.n_movies, replace=False))
    popularity = (1.0 + rng.permutation(spec.n_movies)) ** -spec.popularity_exponent
    counts = _user_counts(spec, rng)
    users, films = _sample_pairs(counts, popularity, rng)  # [N], [N], sorted by user then film
    p = rng.normal(0, spec.factor_std, (spec.n_users, spec.rank)).astype("float32")
    q = rng.normal(0, spec.factor_std, (spec.n_movies, spec.rank)).astype("float32")
    b_user = rng.normal(0, spec.user_bias_std, spec.n_users).astype("float32")
    b_movie = rng.normal(0, spec.movie_bias_std, spec.n_movies).astype("float32")
    n = len(users)
    r_true = np.empty(n, dtype="float32")
    expected = np.empty(n, dtype="float32")
    observed = np.empty(n, dtype="float32")
    for start in range(0, n, 2_000_000):  # chunks keep the [chunk, rank] temporaries small
        sl = slice(start, min(n, start + 2_000_000))
        u, m = users[sl], films[sl]
        r = spec.mean + b_user[u] + b_movie[m] + np.einsum("ij,ij->i", p[u], q[m])  # per-row dot
        r_true[sl] = r
        expected[sl] = expected_rating(r, spec.noise)
        noisy = r + rng.normal(0, spec.noise, len(r))
        observed[sl] = np.clip(np.round(noisy * 2) / 2, RATING_MIN, RATING_MAX)
    oracle = float(np.mean((observed.astype("float64") - expected) ** 2))
    years = rng.integers(1920, 2015, spec.n_movies)
    order = np.argsort(-q, axis=1)[:, :2]  # strongest two traits -> genres
    genre_names = ["|".join(sorted({GENRES[(2 * k) % len(GENRES)] if q[i, k] > 0 else GENRES[(2 * k + 1) % len(GENRES)]
                                    for k in order[i]})) for i in range(spec.n_movies)]
    start_time = rng.integers(789_652_009, 1_420_000_000, spec.n_users)
    timestamps = start_time[users] + rng.integers(0, 3 * 365 * 86400, n)
    ratings = pd.DataFrame({"userId": (users + 1).astype("int64"), "movieId": movie_ids[films],
                            "rating": observed.astype("float64"), "timestamp": timestamps})
    movies = pd.DataFrame({"movieId": movie_ids, "title": _titles(spec.n_movies, years, rng), "genres": genre_names})
    info = {"spec": dataclasses.asdict(spec), "generator_version": GENERATOR_VERSION, "n_users": int(spec.n_users), "n_movies": int(spec.n_movies),
            "n_ratings": int(n), "oracle_mse": oracle,
            "note": "oracle_mse = mean squared error of the true expected rating over all rows; "
                    "keras_impl.movielens.oracle_mse gives it on a validation split"}
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    with runtime.atomic_directory(folder) as tmp:
        ratings.to_csv(tmp / RATINGS_FILE, index=False, chunksize=1_000_000)
        movies.to_csv(tmp / MOVIES_FILE, index=False)
        np.savez(tmp / TRUTH_FILE, expected=expected, r_true=r_true, user_factors=p, movie_factors=q,
                 user_bias=b_user, movie_bias=b_movie)
        runtime.atomic_write_json(tmp / INFO_FILE, info)
    return info


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


def cache_root() -> Path:
    """Where generated and downloaded data live: ``$KCOURSE_CACHE`` or ``~/.cache/kcourse``."""
    return Path(os.environ.get("KCOURSE_CACHE") or Path.home() / ".cache" / "kcourse")


def synthetic_folder(size: str = "course", seed: int = 0, root: str | os.PathLike | None = None) -> Path:
    """A cached synthetic folder of a named size, generated on first use."""
    if size not in SYNTHETIC_SIZES:
        raise ValueError(f"Received an invalid value for argument `synthetic_size`: expected one of "
                         f"{', '.join(SYNTHETIC_SIZES)}, got {size!r}")
    folder = Path(root or cache_root()) / "movielens-synthetic" / f"{size}__seed{seed}"
    if not _cache_is_current(folder, size, seed):
        generate_synthetic(folder, size, seed=seed)
    return folder


def _cache_is_current(folder: Path, size: str, seed: int) -> bool:
    """True when ``folder`` is complete and was written by this generator for this spec.

    A folder left by an older generator (other spec defaults or GENERATOR_VERSION) would silently
    give other data and another oracle MSE, so it is regenerated instead of reused.
    """
    if not runtime.is_complete(folder) or not (folder / INFO_FILE).is_file():
        return False
    try:
        info = json.loads((folder / INFO_FILE).read_text())
    except (OSError, json.JSONDecodeError):
        return False
    users, films, n = SYNTHETIC_SIZES[size]
    wanted = dataclasses.asdict(SyntheticSpec(users, films, n, seed=seed))
    return info.get("spec") == wanted and info.get("generator_version") == GENERATOR_VERSION


# ----------------------------------------------------------------------------------------------
# kcourse data download
# ----------------------------------------------------------------------------------------------

GROUPLENS_URL = "https://files.grouplens.org/datasets/movielens"
DATASETS = ("ml-latest-small", "ml-20m", "ml-25m", "ml-32m")


def _md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def download(name: str, to: str | os.PathLike, base_url: str = GROUPLENS_URL, md5: str | None = None,
             timeout: float = 60.0) -> Path:
    """Download ``{base_url}/{name}.zip``, check its MD5 and unpack it to ``{to}/{name}``.

    The checksum is ``md5`` when given, else the ``{name}.zip.md5`` file GroupLens publishes
    next to each archive. The archive is fetched to a temporary file and unpacked into a temporary
    sibling folder that is moved into place only when complete (with a ``COMPLETE`` marker), so an
    interrupted download never looks like a dataset.

    Returns:
        The dataset folder (``{to}/{name}``, holding ratings.csv and movies.csv).

    Raises:
        ValueError: unknown name, checksum mismatch, or an archive without ratings/movies files.
        OSError: network errors (``urllib.error.URLError``).
    """
    if name not in DATASETS:
        raise ValueError(f"Received an invalid value for argument `name`: expected one of {', '.join(DATASETS)}, got {name!r}")
    target = Path(to) / name
    if runtime.is_complete(target):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    url = f"{base_url.rstrip('/')}/{name}.zip"
    if md5 is None:
        with urllib.request.urlopen(url + ".md5", timeout=timeout) as response:
            md5 = response.read().decode().split()[0]
    fd, tmp_zip = tempfile.mkstemp(dir=target.parent, prefix=f".{name}.", suffix=".zip.part")
    try:
        with os.fdopen(fd, "wb") as handle, urllib.request.urlopen(url, timeout=timeout) as response:
            total = int(response.headers.get("Content-Length") or 0) or None
            bar = runtime.progress(total=total, desc=f"{name}.zip")
            for block in iter(lambda: response.read(1 << 20), b""):
                handle.write(block)
                bar.update(len(block))
            bar.close()
        got = _md5(Path(tmp_zip))
        if got != md5.lower():
            raise ValueError(f"{url}: checksum mismatch (md5 {got}, expected {md5.lower()}); the download is "
                             f"corrupt or incomplete and was deleted")
        with runtime.atomic_directory(target) as tmp_dir, zipfile.ZipFile(tmp_zip) as archive:
            members = archive.namelist()
            for member in members:  # no absolute paths or '..' (zip slip)
                if member.startswith("/") or ".." in Path(member).parts:
                    raise ValueError(f"{url}: unsafe path {member!r} in the archive")
            archive.extractall(tmp_dir)
            inner = tmp_dir / name  # GroupLens zips hold one folder named like the archive
            if inner.is_dir():
                for item in inner.iterdir():
                    shutil.move(str(item), tmp_dir / item.name)
                inner.rmdir()
            for needed in (RATINGS_FILE, MOVIES_FILE):
                if not (tmp_dir / needed).is_file():
                    raise ValueError(f"{url}: the archive has no {needed}")
            runtime.atomic_write_json(tmp_dir / "DOWNLOAD.json", {"url": url, "md5": got})
    finally:
        if os.path.exists(tmp_zip):
            os.unlink(tmp_zip)
    return target


@command("data", help="MovieLens data: `data download NAME --to DIR`, `data synthetic SIZE --to DIR`")
def configure_data(parser) -> None:
    """``kcourse data download`` and ``kcourse data synthetic``."""
    subs = parser.add_subparsers(dest="data_command", required=True)
    dl = subs.add_parser("download", help="download and unpack a MovieLens archive (needs a network)")
    dl.add_argument("name", choices=DATASETS)
    dl.add_argument("--to", required=True, help="parent folder; the data lands in TO/NAME")
    dl.add_argument("--base-url", default=GROUPLENS_URL, help="mirror to download from (default: GroupLens)")
    dl.add_argument("--md5", default=None, help="expected MD5 (default: the server's NAME.zip.md5 file)")
    dl.set_defaults(handler=_download_handler)
    syn = subs.add_parser("synthetic", help="write a synthetic MovieLens-layout folder")
    syn.add_argument("size", choices=tuple(SYNTHETIC_SIZES))
    syn.add_argument("--to", required=True, help="folder to write")
    syn.add_argument("--seed", type=int, default=0)
    syn.set_defaults(handler=_synthetic_handler)


def _download_handler(args) -> int:
    import urllib.error

    try:
        folder = download(args.name, args.to, base_url=args.base_url, md5=args.md5)
    except urllib.error.URLError as err:
        raise ValueError(f"download of {args.name} failed: {err.reason}") from None
    print(f"{args.name}: {folder}")
    return 0


def _synthetic_handler(args) -> int:
    info = generate_synthetic(args.to, args.size, seed=args.seed)
    print(f"synthetic {args.size}: {info['n_users']} users, {info['n_movies']} films, {info['n_ratings']} ratings, "
          f"oracle MSE {info['oracle_mse']:.4f} -> {args.to}")
    return 0


__all__ = [
    "read_movielens", "validate_ratings", "validate_movies", "merge_rows", "course_merge", "course_preprocess",
    "load_course_data", "CourseData", "genre_matrix", "SyntheticSpec", "generate_synthetic", "oracle_mse", "synthetic_folder",
    "expected_rating", "download",
]
