"""Synthetic MovieLens folders (CSV, ml-100k or ml-1m layout) from a latent-factor model, with the oracle MSE.

MovieLens may not be redistributed, so tests and demos use these folders. The films' genres
follow their latent traits only as strongly as ``SyntheticSpec.genre_strength`` says
(:func:`assign_genres`), and :func:`genre_variance_share` measures how much of the films' factor
variance they explain.
"""
from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.special import ndtr

from keras_impl import files
from keras_impl.checkpoints import sha256
from keras_impl.movielens import grouplens
from keras_impl.movielens.course import genre_matrix
from keras_impl.movielens.readers import LAYOUTS
from keras_impl.movielens.validation import MOVIES_FILE, RATING_MAX, RATING_MIN, RATINGS_FILE

# ----------------------------------------------------------------------------------------------
# Synthetic MovieLens
# ----------------------------------------------------------------------------------------------

TRUTH_FILE = "synthetic_truth.npz"
INFO_FILE = "SYNTHETIC.json"
# Bump when generate_synthetic's output changes for the same spec, so cached folders are remade.
# 3: genres drawn from noisy trait scores (SyntheticSpec.genre_strength), 1-3 per film, 18 names;
#    ratings, titles and timestamps are those of version 2 for the same spec (the genres have their own stream).
GENERATOR_VERSION = 3
# Spec fields added since, whose defaults give version 3's data bit for bit.
FIELDS_ADDED_IN_VERSION_3 = ("exposure_taste", "exposure_interest", "interest_rank", "popularity_offset")
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
    "latest-small": (610, 9_724, 100_836),
}
# Named sizes whose spec is not the default: "latest-small" is ml-latest-small's size with the
# exposure model calibrated to it (docs/recommender.md, "Calibration": chosen on generator seed 0,
# checked on seeds 1-4): people rate what they are drawn to and expect to like, so popularity is
# a strong list and an item model beats it about 2x, as on the real data.
SYNTHETIC_SPEC_OPTIONS = {
    "latest-small": dict(exposure_taste=1.5, exposure_interest=2.5, interest_rank=6, popularity_exponent=1.3,
                         popularity_offset=5.0, activity_sigma=1.4),
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
    popularity_exponent: float = 0.8  # film popularity ~ (rank + offset - 1) ** -exponent (Zipf; Zipf-Mandelbrot
    popularity_offset: float = 1.0  # with an offset > 1: the head is flatter, as on MovieLens)
    activity_sigma: float = 1.1  # user activity: 20 + lognormal, heavy right tail
    min_user_ratings: int = 20  # as in ml-20m: every user rated at least 20 films
    # Correlation between a film's genre scores and its latent traits: 1 makes the genres a function
    # of the traits, 0 independent of them. The default makes them explain a small share of the
    # films' factor variance (genre_variance_share; docs/recommender.md has the share per value).
    genre_strength: float = 0.4
    seed: int = 0
    # Exposure (missing not at random): 0 draws each user's films by popularity alone (the default,
    # bit for bit the data of earlier versions); > 0 draws them with weights popularity x
    # exp(exposure_taste x z), z the user's standardised true opinion of the film, so people rate
    # what they expect to like (docs/recommender.md has the calibration to ml-latest-small).
    exposure_taste: float = 0.0
    # Exposure by interest: > 0 adds exposure_interest x a_u . c_m / sqrt(interest_rank) to the log
    # weights, a_u and c_m independent N(0, 1) factors that play no part in the ratings: what people
    # are drawn to watch (a genre, an era, a franchise) beyond what they would rate highly, so
    # films are watched in clusters, as on real data. With either exposure term on, ``mean`` is the
    # mean true rating of the rated pairs (of all pairs without exposure).
    exposure_interest: float = 0.0
    interest_rank: int = 16

    @property
    def has_exposure(self) -> bool:
        return bool(self.exposure_taste or self.exposure_interest)


def expected_rating(r_true: np.ndarray, noise: float) -> np.ndarray:
    """E[observed rating] when ``observed = clip(round_half(r_true + N(0, noise)), 0.5, 5)``.

    Half-star value ``v`` is observed when ``r_true + eps`` falls in ``[v - 0.25, v + 0.25)``,
    0.5 absorbs everything below 0.75 and 5.0 everything from 4.75 up. So
    ``E = sum_v v * (Phi((hi_v - r)/s) - Phi((lo_v - r)/s))``.
    """

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


def _sample_pairs_by_exposure(counts: np.ndarray, popularity: np.ndarray, truth: dict, spec: SyntheticSpec,
                              rng: np.random.Generator, chunk: int = 500) -> tuple[np.ndarray, np.ndarray]:
    """Distinct (user, film) pairs, ``counts[u]`` per user, drawn by popularity, taste and interest.

    Log weights ``log popularity + exposure_taste x z + exposure_interest x a_u . c_m / sqrt(k)``:
    ``z`` is the user's true opinion ``b_m + p_u . q_m`` of each film, standardised over all films
    (user bias left out: it moves all of a user's films alike); ``a``, ``c`` are the interest
    factors in ``truth`` (zero when ``exposure_interest`` is 0). Weighted sampling without
    replacement by the Gumbel top-k trick: the ``counts[u]`` largest ``log w + Gumbel`` keys.
    """
    p, q, b = truth["user_factors"], truth["movie_factors"], truth["movie_bias"]
    a, c = truth["user_interest"], truth["movie_interest"]
    opinion_mean = float(b.mean())
    opinion_std = float(np.sqrt(b.var() + (p ** 2).sum(1).mean() * q.var(0).mean() + 1e-12))
    log_pop = np.log(popularity)
    users_out, films_out = [], []
    for start in range(0, len(counts), chunk):
        rows = np.arange(start, min(len(counts), start + chunk))
        z = (b[None, :] + p[rows] @ q.T - opinion_mean) / opinion_std  # [R, M]
        interest = a[rows] @ c.T / np.sqrt(a.shape[1])  # [R, M], each entry ~ N(0, 1)
        keys = (log_pop[None, :] + spec.exposure_taste * z + spec.exposure_interest * interest
                + rng.gumbel(size=z.shape))
        for row, user in enumerate(rows):
            picked = np.argpartition(-keys[row], counts[user] - 1)[: counts[user]]
            users_out.append(np.full(len(picked), user, dtype="int64"))
            films_out.append(np.sort(picked).astype("int64"))
    return np.concatenate(users_out), np.concatenate(films_out)


def _rank_within_groups(groups: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random rank 0..k-1 of each element within its group (``groups`` sorted)."""
    order = np.lexsort((rng.random(len(groups)), groups))
    starts = np.searchsorted(groups[order], groups[order], side="left")
    ranks = np.empty(len(groups), dtype="int64")
    ranks[order] = np.arange(len(groups)) - starts
    return ranks


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


def named_spec(size: str, seed: int = 0) -> SyntheticSpec:
    """The :class:`SyntheticSpec` of a size name from :data:`SYNTHETIC_SIZES`."""
    users, films, n = SYNTHETIC_SIZES[size]
    return SyntheticSpec(users, films, n, seed=seed, **SYNTHETIC_SPEC_OPTIONS.get(size, {}))


def _resolve_spec(spec: SyntheticSpec | str, seed: int | None) -> SyntheticSpec:
    """A :class:`SyntheticSpec` from a spec or a size name, with ``seed`` applied and the sizes checked."""
    if isinstance(spec, str):
        if spec not in SYNTHETIC_SIZES:
            raise ValueError(f"Received an invalid value for argument `spec`: expected a SyntheticSpec or one of "
                             f"{', '.join(SYNTHETIC_SIZES)}, got {spec!r}")
        spec = named_spec(spec)
    if seed is not None:
        spec = dataclasses.replace(spec, seed=seed)
    for name in ("n_users", "n_movies", "n_ratings", "rank", "interest_rank"):
        if getattr(spec, name) < 1:
            raise ValueError(f"Received an invalid value for argument `{name}`: expected >= 1, got {getattr(spec, name)}")
    return spec


def _ratings(spec: SyntheticSpec, users: np.ndarray, films: np.ndarray, truth: dict, rng) -> tuple[np.ndarray, float]:
    """Observed half-star ratings ``[N]`` and the centre ``mu`` of the true ratings (``spec.mean``, or with
    exposure the value that centres the rated pairs on it); stores each row's true and expected rating in ``truth``."""
    p, q, b_user, b_movie = truth["user_factors"], truth["movie_factors"], truth["user_bias"], truth["movie_bias"]
    n = len(users)
    r_true, expected, observed = (np.empty(n, dtype="float32") for _ in range(3))
    chunks = [slice(start, min(n, start + 2_000_000)) for start in range(0, n, 2_000_000)]  # small temporaries
    mean = spec.mean
    if spec.has_exposure:  # people rate what they chose, so centre the rated pairs, not all pairs, on `mean`
        mean -= sum(float((b_user[users[sl]] + b_movie[films[sl]]
                           + np.einsum("ij,ij->i", p[users[sl]], q[films[sl]])).sum()) for sl in chunks) / max(n, 1)
    for sl in chunks:
        u, m = users[sl], films[sl]
        r = mean + b_user[u] + b_movie[m] + np.einsum("ij,ij->i", p[u], q[m])  # per-row dot
        r_true[sl] = r
        expected[sl] = expected_rating(r, spec.noise)
        noisy = r + rng.normal(0, spec.noise, len(r))
        observed[sl] = np.clip(np.round(noisy * 2) / 2, RATING_MIN, RATING_MAX)
    truth.update(r_true=r_true, expected=expected)
    return observed, float(mean)


def generate_synthetic(folder: str | os.PathLike, spec: SyntheticSpec | str = "small", seed: int | None = None,
                       layout: str = "csv") -> dict:
    """Write a synthetic MovieLens folder (``ratings.csv``, ``movies.csv``) and its ground truth.

    Users' activity and films' popularity follow heavy-tailed laws (lognormal activity with a
    floor of 20 ratings, Zipf popularity); ratings are half stars from a rank-``rank`` latent
    factor model plus noise (see :class:`SyntheticSpec`); titles and genres are made up (each
    film's 1-3 genres follow its latent traits as strongly as ``spec.genre_strength`` says: see
    :func:`assign_genres`). Rows are sorted by userId then movieId, as in ml-20m, which matters
    for the merge order.

    Also writes ``synthetic_truth.npz`` (the expected rating of each row of the ratings file, for
    oracle MSEs: see :func:`oracle_mse`) and ``SYNTHETIC.json`` (spec, oracle MSE over all rows and
    the share of the films' factor variance their genres explain, :func:`genre_variance_share`).

    Args:
        folder: the folder to create, written atomically beside its final place. It must be new,
            empty, or a synthetic folder written earlier by this function (which is replaced);
            anything else is refused and left untouched.
        spec: a :class:`SyntheticSpec`, or a size name from :data:`SYNTHETIC_SIZES`.
        seed: overrides ``spec.seed``.
        layout: ``"csv"`` (ratings.csv, movies.csv), ``"ml-100k"`` (u.data, u.item, u.genre) or
            ``"ml-1m"`` (ratings.dat, movies.dat); the same data in each.

    Returns:
        The ``SYNTHETIC.json`` content: spec, counts, ``oracle_mse``, ``genre_variance_share``.

    Raises:
        ValueError: a bad spec or layout, or a ``folder`` that holds files this project did not write.
    """
    spec = _resolve_spec(spec, seed)
    if layout not in LAYOUTS:
        raise ValueError(f"Received an invalid value for argument `layout`: expected one of {', '.join(LAYOUTS)}, "
                         f"got {layout!r}")
    folder = Path(folder)
    check_replaceable(folder)
    rng = np.random.default_rng(spec.seed)
    # Films: sparse ids as in MovieLens, Zipf popularity in random id order, a year, latent traits.
    movie_ids = np.sort(rng.choice(np.arange(1, 5 * spec.n_movies + 1), spec.n_movies, replace=False))
    popularity = (spec.popularity_offset + rng.permutation(spec.n_movies)) ** -spec.popularity_exponent
    counts = _user_counts(spec, rng)
    users, films = _sample_pairs(counts, popularity, rng)  # [N], [N], sorted by user then film
    truth = {"user_factors": rng.normal(0, spec.factor_std, (spec.n_users, spec.rank)).astype("float32"),
             "movie_factors": rng.normal(0, spec.factor_std, (spec.n_movies, spec.rank)).astype("float32"),
             "user_bias": rng.normal(0, spec.user_bias_std, spec.n_users).astype("float32"),
             "movie_bias": rng.normal(0, spec.movie_bias_std, spec.n_movies).astype("float32")}
    if spec.has_exposure:  # its own streams: the factors, ratings noise and titles stay those without exposure
        interest_rng = np.random.default_rng([spec.seed, 3])
        truth["user_interest"] = interest_rng.normal(0, 1, (spec.n_users, spec.interest_rank)).astype("float32")
        truth["movie_interest"] = interest_rng.normal(0, 1, (spec.n_movies, spec.interest_rank)).astype("float32")
        users, films = _sample_pairs_by_exposure(counts, popularity, truth, spec,
                                                 np.random.default_rng([spec.seed, 2]))
    observed, centre = _ratings(spec, users, films, truth, rng)  # also fills truth["r_true"], truth["expected"]
    oracle = float(np.mean((observed.astype("float64") - truth["expected"]) ** 2))
    years = rng.integers(1920, 2015, spec.n_movies)
    # The genres have their own stream, so their strength changes no rating, title or timestamp.
    genre_names = assign_genres(truth["movie_factors"], spec.genre_strength, np.random.default_rng([spec.seed, 1]))
    start_time = rng.integers(789_652_009, 1_420_000_000, spec.n_users)
    timestamps = start_time[users] + rng.integers(0, 3 * 365 * 86400, len(users))
    ratings = pd.DataFrame({"userId": (users + 1).astype("int64"), "movieId": movie_ids[films],
                            "rating": observed.astype("float64"), "timestamp": timestamps})
    movies = pd.DataFrame({"movieId": movie_ids, "title": _titles(spec.n_movies, years, rng), "genres": genre_names})
    info = {"spec": dataclasses.asdict(spec), "generator_version": GENERATOR_VERSION, "layout": layout,
            "n_users": int(spec.n_users), "n_movies": int(spec.n_movies), "n_ratings": int(len(users)),
            "oracle_mse": oracle, "genre_variance_share": genre_variance_share(truth["movie_factors"], genre_names),
            "rating_centre": centre,
            "note": "oracle_mse = mean squared error of the true expected rating over all rows; "
                    "keras_impl.movielens.oracle_mse gives it on a validation split. genre_variance_share = R^2 of "
                    "the films' true factors fitted by their genres (keras_impl.movielens.genre_variance_share). "
                    "rating_centre = mu of the true ratings mu + b_u + b_m + p_u . q_m (spec.mean without exposure; "
                    "with it, the value that centres the rated pairs on spec.mean)"}
    with files.atomic_directory(folder) as tmp:
        if layout == "ml-100k":
            grouplens.write_ml100k(ratings, movies, tmp)
        elif layout == "ml-1m":
            grouplens.write_ml1m(ratings, movies, tmp)
        else:
            ratings.to_csv(tmp / RATINGS_FILE, index=False, chunksize=1_000_000)
            movies.to_csv(tmp / MOVIES_FILE, index=False)
        np.savez(tmp / TRUTH_FILE, **truth)
        # what check_replaceable compares before replacing the folder: a file put there later is not ours
        info["files"] = {p.name: sha256(p) for p in sorted(tmp.iterdir()) if p.is_file()}
        files.atomic_write_json(tmp / INFO_FILE, info)
    return info


# Every name a synthetic folder of any layout can hold (with atomic_directory's COMPLETE marker).
SYNTHETIC_FILES = frozenset({INFO_FILE, TRUTH_FILE, files.COMPLETE_MARKER,
                             *(name for names in LAYOUTS.values() for name in names), grouplens.ML100K_GENRES})


def check_replaceable(folder: Path) -> None:
    """Refuse to replace ``folder`` unless it is missing, empty, or an earlier synthetic folder of ours.

    Raises:
        ValueError: ``folder`` is a file, or holds something :func:`generate_synthetic` did not
            write; the message lists a few names and says how to proceed. Nothing is changed.
    """
    if not folder.exists():
        return
    if not folder.is_dir():
        raise ValueError(f"{folder} is a file, not a folder; nothing was changed (pass a new folder to --to)")
    names = sorted(p.name for p in folder.iterdir())
    foreign = [name for name in names if name not in SYNTHETIC_FILES]
    if names and (foreign or INFO_FILE not in names):
        listed = ", ".join(foreign[:5] or names[:5]) + (" ..." if len(foreign or names) > 5 else "")
        raise ValueError(f"{folder} is not empty and is not a synthetic folder written by kcourse (it holds {listed}); "
                         f"nothing was changed. Pass a new or empty folder, or move its files away first")
    if names:  # names alone are not enough: a real ratings.csv copied in has a synthetic file's name
        changed = _changed_files(folder, names)
        if changed:
            raise ValueError(f"{folder} is a synthetic folder but {', '.join(changed[:3])} "
                             f"{'is' if len(changed) == 1 else 'are'} not the file kcourse generated there (replaced "
                             f"or edited since); nothing was changed. Pass a new folder, or move the file away first")


def _changed_files(folder: Path, names: list[str]) -> list[str]:
    """The data files of an earlier synthetic folder that are not what its ``SYNTHETIC.json`` recorded."""
    try:
        info = json.loads((folder / INFO_FILE).read_text())
    except (OSError, ValueError):
        return [INFO_FILE]
    recorded = info.get("files") if isinstance(info, dict) else None
    data = [name for name in names if name not in (INFO_FILE, files.COMPLETE_MARKER) and (folder / name).is_file()]
    if isinstance(recorded, dict):
        return [name for name in data if recorded.get(name) != sha256(folder / name)]
    # written before the checksums were recorded: the ratings file must still have the generated row count
    n_ratings = info.get("n_ratings") if isinstance(info, dict) else None
    ratings_name = LAYOUTS.get(info.get("layout", "csv"), LAYOUTS["csv"])[0] if isinstance(info, dict) else None
    path = folder / str(ratings_name)
    if isinstance(n_ratings, int) and path.is_file():
        with open(path, "rb") as handle:
            lines = sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b""))
        if lines - (ratings_name == RATINGS_FILE) != n_ratings:
            return [ratings_name]
    return []


def true_expected_ratings(folder: str | os.PathLike, users: np.ndarray, films: np.ndarray,
                          chunk: int = 200) -> np.ndarray:
    """``[len(users), len(films)]`` the generator's expected observed rating of every (user, film) pair.

    ``users``/``films`` are the generator's indices (``userId - 1``; a film's place in ``movieId`` order).
    The true rating is ``rating_centre + b_u + b_m + p_u . q_m`` with the centre the generator used
    (``SYNTHETIC.json``), which with exposure is not ``spec.mean``.

    Raises:
        FileNotFoundError: not a folder written by :func:`generate_synthetic`. ValueError: one written
            before the centre was saved (regenerate it).
    """
    folder = Path(folder)
    if not (folder / TRUTH_FILE).is_file() or not (folder / INFO_FILE).is_file():
        raise FileNotFoundError(f"{folder}: no {TRUTH_FILE}/{INFO_FILE}; true ratings exist only for folders written "
                                f"by generate_synthetic")
    info = json.loads((folder / INFO_FILE).read_text())
    if not isinstance(info.get("rating_centre"), (int, float)):
        raise ValueError(f"{folder / INFO_FILE} has no rating_centre (written by an older kcourse): generate the "
                         f"folder again")
    users, films = np.asarray(users, "int64"), np.asarray(films, "int64")
    with np.load(folder / TRUTH_FILE) as truth:
        p, q = truth["user_factors"][users], truth["movie_factors"][films]
        b_user, b_movie = truth["user_bias"][users], truth["movie_bias"][films]
    out = np.empty((len(users), len(films)), dtype="float32")
    for start in range(0, len(users), chunk):  # expected_rating makes an [.., 11] array: chunks keep it small
        rows = slice(start, start + chunk)
        r_true = info["rating_centre"] + b_user[rows][:, None] + b_movie[None, :] + p[rows] @ q.T
        out[rows] = expected_rating(r_true, info["spec"]["noise"])
    return out


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
    if not files.is_complete(folder) or not (folder / INFO_FILE).is_file():
        return False
    try:
        info = json.loads((folder / INFO_FILE).read_text())
    except (OSError, json.JSONDecodeError):
        return False
    wanted = dataclasses.asdict(named_spec(size, seed))
    # Folders written before a field existed lack it; they hold its default's data (tested bit for bit).
    written = {**{key: wanted[key] for key in FIELDS_ADDED_IN_VERSION_3}, **(info.get("spec") or {})}
    return (written == wanted and info.get("generator_version") == GENERATOR_VERSION
            and "rating_centre" in info)  # the same data, but true ratings need the saved centre

