"""The course's preprocessing of a MovieLens folder (exam part 1), merge order included.

See :mod:`keras_impl.movielens` for the course's code and the pandas 2.2 merge-order trap.
"""
from __future__ import annotations

import dataclasses
import os
import warnings

import numpy as np
import pandas as pd

from keras_impl.movielens.readers import movies_file, read_movielens
from keras_impl.movielens.validation import MERGE_ORDERS, NO_GENRES

# The course's constants (exam part 1).
COURSE_SEED = 43052
COURSE_USERS = 5000
COURSE_FORCED_USER = 46889
COURSE_TEST_SIZE = 0.1
COURSE_SPLIT_SEED = 42


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
    n_dropped: int = 0  # ratings whose movieId is not in the films file (dropped by the inner merge)

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
        indptr, films = films_by_user(self.frame["userId"].to_numpy(), self.frame["movieId"].to_numpy(), self.n_users)
        return indptr, films.astype("int32")


def films_by_user(users: np.ndarray, films: np.ndarray, n_users: int) -> tuple[np.ndarray, np.ndarray]:
    """Rating pairs grouped by user as CSR arrays ``(indptr [n_users + 1], films)``: user ``u``'s
    films are ``films[indptr[u]:indptr[u + 1]]``, in their original order."""
    users = np.asarray(users)
    order = np.argsort(users, kind="stable")
    indptr = np.zeros(n_users + 1, dtype="int64")
    np.cumsum(np.bincount(users, minlength=n_users), out=indptr[1:])
    return indptr, np.asarray(films)[order]


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
        if forced_user in set(np.asarray(user_order).tolist()):
            sampled[0] = forced_user
        else:  # forcing an absent user left n_users - 1 users (and 0 ratings with --users 1)
            warnings.warn(f"the course's forced user (userId {forced_user}, of ml-20m) is not in this data: "
                          f"{n_users} users sampled without it", CourseDataWarning, stacklevel=2)
    return sampled


class CourseDataWarning(UserWarning):
    """Something about the data the run should say (printed as one ``warning: ...`` line by the exercise)."""


class DroppedRatingsWarning(CourseDataWarning):
    """Ratings of films missing from the films file were dropped by the merge (as the course's inner merge does)."""


def dropped_ratings_message(ratings: pd.DataFrame, movies: pd.DataFrame, movies_name: str = "movies.csv") -> str:
    """``""`` when every rating's movieId is in ``movies``, else one line with the count and an example id."""
    movie_ids = ratings["movieId"].to_numpy()
    missing = pd.Index(movies["movieId"].to_numpy()).get_indexer(movie_ids) < 0
    if not missing.any():
        return ""
    return (f"{int(missing.sum()):,} of {len(movie_ids):,} rating(s) ({100 * missing.mean():.1f}%) have a movieId "
            f"that is not in {movies_name} (e.g. movieId {int(movie_ids[np.flatnonzero(missing)[0]])}) and were "
            f"dropped by the merge")


def course_preprocess(ratings: pd.DataFrame, movies: pd.DataFrame, *, merge_order: str = "pre-2.2",
                      n_users: int = COURSE_USERS, seed: int = COURSE_SEED,
                      forced_user: int | None = COURSE_FORCED_USER, test_size: float = COURSE_TEST_SIZE,
                      split_seed: int = COURSE_SPLIT_SEED, movies_name: str = "movies.csv") -> CourseData:
    """The exam's preprocessing, step by step (see the module docstring), on validated frames.

    Works on the merge's row numbers and adds titles only to the sampled rows, so a 20M-rating
    folder fits in a few GiB; the result equals the course's ``df_train``. Ratings whose movieId is
    not in ``movies`` are dropped, as by the course's inner merge, with a
    :class:`DroppedRatingsWarning` that gives their count (``CourseData.n_dropped``).

    Raises:
        ValueError: fewer than 2 ratings are left to split; the message names the cause when the
            merge dropped ratings (``movies_name`` is the films file named in it).
    """
    # Imported here: scikit-learn takes seconds to import and only the split needs it, while the
    # constants of this package are read by the command line's help.
    import sklearn.model_selection

    if not 0 < test_size < 1:
        raise ValueError(f"Received an invalid value for argument `test_size`: expected 0 < test_size < 1, got {test_size}")
    rows = merge_rows(ratings, movies, merge_order)  # df_train_all, as row numbers into ratings
    n_dropped = len(ratings) - len(rows)
    dropped = dropped_ratings_message(ratings, movies, movies_name) if n_dropped else ""
    if dropped:
        warnings.warn(dropped, DroppedRatingsWarning, stacklevel=2)
    users_all = ratings["userId"].to_numpy()[rows]
    sampled = sample_users(pd.unique(users_all), n_users, seed, forced_user)
    rows = rows[np.isin(users_all, sampled)]  # query("userId in @userId_sampled"): keeps the order
    n_present = len(pd.unique(users_all))
    if n_present < 2:  # one user trained, then NDCG 0 and an empty top-N without a word
        raise ValueError(f"the ratings hold {n_present} user(s) after the merge with {movies_name}; a recommender "
                         f"needs at least 2 users" + (f" ({dropped})" if dropped else ""))
    n_kept = len(pd.unique(ratings["userId"].to_numpy()[rows]))
    if n_kept < 2 or len(rows) < 2:
        raise ValueError(f"Received an invalid value for argument `users`: expected at least 2 sampled users with "
                         f"at least 2 ratings, got {n_users} ({n_kept} user(s), {len(rows)} rating(s)); the data "
                         f"holds {n_present:,} users")
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
                      rows_train=rows_train, rows_val=rows_val, merge_order=merge_order, n_dropped=n_dropped)


def load_course_data(folder: str | os.PathLike, **kwargs) -> CourseData:
    """:func:`read_movielens` then :func:`course_preprocess` (keyword arguments go to the latter)."""
    ratings, movies = read_movielens(folder)
    kwargs.setdefault("movies_name", movies_file(folder))
    return course_preprocess(ratings, movies, **kwargs)



def course_index(value, ids: np.ndarray, by: str, argument: str, what: str) -> int:
    """The course index of a user or film given ``by`` its course index or its MovieLens id.

    Args:
        value: the index (``by="index"``) or the MovieLens ``userId``/``movieId`` (``by="id"``).
        ids: ``[n]`` MovieLens id of each course index (``CourseData.user_ids`` / ``movie_ids``).
        by: ``"index"`` or ``"id"``.
        argument: the argument's name for the error (``user``, ``movie``).
        what: ``"user"`` or ``"movie"``.

    Raises:
        ValueError: ``by`` is neither, ``value`` is not an integer (1.7 is not silently 1), an index
            out of range or an unknown id; the message names the argument and the value.
    """
    if by not in ("index", "id"):
        raise ValueError(f"Received an invalid value for argument `by`: expected 'index' or 'id', got {by!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = float("nan")
    if isinstance(value, bool) or not number.is_integer():
        raise ValueError(f"Received an invalid value for argument `{argument}`: expected an integer {by}, got {value!r}")
    number, n = int(number), len(ids)
    plural = "users" if what == "user" else "films"
    if by == "index":
        if not 0 <= number < n:
            raise ValueError(f"Received an invalid value for argument `{argument}`: {what} index {number} is out of "
                             f"range (the model knows {n} {plural}, indices 0..{n - 1})")
        return number
    found = np.flatnonzero(np.asarray(ids) == number)
    if not len(found):
        raise ValueError(f"Received an invalid value for argument `{argument}`: {what}Id {number} is not in the "
                         f"training data ({n} {plural}; pass by='index' for a course index)")
    return int(found[0])
