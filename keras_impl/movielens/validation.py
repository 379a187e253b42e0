"""Validation of MovieLens ratings and films, whatever the file layout they were read from.

Every problem is a ``ValueError`` that names the file, the column, a value and its line. The
readers (:mod:`~keras_impl.movielens.readers` for the CSV layout, :mod:`~keras_impl.movielens.grouplens`
for ml-100k and ml-1m) turn their files into frames with the columns below and call these checks,
so a bad value reads the same in every layout.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

RATINGS_FILE = "ratings.csv"
MOVIES_FILE = "movies.csv"
RATINGS_COLUMNS = ("userId", "movieId", "rating")  # timestamp is optional
MOVIES_COLUMNS = ("movieId", "title", "genres")
RATING_MIN, RATING_MAX = 0.5, 5.0
MERGE_ORDERS = ("pre-2.2", "current")
# Ids are kept in 32 bits (the course's tables are indexed by int32); larger ids are refused, not wrapped.
ID_MIN, ID_MAX = -(2 ** 31), 2 ** 31 - 1
NO_GENRES = "(no genres listed)"  # MovieLens' value for a film without genres


def _line(position: int, first_line) -> int:
    """File line number of data row ``position``: ``first_line`` is the line of row 0, or an array of every
    row's line (a file whose blank lines were skipped)."""
    if np.ndim(first_line):
        return int(np.asarray(first_line)[int(position)])
    return int(position) + int(first_line)


def _require_columns(frame: pd.DataFrame, path: Path, required: tuple[str, ...]) -> None:
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise ValueError(
            f"{path}: missing column(s) {', '.join(repr(c) for c in missing)} "
            f"(found: {', '.join(map(str, frame.columns))}; expected {', '.join(required)})"
        )


def _numeric_column(frame: pd.DataFrame, path: Path, column: str, integer: bool, first_line: int) -> np.ndarray:
    """The column as a NumPy array, or a ValueError naming the file, column, value and line.

    Integer columns (ids) must also fit in 32 bits: an id such as 99999999999 would wrap to another
    user's id when cast, so it is refused with its line.
    """
    values = frame[column]
    missing = values.isna().to_numpy()
    if missing.any():
        first = int(np.flatnonzero(missing)[0])
        raise ValueError(
            f"{path}: {int(missing.sum())} missing value(s) (NaN/empty) in column {column!r}, "
            f"first at line {_line(first, first_line)}"
        )
    if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        coerced = pd.to_numeric(values, errors="coerce").to_numpy().astype("float64")
        bad = np.flatnonzero(np.isnan(coerced))
        if not len(bad):  # numbers stored as text (headerless readers): use them
            return _numeric_column(frame.assign(**{column: coerced}), path, column, integer, first_line)
        first = int(bad[0])
        raise ValueError(f"{path}: non-numeric value {values.iloc[first]!r} in column {column!r} at line "
                         f"{_line(first, first_line)}")
    array = values.to_numpy()
    if integer:
        outside = np.flatnonzero((array < ID_MIN) | (array > ID_MAX))
        if len(outside):
            first = int(outside[0])
            raise ValueError(f"{path}: {column} {array[first].item()!r} at line {_line(first, first_line)} does not fit "
                             f"in 32 bits ({ID_MIN}..{ID_MAX}); ids are not wrapped, so it would merge with another id")
        if not pd.api.types.is_integer_dtype(values):
            fractional = np.flatnonzero(array != np.round(array))
            if len(fractional):
                first = int(fractional[0])
                raise ValueError(f"{path}: column {column!r} must hold integer ids; got {array[first].item()!r} at "
                                 f"line {_line(first, first_line)}")
        array = array.astype("int64")
    return array


def validate_ratings(frame: pd.DataFrame, path: str | os.PathLike = RATINGS_FILE, first_line: int = 2) -> pd.DataFrame:
    """Check a ratings frame and return it with compact dtypes (int32 ids, float32 ratings).

    Ids must fit in 32 bits: larger ones are refused with their line (never wrapped), because a
    wrapped id can merge two users.

    Args:
        frame: columns userId, movieId, rating[, timestamp], in file order.
        path: the file, for the messages.
        first_line: the file line of the first row (2 below a header line, 1 without one), or an
            array of each row's line.

    Raises:
        ValueError: no rows, a missing column, NaN, a non-numeric or non-integer id, an id outside
            32 bits, a rating outside 0.5..5.0, or duplicate (userId, movieId) pairs; the message
            names the file, the column, a value and its line.
    """
    path = Path(path)
    _require_columns(frame, path, RATINGS_COLUMNS)
    if not len(frame):
        raise ValueError(f"{path}: no ratings (the file holds no data rows)")
    users = _numeric_column(frame, path, "userId", True, first_line)
    movies = _numeric_column(frame, path, "movieId", True, first_line)
    ratings = _numeric_column(frame, path, "rating", False, first_line).astype("float64")
    outside = np.flatnonzero((ratings < RATING_MIN) | (ratings > RATING_MAX))
    if len(outside):
        first = int(outside[0])
        raise ValueError(
            f"{path}: {len(outside)} rating(s) outside {RATING_MIN}..{RATING_MAX} in column 'rating', "
            f"e.g. {float(ratings[first])} at line {_line(first, first_line)}"
        )
    out = {"userId": users.astype("int32"), "movieId": movies.astype("int32"), "rating": ratings.astype("float32")}
    if "timestamp" in frame.columns:
        out["timestamp"] = _timestamps(frame, path, first_line)
    # One key per pair: ids fit in 32 bits (checked above), so (user + 2**31) * 2**32 + movie is collision free.
    key = (users + 2 ** 31) * (1 << 32) + movies
    duplicated = pd.Index(key).duplicated(keep="first")
    if duplicated.any():
        first = int(np.flatnonzero(duplicated)[0])
        earlier = int(np.flatnonzero(key == key[first])[0])
        raise ValueError(
            f"{path}: {int(duplicated.sum())} duplicate (userId, movieId) pair(s), e.g. ({int(users[first])}, "
            f"{int(movies[first])}) at lines {_line(earlier, first_line)} and {_line(first, first_line)}"
        )
    return pd.DataFrame(out)


def _timestamps(frame: pd.DataFrame, path: Path, first_line: int) -> np.ndarray:
    """The optional timestamp column as int64 (seconds; any size)."""
    values = frame["timestamp"]
    if pd.api.types.is_integer_dtype(values):
        return values.to_numpy().astype("int64")
    coerced = pd.to_numeric(values, errors="coerce").to_numpy().astype("float64")
    bad = np.flatnonzero(np.isnan(coerced) | (coerced != np.round(coerced)))
    if len(bad):
        first = int(bad[0])
        raise ValueError(f"{path}: column 'timestamp' must hold integer seconds; got {values.iloc[first]!r} at line "
                         f"{_line(first, first_line)}")
    return coerced.astype("int64")


def validate_movies(frame: pd.DataFrame, path: str | os.PathLike = MOVIES_FILE, first_line: int = 2) -> pd.DataFrame:
    """Check a movies frame (movieId, title, genres) and return it with an int32 ``movieId``.

    Raises:
        ValueError: no rows, a missing column, a NaN/non-integer ``movieId`` or one outside 32 bits,
            a missing title, or a ``movieId`` listed twice (the merge would duplicate ratings).
    """
    path = Path(path)
    _require_columns(frame, path, MOVIES_COLUMNS)
    if not len(frame):
        raise ValueError(f"{path}: no films (the file holds no data rows)")
    ids = _numeric_column(frame, path, "movieId", True, first_line)
    titles = frame["title"]
    if titles.isna().any():
        first = int(np.flatnonzero(titles.isna().to_numpy())[0])
        raise ValueError(f"{path}: missing title at line {_line(first, first_line)}")
    duplicated = pd.Index(ids).duplicated(keep="first")
    if duplicated.any():
        first = int(np.flatnonzero(duplicated)[0])
        raise ValueError(f"{path}: {int(duplicated.sum())} duplicate movieId value(s), e.g. {int(ids[first])} at line "
                         f"{_line(first, first_line)}")
    return pd.DataFrame({"movieId": ids.astype("int32"), "title": titles.astype(str).to_numpy(),
                         "genres": frame["genres"].fillna(NO_GENRES).astype(str).to_numpy()})
