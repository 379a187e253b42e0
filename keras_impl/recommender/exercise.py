"""``kcourse run recommender``: data, training, the course's log, the scatter plot, top-N, the saved model.

Multi-worker training runs one process per worker with ``TF_CONFIG`` set:
``python -m keras_impl.recommender worker --data DIR --out result.json`` (:func:`worker_main`).
"""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np

from keras_impl import config as cfglib
from keras_impl import files, movielens, runtime
from keras_impl.configs import RecommenderConfig
from keras_impl.recommender.inference import predict, predict_batch, recommend, save, scatter_plot
from keras_impl.recommender.training import train, train_multi_worker

COURSE_VAL_MSE = (0.7995, 0.7595, 0.7444, 0.7383, 0.7334)  # the exam's printed val_loss, epochs 1-5
COURSE_QUESTION = (2303, 49)  # user index 2303, movie index 49 "Usual Suspects, The (1995)" (ml-20m)


def load_data(cfg: RecommenderConfig) -> tuple[movielens.CourseData, Path, bool]:
    """The course data from ``cfg.data`` (a folder or ``synthetic``); returns (data, folder, is_synthetic)."""
    if cfg.data == "synthetic":
        folder = movielens.synthetic_folder(cfg.synthetic_size, seed=cfg.seed)
    else:
        folder = Path(cfg.data).expanduser()
    data = movielens.load_course_data(folder, merge_order=cfg.merge_order, n_users=cfg.users)
    return data, folder, (folder / movielens.TRUTH_FILE).is_file()


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
    y_pred = predict_batch(model, data.x_val)
    val_mse = float(np.mean((y_pred - data.y_val.reshape(-1)) ** 2))
    metrics = {"val_mse": val_mse, "val_mse_per_epoch": log.val_mse, "train_samples_per_s": samples_per_s,
               "n_ratings": len(data.frame), "n_users": data.n_users, "n_movies": data.n_movies}
    headline = f"val MSE {val_mse:.4f} after {cfg.epochs} epochs"
    if synthetic:
        oracle = movielens.oracle_mse(folder, data.rows_val, data.y_val)
        metrics["oracle_val_mse"] = oracle
        headline += f" (synthetic {cfg.synthetic_size}; oracle {oracle:.4f}, +{100 * (val_mse / oracle - 1):.1f}%)"
    scatter_plot(data.y_val, y_pred, run_dir / "scatter.png", title=f"validation: MSE {val_mse:.4f}")
    model_path = save(model, run_dir / "checkpoints" / "recommender.keras")
    # An example user: the course's question when the data is ml-20m, else the most active user.
    if _is_ml20m(data, folder):
        answer = predict(model, *COURSE_QUESTION, by="index")
        metrics["question2"] = answer
        print(f"question 2: user index {answer['user_index']} (userId {answer['user_id']}), movie index "
              f"{answer['movie_index']} {answer['title']!r}: predicted rating {answer['rating']:.2f}")
        headline += f"; Q2 user 2303 x {answer['title']}: {answer['rating']:.2f}"
        user = COURSE_QUESTION[0]
    else:
        user = int(np.argmax(np.diff(model.mappings.seen_indptr)))
    top = recommend(model, user, cfg.top_n, by="index")
    print(f"top {cfg.top_n} unseen films for user index {user} (userId {int(model.mappings.user_ids[user])}):")
    for rank, item in enumerate(top, 1):
        print(f"  {rank:2d}. {item['rating']:.2f}  {item['title']}")
    files.atomic_write_json(run_dir / "recommendations.json", {"user_index": user, "top": top})
    print(f"trained {fit_timer.seconds:.1f}s ({samples_per_s:,.0f} samples/s); model: {model_path}", flush=True)
    return {"headline": headline, "metrics": metrics,
            "artifacts": ["scatter.png", "recommendations.json", "checkpoints/recommender.keras"]}



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
