"""Top-10 lists a person would accept? Ranking peers side by side, or one saved recommender in detail.

    python benchmarks/recommender_ranking.py --peers ../shared/data/ml-latest-small synthetic synthetic:latest-small
    python benchmarks/recommender_ranking.py --calibrate ../shared/data/ml-latest-small --taste 1.5 --interest 2.5 \
        --interest-rank 6 --zipf 1.3 --offset 5 --activity 1.4 --seed 0 1 2 3 4
    python benchmarks/recommender_ranking.py runs/recommender__0__.../checkpoints/recommender.keras
    python benchmarks/recommender_ranking.py MODEL --data DIR --z 0 0.5 1 2 --min-ratings 0 5 20

``--peers`` trains every ranking on each folder's course split and prints, per folder, the
protocol of ``keras_impl.recommender.metrics`` (validation rating >= 4 relevant, candidates unseen
films with >= 5 training ratings; the ``candidates`` column is the median number each list is drawn
from, smaller for EASE and the blend where EASE's ``EASE_MAX_ITEMS`` cap bites, and a line under the
table says so): popularity; EASE (lambda 200, the default of ``kcourse
recommend`` before its blend with the rating model); the ``implicit`` package's ALS and BPR with their default settings (not tuned), when
it is installed; the keras-rs two-tower model (``keras_impl.recommender.retrieval``); the rating
model's rankings (lower bound: the default before EASE; mean) and EASE blended with it
(``ease-rating``, the default; its fit time is the rating model's, EASE's is the EASE row's). Each row has P@10, R@10, NDCG@10,
its ratio to popularity's, coverage, the median training count of the recommended films and the
fit time, with the load average before and after.

With a MODEL:

Loads the model and the course split of its data (``--data``: a MovieLens folder; default the
synthetic course-size set), then prints, for ranking by the mean, by the lower credible bound (each
``--z`` and ``--min-ratings``) and by popularity: precision/recall/NDCG@10 on the validation split
(a rating >= 4 is relevant), catalogue coverage and the median training count of the recommended
films (``keras_impl.recommender.metrics``).

On a synthetic folder it also prints what the validation metrics cannot see: the users' *true*
expected rating of the films recommended to them (``true@10``, from the generator's factors, over
every user and all of their unrated films), next to the best any list could reach (the oracle's own
top-10) and the mean over all unrated films. Validation ratings exist mostly for popular films (people
rate what they watch), which is why popularity wins the validation metrics while the users' true
opinion of its lists is ordinary.

Last, the top-10 of three users (the most active, the median and the least active) by each ranking,
with every film's training-rating count.

``--calibrate REAL`` compares the real folder's statistics (count distributions, mean rating vs
popularity, popularity's and EASE's P@10 / NDCG@10) with synthetic sets of its size, one per point
of the grid the options span (``--taste --interest --interest-rank --zipf --offset --activity
--seed``).
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402


def true_ratings(folder: Path, data) -> np.ndarray | None:
    """``[U, M]`` the generator's expected rating of every (course user, course film), or None (real data).

    From the centre the generator saved (:func:`keras_impl.movielens.true_expected_ratings`): with
    exposure on it is not ``spec.mean``.
    """
    from keras_impl import movielens

    if not (folder / movielens.TRUTH_FILE).is_file():
        return None
    _, movies = movielens.read_movielens(folder)
    film = np.searchsorted(movies["movieId"].to_numpy(), data.movie_ids)  # generator films are in movieId order
    return movielens.true_expected_ratings(folder, data.user_ids - 1, film)  # generator users are userId - 1


def implicit_peers():
    """``{name: fit(x_train, n_users, n_movies) -> score_fn}`` for implicit's ALS and BPR ({} when not installed)."""
    try:
        import implicit.als
        import implicit.bpr
        import scipy.sparse
        import threadpoolctl
    except ImportError:
        return {}

    def make(cls):
        def fit(x_train, n_users, n_movies):
            matrix = scipy.sparse.csr_matrix((np.ones(len(x_train), "float32"), (x_train[:, 0], x_train[:, 1])),
                                             shape=(n_users, n_movies))
            model = cls(random_state=0)
            with threadpoolctl.threadpool_limits(1, "blas"):  # implicit's advice: its own threads, one BLAS thread
                model.fit(matrix, show_progress=False)
            users, films = np.asarray(model.user_factors), np.asarray(model.item_factors)
            return lambda batch: users[batch] @ films.T
        return fit

    return {"implicit ALS (defaults)": make(implicit.als.AlternatingLeastSquares),
            "implicit BPR (defaults)": make(implicit.bpr.BayesianPersonalizedRanking)}


def synthetic_or_path(name: str) -> Path:
    """'synthetic' (the course-size set), 'synthetic:SIZE' (a named synthetic size) or a folder."""
    from keras_impl import movielens

    if name == "synthetic" or name.startswith("synthetic:"):
        return movielens.synthetic_folder(name.partition(":")[2] or "course")
    return Path(name)


def peers(folders: list[str], k: int, min_ratings: int) -> list[dict]:
    """Train and score every ranking peer on each folder (see the module docstring); prints one table per folder."""
    import time

    from keras_impl import movielens, recommender as rec
    from keras_impl.recommender import ease, metrics, ranking, retrieval

    results = []
    for name in folders:
        folder = synthetic_or_path(name)
        data = movielens.load_course_data(folder)
        x, nu, nm = np.asarray(data.x_train), data.n_users, data.n_movies
        indptr, films = ease.history(x, nu)
        load_before = os.getloadavg()
        print(f"\n{name}: {len(data.frame):,} ratings, {nu} users, {nm} films; train {len(x):,}, val {len(data.x_val):,}; "
              f"load average {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}", flush=True)
        fits = {"popularity": lambda x_, nu_, nm_: (lambda b, c=np.bincount(x_[:, 1], minlength=nm_): np.tile(c, (len(b), 1))),
                "EASE": lambda x_, nu_, nm_: (lambda b, m=ease.fit_ease(x_, nu_, nm_, min_ratings=min_ratings):
                                                        m.scores(indptr, films, b)),
                **implicit_peers(),
                "two-tower, keras-rs in-batch softmax": lambda x_, nu_, nm_: retrieval.fit_two_tower(x_, nu_, nm_).scores}
        rows = []
        for label, fit in fits.items():
            start = time.perf_counter()
            score_fn = fit(x, nu, nm)
            seconds = time.perf_counter() - start
            rows.append({"ranking": label, "fit_seconds": seconds,
                         **metrics.score_report(score_fn, x, data.x_val, data.y_val, nu, nm, k, min_ratings)})
            print(f"  {label}: {seconds:.1f}s", flush=True)
        start = time.perf_counter()
        model, _, _ = rec.train(data, rec.RecommenderConfig(), run_dir=None, verbose_lines=False)
        seconds = time.perf_counter() - start
        scorer = ranking.Scorer.from_model(model)
        scorer.ease = ease.fit_ease(x, nu, nm, min_ratings=min_ratings)
        val_mse = float(np.mean((rec.predict_batch(model, data.x_val) - data.y_val.reshape(-1)) ** 2))
        labels = {"ease-rating": "EASE + rating model (ease-rating, the default)",
                  "lower-bound": "rating model, lower-bound (the default before)", "mean": "rating model, mean"}
        for rank, label in labels.items():
            rows.append({"ranking": label,
                         "fit_seconds": seconds, "val_mse": val_mse,
                         **metrics.ranking_report(scorer, x, data.x_val, data.y_val, k, rank, min_ratings=min_ratings)})
        load_after = os.getloadavg()
        popularity = rows[0]["ndcg"]
        print(f"{name} (rating model val MSE {val_mse:.4f}; load average after {load_after[0]:.2f} {load_after[1]:.2f} "
              f"{load_after[2]:.2f}):")
        print(f"  | ranking | P@{k} | R@{k} | NDCG@{k} | x popularity | coverage | median count | candidates | fit s |")
        print("  |---|---|---|---|---|---|---|---|---|")
        for row in rows:
            row["ndcg_vs_popularity"] = row["ndcg"] / popularity if popularity else float("nan")
            print(f"  | {row['ranking']} | {row['precision']:.4f} | {row['recall']:.4f} | {row['ndcg']:.4f} | "
                  f"{row['ndcg_vs_popularity']:.2f} | {row['coverage']:.4f} | {row['median_count']:.0f} | "
                  f"{row['candidates']:.0f} | {row['fit_seconds']:.1f} |", flush=True)
        fewer = [row["ranking"] for row in rows if row["candidates"] < rows[0]["candidates"]]
        if fewer:  # EASE scores at most EASE_MAX_ITEMS films: say so rather than compare unequal sets silently
            print(f"  (candidates: the median number of films a user's list is drawn from; {', '.join(fewer)} rank "
                  f"fewer than popularity's {rows[0]['candidates']:.0f}: EASE scores only the "
                  f"{ease.EASE_MAX_ITEMS:,} most-rated films)", flush=True)
        results.append({"data": name, "load_before": load_before, "load_after": load_after, "rows": rows})
    return results


def data_statistics(data, k: int = 10, min_ratings: int = 5) -> dict:
    """What the generator is calibrated on: count distributions, mean rating vs popularity, popularity and EASE."""
    from keras_impl.recommender import ease, metrics

    frame = data.frame
    film_counts = np.bincount(frame["movieId"].to_numpy(), minlength=data.n_movies)
    user_counts = np.bincount(frame["userId"].to_numpy(), minlength=data.n_users)
    sums = np.bincount(frame["movieId"].to_numpy(), weights=frame["rating"].to_numpy(), minlength=data.n_movies)
    rated = film_counts >= min_ratings
    film_mean = sums[rated] / film_counts[rated]
    top = film_counts >= np.quantile(film_counts, 0.9)
    x, nu, nm = np.asarray(data.x_train), data.n_users, data.n_movies
    counts = np.bincount(x[:, 1], minlength=nm)
    popularity = metrics.score_report(lambda b: np.tile(counts, (len(b), 1)), x, data.x_val, data.y_val, nu, nm, k,
                                      min_ratings)
    model = ease.fit_ease(x, nu, nm, min_ratings=min_ratings)
    indptr, films = ease.history(x, nu)
    by_ease = metrics.score_report(lambda b: model.scores(indptr, films, b), x, data.x_val, data.y_val, nu, nm, k,
                                   min_ratings)
    return {"ratings": int(len(frame)), "users": int(nu), "films": int(nm),
            "film_count_median": float(np.median(film_counts)), "film_count_p90": float(np.quantile(film_counts, 0.9)),
            "film_count_max": int(film_counts.max()),
            "top10pct_films_share": float(film_counts[top].sum() / film_counts.sum()),
            "user_count_min": int(user_counts.min()), "user_count_median": float(np.median(user_counts)),
            "user_count_p90": float(np.quantile(user_counts, 0.9)), "user_count_max": int(user_counts.max()),
            "mean_rating": float(frame["rating"].mean()),
            "corr_log_count_mean_rating": float(np.corrcoef(np.log(film_counts[rated]), film_mean)[0, 1]),
            "mean_rating_top10pct_films": float(sums[top].sum() / film_counts[top].sum()),
            "mean_rating_other_films": float(sums[~top].sum() / max(film_counts[~top].sum(), 1)),
            "popularity_precision": popularity["precision"], "popularity_ndcg": popularity["ndcg"],
            "ease_ndcg": by_ease["ndcg"], "ease_vs_popularity": by_ease["ndcg"] / max(popularity["ndcg"], 1e-12)}


CALIBRATION_GRID = {"taste": "exposure_taste", "interest": "exposure_interest", "zipf": "popularity_exponent",
                    "activity": "activity_sigma", "offset": "popularity_offset", "interest_rank": "interest_rank", "seed": "seed"}


def calibrate(real: str, grid: dict[str, list[float]]) -> list[dict]:
    """``data_statistics`` of the real folder and of synthetic sets of its size (every grid point); one table."""
    import itertools
    import tempfile

    from keras_impl import movielens

    real_data = movielens.load_course_data(Path(real))
    columns = {"real": data_statistics(real_data)}
    with tempfile.TemporaryDirectory() as tmp:
        for values in itertools.product(*grid.values()):
            point = dict(zip(grid, values))
            name = ", ".join(f"{key} {value:g}" for key, value in point.items())
            spec = movielens.SyntheticSpec(real_data.n_users, real_data.n_movies, len(real_data.frame),
                                           **{CALIBRATION_GRID[key]: value for key, value in point.items()})
            folder = Path(tmp) / name.replace(", ", "-").replace(" ", "")
            movielens.generate_synthetic(folder, spec)
            columns[name] = data_statistics(movielens.load_course_data(folder))
            shutil.rmtree(folder)
            print(f"  {name}: EASE / popularity {columns[name]['ease_vs_popularity']:.2f} "
                  f"(load average {os.getloadavg()[0]:.2f})", flush=True)
    names = list(columns)
    print("| statistic | " + " | ".join(names) + " |")
    print("|---|" + "---|" * len(names))
    for key in columns["real"]:
        print(f"| {key} | " + " | ".join(f"{columns[n][key]:.4g}" for n in names) + " |")
    return [{"data": name, **stats} for name, stats in columns.items()]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", nargs="?", help="a .keras file written by `kcourse run recommender`")
    parser.add_argument("--peers", nargs="+", default=None, metavar="DATA",
                        help="train and compare every ranking on these folders ('synthetic': the course-size set, "
                             "'synthetic:latest-small': the exposure model calibrated to ml-latest-small)")
    parser.add_argument("--calibrate", default=None, metavar="REAL",
                        help="compare a real folder's statistics with synthetic sets of its size (--taste, --zipf)")
    parser.add_argument("--taste", type=float, nargs="+", default=[0.0], help="exposure_taste values (--calibrate)")
    parser.add_argument("--interest", type=float, nargs="+", default=[0.0],
                        help="exposure_interest values (--calibrate)")
    parser.add_argument("--zipf", type=float, nargs="+", default=[0.8], help="popularity exponents (--calibrate)")
    parser.add_argument("--activity", type=float, nargs="+", default=[1.1],
                        help="activity_sigma values (--calibrate)")
    parser.add_argument("--offset", type=float, nargs="+", default=[1.0], help="popularity_offset values (--calibrate)")
    parser.add_argument("--interest-rank", type=int, nargs="+", default=[16], help="interest_rank values (--calibrate)")
    parser.add_argument("--seed", type=int, nargs="+", default=[0], help="generator seeds (--calibrate)")
    parser.add_argument("--data", default="synthetic", help="the model's MovieLens folder (default: synthetic course)")
    parser.add_argument("--z", type=float, nargs="+", default=[1.0], help="lower-bound widths to compare")
    parser.add_argument("--min-ratings", type=int, nargs="+", default=[5], help="min_ratings values to compare")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--json", default=None, help="also write the numbers as JSON")
    args = parser.parse_args(argv)
    from keras_impl import files

    files.exit_unless_writable(parser, args.json)  # before the long work: one line, not a late traceback
    if args.calibrate:
        grid = {key: getattr(args, key) for key in CALIBRATION_GRID}
        results = calibrate(args.calibrate, grid)
        if args.json:
            files.atomic_write_json(args.json, results)
        return 0
    if args.peers:
        results = peers(args.peers, args.k, args.min_ratings[0])
        if args.json:
            files.atomic_write_json(args.json, results)
        return 0
    if args.model is None:
        parser.error("give a MODEL or --peers DATA ...")
    from keras_impl import movielens, recommender as rec
    from keras_impl.recommender import metrics, ranking

    folder = synthetic_or_path(args.data)
    data = movielens.load_course_data(folder)
    model = rec.load(args.model)
    scorer = ranking.Scorer.from_model(model)
    truth = true_ratings(folder, data)
    rankings = [("mean", 0.0, 0), ("mean", 0.0, 5)] + [("lower-bound", z, m) for z in args.z for m in args.min_ratings]
    rankings.append(("popularity", 0.0, 0))
    results = []
    seen = np.zeros((data.n_users, data.n_movies), dtype=bool)
    seen[data.x_train[:, 0], data.x_train[:, 1]] = True
    print(f"{'ranking':<26} {'prec@k':>7} {'recall@k':>8} {'NDCG@k':>7} {'coverage':>8} {'median n':>8}"
          + (f" {'true@k':>7}" if truth is not None else ""))
    for rank, z, min_ratings in rankings:
        report = metrics.ranking_report(scorer, data.x_train, data.x_val, data.y_val, args.k, rank, z, min_ratings)
        if truth is not None:  # every user, every unrated film
            top = metrics.top_lists(scorer, data.x_train, np.arange(data.n_users), args.k, rank, z, min_ratings)
            report["true_rating"] = float(np.mean(np.take_along_axis(truth, np.maximum(top, 0), 1)[top >= 0]))
        label = rank if rank != "lower-bound" else f"lower-bound z={z:g}"
        label += f" min={min_ratings}" if rank != "popularity" else ""
        results.append({"ranking": rank, "z": z, "min_ratings": min_ratings, **report})
        print(f"{label:<26} {report['precision']:>7.4f} {report['recall']:>8.4f} {report['ndcg']:>7.4f} "
              f"{report['coverage']:>8.4f} {report['median_count']:>8.0f}"
              + (f" {report['true_rating']:>7.3f}" if truth is not None else ""), flush=True)
    if truth is not None:
        unrated = np.where(seen, -np.inf, truth).astype("float32")
        best = np.partition(unrated, -args.k, axis=1)[:, -args.k:]
        print(f"true@k of the oracle's own top-{args.k}: {best.mean():.3f}; mean over all unrated films: "
              f"{truth[~seen].mean():.3f}")
    users = np.argsort(np.diff(model.mappings.seen_indptr), kind="stable")
    for user in (int(users[-1]), int(users[len(users) // 2]), int(users[0])):
        n_seen = int(np.diff(model.mappings.seen_indptr)[user])
        for rank, min_ratings in (("mean", 0), ("lower-bound", 5)):
            print(f"\nuser index {user} (userId {int(model.mappings.user_ids[user])}, {n_seen} ratings), by {rank}"
                  f" (min_ratings {min_ratings}):")
            for i, item in enumerate(rec.recommend(model, user, args.k, rank=rank, min_ratings=min_ratings), 1):
                real = f"  true {truth[user, item['movie_index']]:.2f}" if truth is not None else ""
                print(f"  {i:2d}. {item['rating']:.2f} (lower bound {item['lower_bound']:.2f}, {item['n_ratings']:>5,} "
                      f"ratings){real}  {item['title']}")
    if args.json:
        files.atomic_write_json(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
