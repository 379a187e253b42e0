"""The made-up catalogue of the synthetic MovieLens folders: genres that follow the films' latent traits, titles.

The films' genres follow their latent traits only as strongly as ``SyntheticSpec.genre_strength``
says (:func:`assign_genres`), and :func:`genre_variance_share` measures how much of the films'
factor variance they explain (:mod:`keras_impl.movielens.synthetic` writes both into a folder).
"""
from __future__ import annotations

import numpy as np

from keras_impl.movielens.course import genre_matrix

GENRES = ("Action", "Adventure", "Animation", "Children", "Comedy", "Crime", "Documentary", "Drama",
          "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller",
          "War", "Western")
_WORDS_A = ("Silent", "Last", "Red", "Lost", "Dark", "Golden", "Broken", "Wild", "Hidden", "Usual",
            "Midnight", "Electric", "Frozen", "Little", "Big", "Secret", "Iron", "Crimson", "Empty", "Final")
_WORDS_B = ("River", "Suspects", "City", "Garden", "Heat", "Road", "Kingdom", "Letter", "Machine",
            "Island", "Summer", "Witness", "Harbor", "Circus", "Echo", "Frontier", "Signal", "Orchard",
            "Mirror", "Storm")


# How many genres a film has (1, 2 or 3) and how common each genre is: rough shares of ml-20m's
# films (Drama on about half of them, Film-Noir on about 1%), in the order of GENRES.
GENRE_COUNT_PROBS = (0.35, 0.40, 0.25)
GENRE_FREQUENCY_SCALE = 0.5  # weight of log(GENRE_FREQUENCY) in a score (1 would make rare genres vanish)
GENRE_FREQUENCY = (0.13, 0.08, 0.04, 0.04, 0.32, 0.11, 0.09, 0.49, 0.05, 0.01, 0.10, 0.04, 0.06, 0.15, 0.06, 0.16,
                   0.04, 0.02)


def assign_genres(traits: np.ndarray, strength: float, rng: np.random.Generator) -> list[str]:
    """Genres of each film from its latent traits, as strongly tied to them as ``strength`` says.

    Every genre ``j`` has a random unit direction ``w_j`` in trait space; a film's score for it is
    ``strength * z . w_j + sqrt(1 - strength**2) * eps + 0.5 log(frequency_j)`` with ``z`` the film's
    traits in units of their standard deviation and ``eps ~ N(0, 1)``, and the film takes its
    1-3 highest-scoring genres (:data:`GENRE_COUNT_PROBS`). So ``strength`` is the correlation
    between the trait part and the whole random part of a score; the log-frequency makes Drama
    and Comedy common and Film-Noir rare.

    Args:
        traits: ``[n_films, rank]`` latent factors.
        strength: 0..1.
        rng: the genres' own generator (the ratings' stream is not touched).

    Returns:
        ``|``-joined genre names per film, sorted by name.
    """
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"Received an invalid value for argument `genre_strength`: expected 0 <= genre_strength <= 1, "
                         f"got {strength}")
    n, rank = traits.shape
    directions = rng.normal(size=(rank, len(GENRES)))
    directions /= np.linalg.norm(directions, axis=0, keepdims=True)  # [rank, G] unit columns
    z = traits / max(float(traits.std()), 1e-12)  # [n, rank]
    scores = strength * z @ directions + np.sqrt(1.0 - strength ** 2) * rng.normal(size=(n, len(GENRES)))
    scores += GENRE_FREQUENCY_SCALE * np.log(np.asarray(GENRE_FREQUENCY))  # [n, G]
    counts = rng.choice(np.arange(1, len(GENRE_COUNT_PROBS) + 1), size=n, p=GENRE_COUNT_PROBS)
    order = np.argsort(-scores, axis=1)  # [n, G] best first
    return ["|".join(sorted(GENRES[j] for j in order[i, :counts[i]])) for i in range(n)]


def genre_variance_share(factors: np.ndarray, genres) -> float:
    """Share of the films' factor variance that their genres explain (an R^2).

    The genre model gives film ``m`` the mean of its genres' rows, ``G @ T`` with ``G`` from
    :func:`keras_impl.movielens.genre_matrix`; ``T`` is fitted by least squares and the share is
    ``1 - |Q - G T|^2 / |Q|^2`` over all films and factor columns (the prior's centre without
    genres is zero, so the sums are not centred).

    Args:
        factors: ``[n_films, rank]`` (the generator's true ``movie_factors``, or a model's).
        genres: ``[n_films]`` ``|``-joined genre fields.
    """
    q = np.asarray(factors, dtype="float64")
    matrix = genre_matrix(genres)[0].astype("float64")
    if not matrix.shape[1]:
        return 0.0
    table = np.linalg.lstsq(matrix, q, rcond=None)[0]  # [G, rank]
    return float(1.0 - np.sum((q - matrix @ table) ** 2) / np.sum(q ** 2))


def make_titles(n_movies: int, years: np.ndarray, rng: np.random.Generator) -> list[str]:
    """Unique made-up titles ``"Word Word (year)"`` (a Roman numeral tells repeats apart), from ``rng``."""
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
