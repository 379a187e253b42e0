"""The policy-regression plugin's numbers: error rates, episodes to a verdict, collection overhead.

Four parts (``docs/policy-testing.md`` quotes them):

1. ``errors``: the sequential test on 1,000 simulated runs of known return distributions on
   [0, 500] with threshold 400 (means 450, 350 and 400 itself): how often each verdict comes and
   after how many episodes. Pure statistics, seconds.
1b. ``quantile``: the quantile criterion (``at_least = 5``, ``fraction = 0.75``) on 1,000 simulated
   runs of Breakout-like returns (heavy-tailed, no useful bound) whose share of games ``>= 5`` is
   0.95, 0.85, 0.75, 0.65 or 0.55, with budgets 240 and 800; and the mean test at ``min_mean =
   7.8`` on the same returns with Breakout's range [0, 864], for comparison. Seconds.
2. ``cartpole``: the committed ``agents/trained/cartpole-v1-dqn`` checked through
   :func:`pytest_kcourse.check.run_check` at several thresholds and episode seeds, against
   ``agents.evaluation.assert_policy_return`` with 100 episodes: episodes and wall time (the
   policy is loaded once, outside the timings).
3. ``collect``: ``pytest --co`` of an empty project (one trivial test, no policies) with and
   without the plugin (``-p no:kcourse-policies``), the median of repeated runs.

Usage::

    nice -n 15 python benchmarks/policy_plugin.py [--parts errors,quantile,cartpole,collect] [--json out.json]

Every part prints the load average it ran at: timings above ~2.5 are "under load".
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agents.policy_stats import first_verdict, indicator, normalize  # noqa: E402

HIGH, THRESHOLD, ALPHA, RUNS = 500.0, 400.0, 0.01, 1000


def load() -> str:
    return "load average %.2f %.2f %.2f" % os.getloadavg()


def cartpole_like(mean, rng, episodes):
    p = (mean - 250) / 250  # 500 with probability p, else uniform on [0, 500]
    return np.where(rng.random((RUNS, episodes)) < p, HIGH, rng.random((RUNS, episodes)) * HIGH)


def two_point(mean, rng, episodes):
    return np.where(rng.random((RUNS, episodes)) < mean / HIGH, HIGH, 0.0)  # 0 or 500: the largest variance


def errors() -> list[dict]:
    rows = []
    for name, sampler, budget in (("cartpole-like", cartpole_like, 400), ("two-point", two_point, 800)):
        for mean, seed in ((450.0, 1), (350.0, 2), (400.0, 3)):
            returns = sampler(mean, np.random.default_rng(seed), budget)
            code, episodes = first_verdict(normalize(returns, 0, HIGH), THRESHOLD / HIGH, ALPHA)
            rows.append({"distribution": name, "true_mean": mean, "budget": budget, "pass": int((code == 1).sum()),
                         "fail": int((code == -1).sum()), "inconclusive": int((code == 0).sum()),
                         "median_episodes": float(np.median(episodes)),
                         "p99_episodes": float(np.percentile(episodes, 99))})
    return rows


AT_LEAST, FRACTION, BREAKOUT_HIGH = 5.0, 0.75, 864.0
SHARES = {0.95: 4, 0.85: 1, 0.75: 3, 0.65: 2, 0.55: 5}  # true share of games >= 5: the seed of its runs


def breakout_like(share, rng, episodes):
    """A game scores ``>= 5`` with probability ``share``: then 5 + an exponential tail (mean 15, capped at 864),
    else uniform on [0, 5). Mean about ``20 share + 2.5 (1 - share)``."""
    hit = rng.random((RUNS, episodes)) < share
    tail = np.minimum(AT_LEAST + rng.exponential(15.0, (RUNS, episodes)), BREAKOUT_HIGH)
    return np.where(hit, tail, rng.random((RUNS, episodes)) * AT_LEAST)


def quantile() -> list[dict]:
    rows = []
    for budget in (240, 800):
        for share, seed in SHARES.items():
            returns = breakout_like(share, np.random.default_rng(seed), budget)
            for test, x, theta in (("quantile >= 5 at 0.75", indicator(returns, AT_LEAST), FRACTION),
                                   ("mean >= 7.8 on [0, 864]", normalize(returns, 0, BREAKOUT_HIGH), 7.8 / BREAKOUT_HIGH)):
                code, episodes = first_verdict(x, theta, ALPHA)
                rows.append({"test": test, "share": share, "mean": float(returns.mean()), "budget": budget,
                             "pass": int((code == 1).sum()), "fail": int((code == -1).sum()),
                             "inconclusive": int((code == 0).sum()), "median_episodes": float(np.median(episodes))})
    print("| test | true share >= 5 | mean return | budget | pass | fail | inconclusive | median episodes |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['test']} | {r['share']:g} | {r['mean']:.1f} | {r['budget']} | {r['pass']} | {r['fail']} | "
              f"{r['inconclusive']} | {r['median_episodes']:g} |")
    return rows


def cartpole(thresholds=(400.0, 450.0, 475.0), seeds=(0, 1000, 2000)) -> dict:
    from agents.evaluation import assert_policy_return
    from agents.policy_files import load_policy
    from agents.trained import policy_path
    from pytest_kcourse.check import run_check
    from pytest_kcourse.config import PolicySpec

    t0 = time.perf_counter()
    policy, meta = load_policy(policy_path("cartpole-v1-dqn"))
    load_s = time.perf_counter() - t0
    rows = []
    for threshold in thresholds:
        for seed in seeds:
            spec = PolicySpec(name=f"cartpole>={threshold:g}", policy=policy, env="CartPole-v1",
                              min_mean=threshold, seed=seed)
            r = run_check(spec)
            rows.append({"method": "plugin", "threshold": threshold, "seed": seed, "verdict": r.verdict,
                         "episodes": r.episodes, "wall_s": r.wall_s})
    for seed in seeds:
        t0 = time.perf_counter()
        assert_policy_return(policy, "CartPole-v1", min_mean=475, episodes=100, seed=seed)
        rows.append({"method": "assert_policy_return", "threshold": 475.0, "seed": seed, "verdict": "pass",
                     "episodes": 100, "wall_s": time.perf_counter() - t0})
    summary = []
    for method, threshold in sorted({(r["method"], r["threshold"]) for r in rows}):
        group = [r for r in rows if r["method"] == method and r["threshold"] == threshold]
        summary.append({"method": method, "threshold": threshold, "verdicts": sorted({r["verdict"] for r in group}),
                        "median_episodes": statistics.median(r["episodes"] for r in group),
                        "median_wall_s": statistics.median(r["wall_s"] for r in group), "runs": len(group)})
    return {"policy_load_s": load_s, "summary": summary, "rows": rows}


def collect(repeats: int = 15) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "test_empty.py").write_text("def test_nothing():\n    pass\n")
        times = {"with plugin": [], "without plugin": []}
        for _ in range(repeats):
            for label, extra in (("with plugin", []), ("without plugin", ["-p", "no:kcourse-policies"])):
                t0 = time.perf_counter()
                proc = subprocess.run([sys.executable, "-m", "pytest", "--co", "-q", "-p", "no:cacheprovider", *extra],
                                      cwd=tmp, capture_output=True, text=True)
                times[label].append(time.perf_counter() - t0)
                assert proc.returncode == 0, proc.stdout + proc.stderr
        probe = subprocess.run([sys.executable, "-X", "importtime", "-c", "import pytest; import pytest_kcourse.plugin"],
                               capture_output=True, text=True).stderr.splitlines()
    own = [line for line in probe if "pytest_kcourse" in line]
    medians = {label: statistics.median(values) for label, values in times.items()}
    return {"median_s": medians, "added_s": medians["with plugin"] - medians["without plugin"], "repeats": repeats,
            "all_s": times, "importtime_pytest_kcourse": own}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--parts", default="errors,quantile,cartpole,collect")
    parser.add_argument("--json", default=None, help="also write the numbers here")
    args = parser.parse_args(argv)
    out = {}
    for part in args.parts.split(","):
        print(f"== {part} ({load()} before)", flush=True)
        t0 = time.perf_counter()
        out[part] = {"errors": errors, "quantile": quantile, "cartpole": cartpole, "collect": collect}[part]()
        out[part + "_load"] = load()
        print(json.dumps(out[part] if part != "cartpole" else {k: v for k, v in out[part].items() if k != "rows"},
                         indent=1))
        print(f"== {part}: {time.perf_counter() - t0:.1f} s ({load()} after)", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
