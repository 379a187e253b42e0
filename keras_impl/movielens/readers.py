"""Read and validate a MovieLens folder in any of its layouts, detected from the files it holds.

* ``csv``: ``ratings.csv`` + ``movies.csv`` (ml-20m, ml-25m, ml-32m, ml-latest(-small), synthetic);
* ``ml-100k``: ``u.data`` + ``u.item`` (+ ``u.genre``);
* ``ml-1m``: ``ratings.dat`` + ``movies.dat`` (ml-1m, ml-10m).

Every problem is a ``ValueError`` (or ``FileNotFoundError``) that names the file, the column, a
value and its line (:mod:`~keras_impl.movielens.validation`).
"""
from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from keras_impl.movielens import grouplens
from keras_impl.movielens.validation import (MOVIES_COLUMNS, MOVIES_FILE, RATINGS_COLUMNS, RATINGS_FILE,
                                             validate_movies, validate_ratings)

# layout -> (ratings file, movies file)
LAYOUTS = {
    "csv": (RATINGS_FILE, MOVIES_FILE),
    "ml-100k": (grouplens.ML100K_RATINGS, grouplens.ML100K_MOVIES),
    "ml-1m": (grouplens.ML1M_RATINGS, grouplens.ML1M_MOVIES),
}


def _read_csv(path: Path, what: str) -> pd.DataFrame:
    try:
        return pd.read_csv(path)
    except pd.errors.EmptyDataError:
        raise ValueError(f"{path}: the file is empty (expected a header line with {what})") from None
    except pd.errors.ParserError as err:
        raise ValueError(f"{path}: not a valid CSV file ({str(err).strip()})") from None
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not UTF-8 text ({_first_bad_byte(path)}); MovieLens CSV files are UTF-8 "
                         f"(ml-100k and ml-1m files are read under their own names: u.data, ratings.dat ...)") from None


def _first_bad_byte(path: Path) -> str:
    """``"byte 0x82 at line 3"``: where ``path`` stops being UTF-8 (pandas reports offsets per chunk)."""
    data = path.read_bytes()
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        return f"byte 0x{data[err.start]:02x} at line {line}"
    return "a byte that is not UTF-8"


def detect_layout(folder: str | os.PathLike) -> str:
    """The layout of a MovieLens folder (a key of :data:`LAYOUTS`), from the files it holds.

    A layout is chosen when either of its two files is there (the CSV layout first); then both
    must be.

    Raises:
        FileNotFoundError: the folder is missing, holds no layout's files, or lacks the second file
            of its layout (the message names it).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(
            f"MovieLens folder {str(folder)!r} does not exist (expected a folder with {RATINGS_FILE} and "
            f"{MOVIES_FILE}, e.g. an unpacked ml-20m.zip, or ml-100k's u.data/u.item, or ml-1m's "
            f"ratings.dat/movies.dat; `kcourse data download ml-latest-small --to DIR` fetches one)"
        )
    for layout, names in LAYOUTS.items():
        present = [(folder / name).is_file() for name in names]
        if any(present):
            for name, here in zip(names, present):
                if not here:
                    raise FileNotFoundError(f"{folder / name}: file not found (a MovieLens folder in the {layout} "
                                            f"layout needs {' and '.join(names)})")
            return layout
    expected = "; ".join(f"{' + '.join(names)} ({layout})" for layout, names in LAYOUTS.items())
    raise FileNotFoundError(f"{folder / RATINGS_FILE}: file not found; {folder} holds no MovieLens files "
                            f"(expected one of: {expected})")


def describe_layout(folder: str | os.PathLike) -> str:
    """Which layout and files :func:`read_movielens` reads, and any other layout's files it leaves alone.

    Example: ``"csv layout: ratings.csv, movies.csv (not read: u.data, u.item of the ml-100k layout)"``.
    """
    folder = Path(folder)
    layout = detect_layout(folder)
    others = [f"{', '.join(n for n in names if (folder / n).is_file())} of the {other} layout"
              for other, names in LAYOUTS.items() if other != layout and any((folder / n).is_file() for n in names)]
    return f"{layout} layout: {', '.join(LAYOUTS[layout])}" + (f" (not read: {'; '.join(others)})" if others else "")


def read_movielens(folder: str | os.PathLike) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read and validate a MovieLens folder in any layout (:func:`detect_layout`).

    Args:
        folder: ml-20m, ml-25m, ml-32m, ml-latest-small (``ratings.csv`` + ``movies.csv``), ml-100k
            (``u.data`` + ``u.item``), ml-1m or ml-10m (``ratings.dat`` + ``movies.dat``), or one
            written by :func:`generate_synthetic` (any of these layouts).

    Returns:
        ``(ratings, movies)``: ratings with int32 ``userId``/``movieId``, float32 ``rating`` and
        int64 ``timestamp`` (when present), in file order; movies with ``movieId``, ``title``,
        ``genres`` (``|``-separated names; ml-100k's flags become the same field).

    Raises:
        FileNotFoundError: the folder or one of its layout's two files is missing.
        ValueError: a file's content is invalid (see :func:`validate_ratings`).
    """
    folder = Path(folder)
    layout = detect_layout(folder)
    if layout == "ml-100k":
        return grouplens.read_ml100k(folder)
    if layout == "ml-1m":
        return grouplens.read_ml1m(folder)
    ratings = validate_ratings(_read_csv(folder / RATINGS_FILE, ", ".join(RATINGS_COLUMNS)), folder / RATINGS_FILE)
    movies = validate_movies(_read_csv(folder / MOVIES_FILE, ", ".join(MOVIES_COLUMNS)), folder / MOVIES_FILE)
    return ratings, movies


def movies_file(folder: str | os.PathLike) -> str:
    """The name of the folder's films file (``movies.csv``, ``u.item`` or ``movies.dat``), for messages."""
    try:
        return LAYOUTS[detect_layout(folder)][1]
    except FileNotFoundError:
        return MOVIES_FILE
