"""Synthetic MovieLens folders (CSV, ml-100k or ml-1m layout) from a latent-factor model, with the oracle MSE.

Tests and demos use these folders: every size, seed and exposure model on demand. The made-up
catalogue (genres that follow the films' traits, titles) is :mod:`keras_impl.movielens.catalogue`;
what a folder knows about its true ratings (``synthetic_truth.npz``, the oracle MSE) is read by
:mod:`keras_impl.movielens.truth`.
"""
from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd

from keras_impl import files
from keras_impl.checkpoints import sha256
from keras_impl.movielens import grouplens
from keras_impl.movielens.catalogue import assign_genres, genre_variance_share, make_titles
from keras_impl.movielens.readers import LAYOUTS
from keras_impl.movielens.truth import INFO_FILE, TRUTH_FILE, expected_rating
from keras_impl.movielens.validation import MOVIES_FILE, RATING_MAX, RATING_MIN, RATINGS_FILE

# ----------------------------------------------------------------------------------------------
# Synthetic MovieLens
# ----------------------------------------------------------------------------------------------

# Bump when generate_synthetic's output changes for the same spec, so cached folders are remade.
# 3: genres drawn from noisy trait scores (SyntheticSpec.genre_strength), 1-3 per film, 18 names;
#    ratings, titles and timestamps are those of version 2 for the same spec (the genres have their own stream).
GENERATOR_VERSION = 3
# Spec fields added since, whose defaults give version 3's data bit for bit.
FIELDS_ADDED_IN_VERSION_3 = ("exposure_taste", "exposure_interest", "interest_rank", "popularity_offset")

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
    movies = pd.DataFrame({"movieId": movie_ids, "title": make_titles(spec.n_movies, years, rng), "genres": genre_names})
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

