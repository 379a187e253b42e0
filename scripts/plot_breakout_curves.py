"""One plot of every Breakout run's learning curve with the published reference scores.

For each run folder of ``kcourse run dqn --env breakout`` (or its benchmark runs): the training
games' returns (full games, epsilon-greedy, a 10-game moving mean) against agent steps, and its
selection evaluations (from the newest checkpoint's ``state.json``), with reference lines for
DrQ 16.1, DER 1.9, random 1.7 and human 30.5 (Atari 100k, the A-LIX paper's Table 5) and HOML's
7.8 (at its own, 8x larger budget).

A ``kcourse run tfa-dqn --env breakout`` folder has no per-game file: its curve is the training
games' average return (TF-Agents' ``AverageReturnMetric``, the last 10 games) at each selection
evaluation, and its selection evaluations, both from ``eval_history.json``.

    python scripts/plot_breakout_curves.py RUN [RUN ...] --out docs/img/breakout_dqn.png
"""
from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import numpy as np

REFERENCES = {"human 30.5": 30.5, "DrQ 16.1": 16.1, "HOML 7.8 (at ~800k steps)": 7.8, "DER 1.9": 1.9,
              "random 1.7": 1.7}


def training_curve(run: Path) -> tuple[np.ndarray, np.ndarray]:
    """``(agent steps at each game's end, game returns)`` from the run's ``returns.csv``."""
    with open(run / "returns.csv") as handle:
        rows = list(csv.DictReader(handle))
    steps = np.cumsum([int(float(r["length"])) for r in rows])
    return steps, np.array([float(r["return"]) for r in rows])


def selection_evals(run: Path) -> np.ndarray:
    """``[step, episode, mean, std, episodes]`` rows of the newest checkpoint (empty if none)."""
    states = sorted((run / "checkpoints").glob("ckpt-*/state.json"))
    if not states:
        return np.zeros((0, 5))
    return np.asarray(json.loads(states[-1].read_text())["state"]["evals"], dtype=float).reshape(-1, 5)


def tfa_history(run: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(agent steps, training average return, selection evaluation mean)`` of a TF-Agents run."""
    rows = json.loads((run / "eval_history.json").read_text())
    return tuple(np.array([float(r[key]) for r in rows]) for key in ("env_steps", "train_avg_return", "eval_mean"))


def report_point(run: Path) -> tuple[float, float] | None:
    """``(agent steps, report mean)`` from ``result.json``: the held-out games after training (None before)."""
    path = run / "result.json"
    if not path.is_file():
        return None
    metrics = json.loads(path.read_text()).get("metrics", {})
    mean = metrics.get("final_eval_mean", metrics.get("eval_mean"))  # tfa-dqn, dqn
    return (float(metrics["env_steps"]), float(mean)) if mean is not None and "env_steps" in metrics else None


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run folders")
    parser.add_argument("--labels", nargs="*", help="one label per run (default: the folder names)")
    parser.add_argument("--out", type=Path, default=Path("docs/img/breakout_dqn.png"))
    args = parser.parse_args(argv)
    for run in args.runs:
        if not (run / "returns.csv").is_file() and not (run / "eval_history.json").is_file():
            parser.error(f"{run}: holds neither returns.csv (kcourse run dqn) nor eval_history.json (kcourse run "
                         f"tfa-dqn); a run writes them as it ends")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 8))
    for i, run in enumerate(args.runs):
        label = args.labels[i] if args.labels and i < len(args.labels) else run.name
        if not (run / "returns.csv").is_file() and (run / "eval_history.json").is_file():  # TF-Agents
            steps, train_mean, eval_mean = tfa_history(run)
            line, = ax.plot(steps, train_mean, "--", label=f"{label}: training games (last 10, at each evaluation)")
            ax.plot(steps, eval_mean, "s", color=line.get_color(), label=f"{label}: selection evaluations")
        else:
            steps, returns = training_curve(run)
            window = min(10, len(returns))
            mean = np.convolve(returns, np.ones(window) / window, mode="valid")
            line, = ax.plot(steps[window - 1:], mean, label=f"{label}: training games (10-game mean)")
            evals = selection_evals(run)
            if len(evals):
                ax.plot(evals[:, 0], evals[:, 2], "o", color=line.get_color(), label=f"{label}: selection evaluations")
        report = report_point(run)
        if report:
            ax.plot(*report, "*", markersize=14, markeredgecolor="black", color=line.get_color(),
                    label=f"{label}: report, held-out games {report[1]:.1f}")
    for (name, value), style in zip(REFERENCES.items(), ("-", "--", "-.", ":", ":")):
        ax.axhline(value, color="grey", linestyle=style, linewidth=1)
        ax.text(ax.get_xlim()[1], value, f" {name}", va="top" if value < 1.8 else "bottom" if value < 2 else "center",
                fontsize=8, color="grey")
    ax.set_xlabel("agent steps (4 frames each)")
    ax.set_ylabel("game return (5 lives)")
    ax.set_title("Breakout at the Atari 100k budget: hand-written Keras and TF-Agents DQN")
    ax.legend(fontsize=7.5, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=2)  # below: the curves stay visible
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=100, bbox_inches="tight")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
