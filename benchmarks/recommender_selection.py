"""Re-derive the recommender's tuned constants on the selection split: EASE's lambda and neighbours, the blend weight.

    python benchmarks/recommender_selection.py                      # ml-latest-small (shipped), the full grid
    python benchmarks/recommender_selection.py --quick              # one lambda, one sparsity, weights 0 and 2
    python benchmarks/recommender_selection.py --data synthetic:small --quick

The **selection split** is carved out of the course split's *training* ratings: 1/9 of them held
out (``train_test_split(test_size=1/9, random_state=1)``), every model fitted on the other 8/9. The
course split's validation ratings, which ``kcourse run recommender`` reports, take no part. On it:

1. EASE (``keras_impl.recommender.ease``) for every ``--lambdas`` x ``--neighbours`` (``0``: dense
   ``B``), NDCG@10 by the ranking protocol of ``keras_impl.recommender.metrics`` (a held-out rating
   >= 4 is relevant; candidates: unrated films with >= 5 training ratings);
2. the rating model (``kcourse run recommender``'s default config) trained once, and the blend
   ``ranking.blend`` (EASE standardised per user + weight x predicted rating) for every
   ``--weights``, with the best EASE of step 1 and with the library's (the one the product ships).

It prints both grids as Markdown tables, the best point of each next to the library's constants
(``EASE_LAMBDA``, ``EASE_NEIGHBOURS``, ``BLEND_WEIGHT``) and the load average before and after:
a measurement, not a test. The NDCG values are exact for the data and seeds; the times are not.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

SELECTION_SHARE = 1 / 9  # of the course split's training ratings
SELECTION_SEED = 1
LAMBDAS = (100.0, 200.0, 300.0, 400.0, 1000.0)
NEIGHBOURS = (50, 200, 0)  # 0: dense B
WEIGHTS = (0.0, 0.5, 1.0, 2.0, 4.0)
QUICK = {"lambdas": (200.0,), "neighbours": (200,), "weights": (0.0, 2.0)}


def selection_split(data, share: float = SELECTION_SHARE, seed: int = SELECTION_SEED):
    """``data`` with its training ratings split again: ``x_train`` the rest, ``x_val`` ``share`` of them (``seed``)."""
    import sklearn.model_selection

    x_fit, x_sel, y_fit, y_sel, rows_fit, rows_sel = sklearn.model_selection.train_test_split(
        data.x_train, data.y_train, data.rows_train, test_size=share, random_state=seed)
    return dataclasses.replace(data, x_train=x_fit, x_val=x_sel, y_train=y_fit, y_val=y_sel, rows_train=rows_fit,
                               rows_val=rows_sel)


def ease_grid(data, lambdas, neighbours, k: int = 10, min_ratings: int = 5) -> dict[tuple[float, int], float]:
    """``{(lambda, neighbours): NDCG@k}`` of EASE fitted on ``data.x_train``, scored on ``data.x_val``."""
    from keras_impl.recommender import ease, metrics

    x, nu, nm = np.asarray(data.x_train), data.n_users, data.n_movies
    indptr, films = ease.history(x, nu)
    out = {}
    for lam in lambdas:
        for keep in neighbours:
            model = ease.fit_ease(x, nu, nm, lam=lam, min_ratings=min_ratings, neighbours=keep or nm)
            report = metrics.score_report(lambda b, m=model: m.scores(indptr, films, b), x, data.x_val, data.y_val,
                                          nu, nm, k, min_ratings)
            out[(lam, keep)] = report["ndcg"]
            print(f"  EASE lambda {lam:g}, neighbours {keep or 'dense'}: NDCG@{k} {report['ndcg']:.4f}", flush=True)
    return out


def blend_grid(data, eases: dict, weights, epochs: int | None = None, k: int = 10,
               min_ratings: int = 5) -> dict[tuple[str, float], float]:
    """``{(ease name, weight): NDCG@k}`` of ``ranking.blend`` (each of ``eases`` + weight x the rating model
    trained once on ``data``)."""
    from keras_impl import recommender as rec
    from keras_impl.recommender import ease, metrics, ranking

    cfg = rec.RecommenderConfig() if epochs is None else rec.RecommenderConfig(epochs=epochs)
    model, _, _ = rec.train(data, cfg, run_dir=None, verbose_lines=False)
    scorer = ranking.Scorer.from_model(model)
    x = np.asarray(data.x_train)
    indptr, films = ease.history(x, data.n_users)
    out = {}
    for name, model_ease in eases.items():
        for weight in weights:
            def score(batch, m=model_ease, w=weight):
                return ranking.blend(m.scores(indptr, films, batch), scorer.scores(batch, "mean")[0], w)

            out[(name, weight)] = metrics.score_report(score, x, data.x_val, data.y_val, data.n_users,
                                                       data.n_movies, k, min_ratings)["ndcg"]
            print(f"  blend with {name}, weight {weight:g}: NDCG@{k} {out[(name, weight)]:.4f}", flush=True)
    return out


def ease_table(grid: dict, lambdas, neighbours) -> list[str]:
    """The EASE grid as Markdown: one row per lambda, one column per sparsity."""
    head = "| lambda | " + " | ".join(f"{n or 'dense'} weights" for n in neighbours) + " |"
    lines = [head, "|---|" + "---|" * len(neighbours)]
    for lam in lambdas:
        lines.append(f"| {lam:g} | " + " | ".join(f"{grid[(lam, n)]:.4f}" for n in neighbours) + " |")
    return lines


def main(argv=None) -> int:
    from keras_impl.recommender.ease import EASE_LAMBDA, EASE_NEIGHBOURS
    from keras_impl.recommender.ranking import BLEND_WEIGHT

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=None, help="a MovieLens folder, 'synthetic' or 'synthetic:SIZE' "
                                                     "(default: the ml-latest-small shipped with kcourse)")
    parser.add_argument("--quick", action="store_true", help="one lambda (200), one sparsity (200), weights 0 and 2")
    parser.add_argument("--lambdas", type=float, nargs="+", default=list(LAMBDAS))
    parser.add_argument("--neighbours", type=int, nargs="+", default=list(NEIGHBOURS), help="0: dense B")
    parser.add_argument("--weights", type=float, nargs="+", default=list(WEIGHTS))
    parser.add_argument("--epochs", type=int, default=None, help="rating-model epochs (default: the config's)")
    parser.add_argument("--json", default=None, help="also write the grids as JSON")
    args = parser.parse_args(argv)
    from keras_impl import files, movielens
    from keras_impl.recommender import ease

    files.exit_unless_writable(parser, args.json)
    if args.quick:
        args.lambdas, args.neighbours, args.weights = (list(QUICK[key]) for key in ("lambdas", "neighbours", "weights"))
    if args.data is None:
        folder, name = movielens.bundled_folder(), "ml-latest-small (shipped)"
    elif args.data == "synthetic" or args.data.startswith("synthetic:"):
        folder, name = movielens.synthetic_folder(args.data.partition(":")[2] or "course"), args.data
    else:
        folder, name = Path(args.data), args.data
    data = selection_split(movielens.load_course_data(folder))
    before = os.getloadavg()
    print(f"{name}: selection split of the course training ratings: fit on {len(data.x_train):,}, select on "
          f"{len(data.x_val):,} (1/9, seed {SELECTION_SEED}); load average {before[0]:.2f} {before[1]:.2f} "
          f"{before[2]:.2f}", flush=True)
    start = time.perf_counter()
    grid = ease_grid(data, args.lambdas, args.neighbours)
    lam, keep = max(grid, key=grid.get)
    eases = {"best EASE": ease.fit_ease(data.x_train, data.n_users, data.n_movies, lam=lam,
                                        neighbours=keep or data.n_movies),
             "library EASE": ease.fit_ease(data.x_train, data.n_users, data.n_movies)}
    weights = blend_grid(data, eases, args.weights, args.epochs)
    best_name, best_weight = max(weights, key=weights.get)
    after = os.getloadavg()
    print(f"\nEASE NDCG@10 on the selection split ({name}):")
    print("\n".join(ease_table(grid, args.lambdas, args.neighbours)))
    print(f"best: lambda {lam:g}, {keep or 'dense'} weights (library: EASE_LAMBDA {EASE_LAMBDA:g}, "
          f"EASE_NEIGHBOURS {EASE_NEIGHBOURS})")
    print("\nblend NDCG@10 (EASE standardised per user + weight x predicted rating):")
    print("| EASE | " + " | ".join(f"weight {w:g}" for w in args.weights) + " |")
    print("|---|" + "---|" * len(args.weights))
    labels = {"best EASE": f"best (lambda {lam:g}, {keep or 'dense'} weights)",
              "library EASE": f"library (lambda {EASE_LAMBDA:g}, {EASE_NEIGHBOURS} weights)"}
    for name in eases:
        print(f"| {labels[name]} | " + " | ".join(f"{weights[(name, w)]:.4f}" for w in args.weights) + " |")
    print(f"best: weight {best_weight:g} with the {best_name} (library: BLEND_WEIGHT {BLEND_WEIGHT:g})")
    print(f"{time.perf_counter() - start:.0f}s; load average after {after[0]:.2f} {after[1]:.2f} {after[2]:.2f}")
    if args.json:
        files.atomic_write_json(args.json, {"data": name, "ease": [{"lambda": k[0], "neighbours": k[1], "ndcg": v}
                                                                   for k, v in grid.items()],
                                            "blend": [{"ease": k[0], "weight": k[1], "ndcg": v}
                                                      for k, v in weights.items()],
                                            "best": {"lambda": lam, "neighbours": keep, "weight": best_weight},
                                            "load_before": before, "load_after": after})
    return 0


if __name__ == "__main__":
    sys.exit(main())
