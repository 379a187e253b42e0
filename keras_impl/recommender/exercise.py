"""``kcourse run recommender``: data, training, the course's log, the scatter plot, top-N, ranking metrics, the model.

Multi-worker training runs one process per worker with ``TF_CONFIG`` set:
``python -m keras_impl.recommender worker --data DIR --out result.json`` (:func:`worker_main`).
"""
from __future__ import annotations

import argparse
import json
import os
import warnings
from pathlib import Path

import numpy as np

from keras_impl import config as cfglib
from keras_impl import files, movielens, runtime
from keras_impl.configs import RecommenderConfig
from keras_impl.recommender.inference import predict, predict_batch, recommend, save, scatter_plot
from keras_impl.recommender.ease import fit_ease
from keras_impl.recommender.metrics import ranking_report
from keras_impl.recommender.ranking import RANKINGS
from keras_impl.recommender.ranking import Scorer
from keras_impl.recommender.training import train, train_multi_worker

COURSE_VAL_MSE = (0.7995, 0.7595, 0.7444, 0.7383, 0.7334)  # the exam's printed val_loss, epochs 1-5
COURSE_QUESTION = (2303, 49)  # user index 2303, movie index 49 "Usual Suspects, The (1995)" (ml-20m)


REAL_DATA_NAME = movielens.BUNDLED_NAME


def real_data_places() -> list[Path]:
    """Where ``--data auto`` looks for ml-latest-small, in order: ``./data``, ``~/data`` (the folders the
    docs pass to ``kcourse data download --to``) and the copy shipped with the package (always there)."""
    return [Path.cwd() / "data" / REAL_DATA_NAME, Path.home() / "data" / REAL_DATA_NAME, movielens.bundled_folder()]


def _describe_place(folder: Path) -> str:
    """``folder`` as the `data auto:` line names it ("the copy shipped with kcourse" for the package's own)."""
    return "the copy shipped with kcourse" if folder == movielens.bundled_folder() else str(folder)


def find_real_data() -> Path | None:
    """The first of :func:`real_data_places` holding ratings.csv and movies.csv, or None."""
    for place in real_data_places():
        if (place / "ratings.csv").is_file() and (place / "movies.csv").is_file():
            return place
    return None


def load_data(cfg: RecommenderConfig) -> tuple[movielens.CourseData, Path, bool]:
    """The course data from ``cfg.data`` (a folder or ``synthetic``); returns (data, folder, is_synthetic).

    Ratings dropped by the merge (films missing from the films file) are reported as one
    ``warning: ...`` line instead of a Python warning.
    """
    source = cfg.data
    if source == "auto":  # real data when there is some, and say which
        found = find_real_data()
        source = str(found) if found is not None else "synthetic"
        print(f"data auto: {f'real MovieLens {REAL_DATA_NAME} ({_describe_place(found)})' if found else f'synthetic {cfg.synthetic_size} (no {REAL_DATA_NAME} in ' + ', '.join(map(str, real_data_places())) + ')'}",
              flush=True)
    if source == "synthetic":
        folder = movielens.synthetic_folder(cfg.synthetic_size, seed=cfg.seed)
    else:
        folder = Path(source).expanduser()
    print(f"reading {folder}: {movielens.describe_layout(folder)}", flush=True)  # which files, when several layouts
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", movielens.CourseDataWarning)
        data = movielens.load_course_data(folder, merge_order=cfg.merge_order, n_users=cfg.users)
    for warning in caught:
        if issubclass(warning.category, movielens.CourseDataWarning):
            print(f"warning: {warning.message}", flush=True)
        else:
            warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    return data, folder, (folder / movielens.TRUTH_FILE).is_file()


# Recorded references (docs/recommender.md): the course's PyTorch loop (benchmarks/recommender.py: its
# MLP, Adam, batch 64, 5 epochs) on the same course split, and on the synthetic course set (seed 0)
# the ratings-only bound (benchmarks/recommender_floor.py: variational Bayes MF told the true rank and priors).
SYNTHETIC_COURSE_REFERENCE = {"bound_val_mse": 0.7036, "pytorch_val_mse": 0.7593}
REAL_REFERENCES = {(100_836, 610): ("ml-latest-small", 0.867), (100_000, 943): ("ml-100k", 0.959)}  # (ratings, users)


def _reference(data: movielens.CourseData, folder: Path, synthetic: bool, cfg: RecommenderConfig) -> dict | None:
    """The recorded reference for this data, or None: the synthetic course set at seed 0, or a known real set."""
    if synthetic:
        if (folder.parent.name, folder.name) == ("movielens-synthetic", "course__seed0"):  # synthetic_folder("course")
            return {**SYNTHETIC_COURSE_REFERENCE, "what": f"target <= 1.02 x the ratings-only bound "
                    f"{SYNTHETIC_COURSE_REFERENCE['bound_val_mse']:.4f} and below the PyTorch loop"}
        return None
    known = REAL_REFERENCES.get((len(data.frame), data.n_users))
    if known is None or cfg.users < data.n_users:
        return None
    return {"data": known[0], "pytorch_val_mse": known[1], "what": f"real {known[0]}; target NDCG@10 >= 1.8x popularity and val MSE below the PyTorch loop"}


def _is_ml20m(data: movielens.CourseData, folder: Path) -> bool:
    return "ml-20m" in folder.name and data.n_users > COURSE_QUESTION[0] and data.n_movies > COURSE_QUESTION[1]


def run(cfg: RecommenderConfig, run_dir: Path) -> dict:
    """``kcourse run recommender``: train, print the course's lines, write the plot, top-N and model."""
    with runtime.Timer() as load_timer:
        data, folder, synthetic = load_data(cfg)
    print(f"data: {folder} -> {len(data.frame):,} ratings, {data.n_users} users, {data.n_movies} films "
          f"(merge order {cfg.merge_order}, {load_timer.seconds:.1f}s); train {len(data.x_train):,}, val {len(data.x_val):,}",
          flush=True)
    with runtime.Timer() as fit_timer:
        if cfg.strategy == "multi-worker":  # one process per worker, cluster from TF_CONFIG
            model, log = train_multi_worker(data, cfg, runtime.strategy("multi-worker"))
        else:
            model, _, log = train(data, cfg, run_dir)
    samples_per_s = len(data.x_train) * cfg.epochs / fit_timer.seconds
    with runtime.Timer() as ease_timer:  # the ranking model, saved with the rating model
        model.mappings.ease = fit_ease(data.x_train, data.n_users, data.n_movies, min_ratings=cfg.min_ratings)
    y_pred = predict_batch(model, data.x_val)
    val_mse = float(np.mean((y_pred - data.y_val.reshape(-1)) ** 2))
    metrics = {"val_mse": val_mse, "val_mse_per_epoch": log.val_mse, "train_samples_per_s": samples_per_s,
               "n_ratings": len(data.frame), "n_users": data.n_users, "n_movies": data.n_movies,
               "n_dropped_ratings": data.n_dropped, "fit_seconds": fit_timer.seconds,
               "ease_fit_seconds": ease_timer.seconds}
    headline = f"val MSE {val_mse:.4f} after {cfg.epochs} epochs"
    if synthetic:
        oracle = movielens.oracle_mse(folder, data.rows_val, data.y_val)
        metrics["oracle_val_mse"] = oracle
        name = folder.name if Path(cfg.data).expanduser() == folder else cfg.synthetic_size
        headline += f" (synthetic {name}; oracle {oracle:.4f}, +{100 * (val_mse / oracle - 1):.1f}%)"
    reference = _reference(data, folder, synthetic, cfg)
    if reference:
        metrics["reference"] = reference
        headline += f"; {reference['what']} {reference['pytorch_val_mse']:.4f}"
    scatter_plot(data.y_val, y_pred, run_dir / "scatter.png", title=f"validation: MSE {val_mse:.4f}")
    model_path = save(model, run_dir / "checkpoints" / "recommender.keras")
    ml20m = _is_ml20m(data, folder)
    if ml20m:  # the course's question 2
        answer = predict(model, *COURSE_QUESTION, by="index")
        metrics["question2"] = answer
        print(f"question 2: user index {answer['user_index']} (userId {answer['user_id']}), movie index "
              f"{answer['movie_index']} {answer['title']!r}: predicted rating {answer['rating']:.2f}")
        headline += f"; Q2 user 2303 x {answer['title']}: {answer['rating']:.2f}"
    _example_top(model, cfg, run_dir, COURSE_QUESTION[0] if ml20m else None)
    if cfg.ranking_metrics:
        metrics[f"ranking@{cfg.top_n}"] = ranking_metrics(model, data, cfg)
        table = metrics[f"ranking@{cfg.top_n}"]
        ratio = table[cfg.rank]["ndcg"] / table["popularity"]["ndcg"] if table["popularity"]["ndcg"] else float("nan")
        headline += (f"; NDCG@{cfg.top_n} {table[cfg.rank]['ndcg']:.4f} ({cfg.rank}) = {ratio:.2f}x popularity "
                     f"{table['popularity']['ndcg']:.4f} (EASE {table['ease']['ndcg']:.4f})")
    print(f"trained {fit_timer.seconds:.1f}s ({samples_per_s:,.0f} samples/s), EASE {ease_timer.seconds:.1f}s; model: "
          f"{model_path}", flush=True)
    if reference and "bound_val_mse" in reference:  # the synthetic course set: near the bound, below PyTorch
        reached = val_mse <= 1.02 * reference["bound_val_mse"] and val_mse < reference["pytorch_val_mse"]
    elif reference:  # real data: below the course's PyTorch loop on the same split, lists >= 1.8x popularity's
        table = metrics.get(f"ranking@{cfg.top_n}")
        reached = val_mse < reference["pytorch_val_mse"] and (
            table is None or table[cfg.rank]["ndcg"] >= 1.8 * table["popularity"]["ndcg"])
    else:  # other synthetic sets: within 10% of the oracle (the generator's true expected ratings)
        reached = val_mse <= 1.10 * metrics["oracle_val_mse"] if synthetic else None
    return {"headline": headline, "metrics": metrics, "reached": reached,
            "artifacts": ["scatter.png", "recommendations.json", "checkpoints/recommender.keras"]}


def _example_top(model, cfg: RecommenderConfig, run_dir: Path, user: int | None) -> None:
    """Print and save the top-N of an example user (the course's user 2303 on ml-20m, else the most active)."""
    if user is None:
        user = int(np.argmax(np.diff(model.mappings.seen_indptr)))
    top = recommend(model, user, cfg.top_n, by="index", rank=cfg.rank, z=cfg.credible_z, min_ratings=cfg.min_ratings)
    print(f"top {cfg.top_n} unseen films for user index {user} (userId {int(model.mappings.user_ids[user])}), by "
          f"{cfg.rank}{f' (z {cfg.credible_z:g})' if cfg.rank == 'lower-bound' else ''}, films with at least "
          f"{cfg.min_ratings} training ratings:")
    for rank, item in enumerate(top, 1):
        print(f"  {rank:2d}. {item['rating']:.2f} (lower bound {item['lower_bound']:.2f}, {item['n_ratings']:,} "
              f"ratings)  {item['title']}")
    files.atomic_write_json(run_dir / "recommendations.json", {"user_index": user, "rank": cfg.rank,
                                                               "min_ratings": cfg.min_ratings, "top": top})


def ranking_metrics(model, data: movielens.CourseData, cfg: RecommenderConfig) -> dict:
    """Top-k metrics on the validation split for EASE, the lower bound, the mean and popularity; printed as a table."""
    scorer = Scorer.from_model(model)
    k, out = cfg.top_n, {}
    for rank in RANKINGS + ("popularity",):
        out[rank] = ranking_report(scorer, data.x_train, data.x_val, data.y_val, k=k, rank=rank, z=cfg.credible_z,
                                   min_ratings=cfg.min_ratings)
    print(f"ranking on the validation split (rating >= 4 relevant; {out['mean']['users']:,} users; films with at least "
          f"{cfg.min_ratings} training ratings; lower bound z {cfg.credible_z:g}):")
    print(f"  {'ranking':<12} {f'precision@{k}':>13} {f'recall@{k}':>10} {f'NDCG@{k}':>8} {'coverage':>9} "
          f"{'median count':>13}")
    for rank, row in out.items():
        print(f"  {rank:<12} {row['precision']:>13.4f} {row['recall']:>10.4f} {row['ndcg']:>8.4f} "
              f"{row['coverage']:>9.4f} {row['median_count']:>13,.0f}")
    return out


def worker_main(argv: list[str] | None = None) -> int:
    """One worker of a multi-worker run (cluster from ``TF_CONFIG``); writes its val MSE as JSON.

    The options are :class:`RecommenderConfig`'s (generated, as for ``kcourse run recommender``)
    plus ``--out``; the strategy defaults to ``multi-worker``. Every worker reads the same folder
    and computes the same split (the preprocessing is deterministic). ``--strategy cpu`` runs the
    same loop in one process, as the reference.
    """
    parser = argparse.ArgumentParser(prog="python -m keras_impl.recommender worker")
    parser.add_argument("--out", required=True, help="JSON file for this worker's result")
    cfglib.add_config_arguments(parser, RecommenderConfig)
    typed = vars(parser.parse_args(argv))
    out = typed.pop("out")
    cfg = cfglib.resolve(RecommenderConfig, {"strategy": "multi-worker", **typed})
    strategy = runtime.strategy(cfg.strategy)  # before any other TF op: collectives are set up here
    runtime.seed_everything(cfg.seed)
    data, _, _ = load_data(cfg)
    model, log = train_multi_worker(data, cfg, strategy, printer=lambda line: print(line, flush=True))
    task = json.loads(os.environ.get("TF_CONFIG", "{}")).get("task", {}).get("index", 0)
    files.atomic_write_json(out, {"val_mse": log.val_mse[-1], "val_mse_per_epoch": log.val_mse,
                                  "workers": strategy.num_replicas_in_sync, "task": task})
    return 0
