"""Read and validate a MovieLens folder in the CSV layout (``ratings.csv``, ``movies.csv``).

Every problem is a ``ValueError`` (or ``FileNotFoundError``) that names the file, the column, a
value and its CSV line.
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

