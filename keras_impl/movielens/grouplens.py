"""The older GroupLens layouts, read and written natively: ml-100k (``u.data``, ``u.item``) and ml-1m (``::`` files).

* **ml-100k**: ``u.data`` is tab-separated ``user id, item id, rating, timestamp`` without a
  header; ``u.item`` is ``|``-separated ``movie id | title | release date | video release date |
  IMDb URL`` and 19 genre flags (0/1) in the order of ``u.genre`` (``unknown``, Action, ...,
  Western); ``u.genre`` is optional here (the known list is used without it).
* **ml-1m** (and ml-10m): ``ratings.dat`` is ``UserID::MovieID::Rating::Timestamp`` and
  ``movies.dat`` is ``MovieID::Title::Genres`` (genres ``|``-separated), no header.

GroupLens ships these files as latin-1. A file that is valid UTF-8 is read as UTF-8 (a copy that
was re-saved by an editor), anything else as latin-1, which decodes every byte; a NUL byte (a
UTF-16 or binary file) is refused with its line. Lines are numbered from 1 (no header), and every
value goes through the same checks as the CSV layout (:mod:`~keras_impl.movielens.validation`).

The writers produce the same layouts from validated frames, for synthetic test folders.
"""
from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pandas as pd

from keras_impl.movielens.validation import NO_GENRES, validate_movies, validate_ratings

ML100K_RATINGS, ML100K_MOVIES, ML100K_GENRES = "u.data", "u.item", "u.genre"
ML1M_RATINGS, ML1M_MOVIES = "ratings.dat", "movies.dat"
# u.genre of ml-100k: the 19 flag columns of u.item, in order. ml-1m's movies.dat uses the same names.
ML100K_GENRE_NAMES = ("unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary",
                      "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller",
                      "War", "Western")
_ITEM_FIELDS = 5 + len(ML100K_GENRE_NAMES)  # id, title, release date, video release date, IMDb URL, 19 flags
_RATINGS_NAMES = ["userId", "movieId", "rating", "timestamp"]


# ----------------------------------------------------------------------------------------------
# Text and fields
# ----------------------------------------------------------------------------------------------


def read_text(path: Path) -> str:
    """A GroupLens text file: UTF-8 when valid, else latin-1; a NUL byte is an error naming its line."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: file not found")
    data = path.read_bytes()
    nul = data.find(b"\x00")
    if nul >= 0:
        line = data.count(b"\n", 0, nul) + 1
        raise ValueError(f"{path}: NUL byte at line {line}: not a latin-1 text file "
                         f"(UTF-16 or binary?); GroupLens ships its files as latin-1 text")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _lines(text: str, path: Path) -> list[str]:
    lines = text.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        raise ValueError(f"{path}: the file is empty")
    return lines


def _split(line: str, sep: str, expected: int, number: int, path: Path, fields: str) -> list[str]:
    """``line`` split on ``sep`` into exactly ``expected`` fields, or an error naming the line."""
    parts = line.split(sep)
    if len(parts) != expected:
        raise ValueError(f"{path}: line {number} has {len(parts)} {sep!r}-separated field(s), expected {expected} "
                         f"({fields}): {line[:80]!r}")
    return parts


def _numeric_ratings(text: str, sep: str, path: Path, fields: str) -> pd.DataFrame:
    """Parse ``user, item, rating, timestamp`` lines separated by ``sep`` and validate them."""
    lines = _lines(text, path)
    _split(lines[0], sep, 4, 1, path, fields)  # a wrong separator shows on line 1
    # Blank lines are skipped wherever they are, as pandas does for ratings.csv (a blank line in the
    # middle was refused while trailing ones were not); errors still name the file's own line numbers.
    numbers = np.array([i for i, line in enumerate(lines, 1) if line.strip()])
    text = "\n".join(line for line in lines if line.strip()) + "\n"
    if sep != "\t":
        text = text.replace(sep, "\t")
    try:
        frame = pd.read_csv(io.StringIO(text), sep="\t", header=None, names=_RATINGS_NAMES, skip_blank_lines=False,
                            quoting=3)
    except pd.errors.ParserError as err:  # a line with more fields than 4
        raise ValueError(f"{path}: not a valid {sep!r}-separated file ({str(err).strip()}; expected {fields})") from None
    return validate_ratings(frame, path, first_line=numbers)


# ----------------------------------------------------------------------------------------------
# ml-100k
# ----------------------------------------------------------------------------------------------


def _genre_names(folder: Path) -> tuple[str, ...]:
    """The 19 flag names from ``u.genre`` (``name|index`` lines), or the known list without the file."""
    path = folder / ML100K_GENRES
    if not path.is_file():
        return ML100K_GENRE_NAMES
    names = {}
    for number, line in enumerate(_lines(read_text(path), path), 1):
        if not line.strip():
            continue
        name, index = _split(line, "|", 2, number, path, "genre name|index")
        if not index.strip().isdigit():
            raise ValueError(f"{path}: non-numeric genre index {index!r} at line {number}")
        names[int(index)] = name
    if sorted(names) != list(range(len(ML100K_GENRE_NAMES))):
        raise ValueError(f"{path}: expected genre indices 0..{len(ML100K_GENRE_NAMES) - 1}, got {sorted(names)}")
    return tuple(names[i] for i in range(len(names)))


def read_ml100k(folder: str | os.PathLike) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(ratings, movies)`` of an ml-100k folder, validated like the CSV layout.

    Raises:
        FileNotFoundError: ``u.data`` or ``u.item`` is missing.
        ValueError: a wrong separator, a NUL byte, a bad genre flag, or any check of
            :func:`~keras_impl.movielens.validation.validate_ratings` / ``validate_movies``; the
            message names the file, the column or field, the value and the line.
    """
    folder = Path(folder)
    ratings = _numeric_ratings(read_text(folder / ML100K_RATINGS), "\t", folder / ML100K_RATINGS,
                               "user id, item id, rating, timestamp")
    path = folder / ML100K_MOVIES
    genre_names = _genre_names(folder)
    ids, titles, genres = [], [], []
    for number, line in enumerate(_lines(read_text(path), path), 1):
        fields = _split(line, "|", _ITEM_FIELDS, number, path, "movie id | title | release date | video release date "
                        "| IMDb URL | 19 genre flags")
        flags = fields[5:]
        for name, flag in zip(genre_names, flags):
            if flag not in ("0", "1"):
                raise ValueError(f"{path}: genre flag {name!r} must be 0 or 1; got {flag!r} at line {number}")
        names = [name for name, flag in zip(genre_names, flags) if flag == "1" and name != "unknown"]
        ids.append(fields[0])
        titles.append(fields[1] or None)
        genres.append("|".join(names) or NO_GENRES)
    movies = pd.DataFrame({"movieId": ids, "title": titles, "genres": genres})
    return ratings, validate_movies(movies, path, first_line=1)


def write_ml100k(ratings: pd.DataFrame, movies: pd.DataFrame, folder: str | os.PathLike) -> None:
    """Write validated frames as ``u.data``, ``u.item`` and ``u.genre`` (latin-1) into ``folder``.

    Genre names must be ml-100k's (``Children's``; ``Children`` is accepted for it); ratings keep
    their values (half stars stay half stars, which the reader accepts).
    """
    folder = Path(folder)
    columns = {name: i for i, name in enumerate(ML100K_GENRE_NAMES)}
    columns["Children"] = columns["Children's"]
    lines = []
    for movie_id, title, field in zip(movies["movieId"], movies["title"], movies["genres"]):
        flags = ["0"] * len(ML100K_GENRE_NAMES)
        for name in (g for g in str(field).split("|") if g and g != NO_GENRES):
            if name not in columns:
                raise ValueError(f"Received an invalid value for argument `movies`: genre {name!r} of movieId {movie_id} "
                                 f"is not one of ml-100k's {len(ML100K_GENRE_NAMES)} genres")
            flags[columns[name]] = "1"
        if flags == ["0"] * len(flags):
            flags[0] = "1"  # ml-100k marks a film without genres as "unknown"
        lines.append("|".join([str(movie_id), str(title), "01-Jan-1995", "", ""] + flags))
    (folder / ML100K_MOVIES).write_bytes(("\n".join(lines) + "\n").encode("latin-1"))
    (folder / ML100K_GENRES).write_text("".join(f"{n}|{i}\n" for i, n in enumerate(ML100K_GENRE_NAMES)) + "\n",
                                        encoding="latin-1")
    _write_ratings(ratings, folder / ML100K_RATINGS, "\t")


def _write_ratings(ratings: pd.DataFrame, path: Path, sep: str) -> None:
    frame = ratings[[c for c in _RATINGS_NAMES if c in ratings.columns]].copy()
    if "timestamp" not in frame.columns:
        frame["timestamp"] = 0
    frame["rating"] = frame["rating"].map(lambda r: f"{r:g}")
    text = frame.to_csv(sep="\t", header=False, index=False)
    path.write_bytes((text.replace("\t", sep) if sep != "\t" else text).encode("latin-1"))


# ----------------------------------------------------------------------------------------------
# ml-1m
# ----------------------------------------------------------------------------------------------


def read_ml1m(folder: str | os.PathLike) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(ratings, movies)`` of an ml-1m (or ml-10m) folder, validated like the CSV layout.

    Raises:
        FileNotFoundError: ``ratings.dat`` or ``movies.dat`` is missing.
        ValueError: a line without the ``::`` fields, a NUL byte, or any check of the CSV layout;
            the message names the file, the column, the value and the line.
    """
    folder = Path(folder)
    ratings = _numeric_ratings(read_text(folder / ML1M_RATINGS), "::", folder / ML1M_RATINGS,
                               "UserID::MovieID::Rating::Timestamp")
    path = folder / ML1M_MOVIES
    rows = [_split(line, "::", 3, number, path, "MovieID::Title::Genres")
            for number, line in enumerate(_lines(read_text(path), path), 1)]
    movies = pd.DataFrame({"movieId": [r[0] for r in rows], "title": [r[1] or None for r in rows],
                           "genres": [r[2] or NO_GENRES for r in rows]})
    return ratings, validate_movies(movies, path, first_line=1)


def write_ml1m(ratings: pd.DataFrame, movies: pd.DataFrame, folder: str | os.PathLike) -> None:
    """Write validated frames as ``ratings.dat`` and ``movies.dat`` (``::``-separated, latin-1)."""
    folder = Path(folder)
    lines = [f"{m}::{t}::{g}" for m, t, g in zip(movies["movieId"], movies["title"], movies["genres"])]
    (folder / ML1M_MOVIES).write_bytes(("\n".join(lines) + "\n").encode("latin-1"))
    _write_ratings(ratings, folder / ML1M_RATINGS, "::")
