"""The Atari results table over seeds: per-seed report means under both protocols with their distinct
outcomes, and over seeds the mean, median, worst seed and the interquartile mean (IQM) with its 95%
stratified-bootstrap interval from ``rliable`` (Agarwal et al. 2021). Also names the seed that the
committed-policy rule of docs/atari.md picks.

It reads only the runs' JSON files (``result.json``, the last checkpoint's ``state.json``), so it runs
in the small analysis environment (``make analysis``: rliable and NumPy, no TensorFlow)::

    .venv-analysis/bin/python scripts/atari_report.py /work/runs/atari/dqn__[0-4]__* [--json table.json]

rliable is used rather than a hand-written bootstrap: its stratified bootstrap is the field's
reference implementation (the honesty issue asks for it by name).
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import numpy as np
from plot_breakout_curves import selection_evals, tfa_history  # this folder: one reader of run files

PROTOCOLS = ("sticky", "atari100k")
RULE_EVALS = 3  # docs/atari.md: the last 3 selection evaluations (80k, 90k, 100k agent steps)
# (random, human) game scores of the games we run, as in Dopamine's
# dopamine/labs/atari_100k/normalization_utils.py (Mnih et al. 2015's random and human testers).
RANDOM_HUMAN = {"Breakout": (1.7, 30.5), "Pong": (-20.7, 14.6), "SpaceInvaders": (148.0, 1668.7)}


def game_of(env_id) -> str:
    """``ALE/SpaceInvaders-v5`` -> ``SpaceInvaders`` (the key of :data:`RANDOM_HUMAN`)."""
    return str(env_id).split("/")[-1].split("-")[0]


def human_normalised(score: float, game: str):
    """``(score - random) / (human - random)``: 0 plays like random, 1 like the human tester; None for a
    game without scores here."""
    if game not in RANDOM_HUMAN:
        return None
    random, human = RANDOM_HUMAN[game]
    return (score - random) / (human - random)


def selection_means(folder: Path) -> list[float]:
    """The run's selection-evaluation means in order, read by the curve plot's readers: the hand-written
    agent's from its newest checkpoint's state, TF-Agents' from ``eval_history.json``."""
    evals = selection_evals(folder)
    if len(evals):
        return [float(m) for m in evals[:, 2]]  # [step, episode, mean, std, episodes]
    return [float(m) for m in tfa_history(folder)[2]] if (folder / "eval_history.json").is_file() else []


def read_run(folder: Path) -> dict:
    """One run's seed, env, per-protocol reports and the selection score of the committed-policy rule.

    Raises:
        ValueError: a folder that is not a finished Atari run (one line naming it).
    """
    result_file = folder / "result.json"
    if not result_file.is_file():
        raise ValueError(f"{folder}: no result.json (not a finished run)")
    result = json.loads(result_file.read_text())
    metrics = result.get("metrics") or {}
    reports = metrics.get("reports")
    if not reports or any(p not in reports for p in PROTOCOLS):
        raise ValueError(f"{folder}: result.json has no report under both protocols ({', '.join(PROTOCOLS)})")
    config = json.loads((folder / "config.json").read_text()) if (folder / "config.json").is_file() else {}
    last = selection_means(folder)[-RULE_EVALS:]
    return {"run": folder.name, "seed": config.get("seed"), "env": config.get("env"),
            "code": result.get("code"), "resumed_at": metrics.get("resumed_at") or [],
            "train_seconds": metrics.get("train_seconds"),
            "selection_score": float(np.mean(last)) if len(last) == RULE_EVALS else None,
            **{p: {"mean": reports[p]["mean"], "std": reports[p]["std"], "episodes": reports[p]["episodes"],
                   "distinct": reports[p]["distinct_outcomes"]} for p in PROTOCOLS}}


def iqm_interval(values, reps: int = 50_000, seed: int = 0) -> tuple[float, float, float]:
    """``(IQM, low, high)``: rliable's interquartile mean over runs and its 95% stratified-bootstrap interval."""
    from rliable import library as rly
    from rliable import metrics

    scores = {"runs": np.asarray(values, dtype=np.float64).reshape(-1, 1)}  # [runs, 1 task]
    point, interval = rly.get_interval_estimates(scores, lambda x: np.array([metrics.aggregate_iqm(x)]),
                                                 reps=reps, random_state=np.random.RandomState(seed))
    return float(point["runs"][0]), float(interval["runs"][0, 0]), float(interval["runs"][1, 0])


def committed_seed(runs: list[dict]):
    """docs/atari.md's rule: the run whose selection score is the median of the runs' (ties: lower seed)."""
    scored = sorted((r for r in runs if r["selection_score"] is not None), key=lambda r: (r["selection_score"], r["seed"]))
    return scored[(len(scored) - 1) // 2] if scored else None


def _iqm_cell(numbers: dict) -> str:
    if numbers["iqm_low"] is None:
        return f"{numbers['iqm']:.2f} (one run: no interval over runs; `kcourse eval` gives one over games)"
    return f"{numbers['iqm']:.2f} [{numbers['iqm_low']:.2f}, {numbers['iqm_high']:.2f}]"


def table(runs: list[dict], reps: int) -> tuple[str, dict]:
    """The markdown table and its numbers."""
    lines = ["| seed | sticky mean +/- std (distinct / games) | atari100k mean +/- std (distinct / games) | "
             "selection score (rule) | resumed at |", "|---|---|---|---|---|"]
    for r in sorted(runs, key=lambda r: r["seed"]):
        cells = [f"{r[p]['mean']:.2f} +/- {r[p]['std']:.2f} ({r[p]['distinct']} / {r[p]['episodes']})" for p in PROTOCOLS]
        score = "-" if r["selection_score"] is None else f"{r['selection_score']:.2f}"
        lines.append(f"| {r['seed']} | {cells[0]} | {cells[1]} | {score} | {', '.join(map(str, r['resumed_at'])) or '-'} |")
    games = sorted({game_of(r["env"]) for r in runs})
    if len(games) != 1:
        raise ValueError(f"the runs are of {len(games)} games ({', '.join(games)}); give one game's runs at a time")
    summary = {"game": games[0]}
    for p in PROTOCOLS:
        means = [r[p]["mean"] for r in runs]
        # one run has no spread over runs: rliable's bootstrap would print [x, x], which reads as certainty
        iqm, low, high = iqm_interval(means, reps) if len(means) > 1 else (means[0], None, None)
        summary[p] = {"mean": statistics.fmean(means), "median": statistics.median(means), "worst": min(means),
                      "iqm": iqm, "iqm_low": low, "iqm_high": high, "seeds": len(means)}
    for name in ("mean", "median", "worst"):
        lines.append(f"| **{name}** | {summary['sticky'][name]:.2f} | {summary['atari100k'][name]:.2f} | | |")
    lines.append("| **IQM [95% CI]** | " + " | ".join(_iqm_cell(summary[p]) for p in PROTOCOLS) + " | | |")
    if games[0] in RANDOM_HUMAN:
        for p in PROTOCOLS:
            summary[p]["iqm_human_normalised"] = human_normalised(summary[p]["iqm"], games[0])
        lines.append(f"| **IQM, human-normalised** ({games[0]}: random {RANDOM_HUMAN[games[0]][0]:g}, human "
                     f"{RANDOM_HUMAN[games[0]][1]:g}) | "
                     + " | ".join(f"{summary[p]['iqm_human_normalised']:.3f}" for p in PROTOCOLS) + " | | |")
    pick = committed_seed(runs)
    summary["committed_seed"] = None if pick is None else pick["seed"]
    return "\n".join(lines), summary


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="finished run folders (one per seed)")
    parser.add_argument("--reps", type=int, default=50_000, help="bootstrap resamples (rliable's default 50,000)")
    parser.add_argument("--json", type=Path, default=None, help="also write the numbers as JSON")
    args = parser.parse_args(argv)
    try:
        runs = [read_run(folder) for folder in args.runs]
        text, summary = table(runs, args.reps)
    except ValueError as err:
        print(f"atari_report: error: {err}", file=sys.stderr)
        return 2
    print(text)
    print(f"\ncommitted policy by the rule of docs/atari.md: seed {summary['committed_seed']}")
    if args.json:
        args.json.write_text(json.dumps({"runs": runs, "summary": summary}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
