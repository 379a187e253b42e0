"""The TF-Agents CartPole preset's wall time to a greedy 100-episode mean >= 475, per seed.

Runs ``kcourse run tfa-dqn --env cartpole --seed S`` (plus any ``--config KEY=VALUE``) as a user
does, one process per seed, one after the other, and prints per seed: the process's wall time (the
import of TensorFlow and TF-Agents included), the training time and where it went (collect, train,
log, evaluate, checkpoint, start-up, final evaluation), env steps, agent updates, and two results
kept apart: whether a periodic *selection* evaluation passed the selection rule (it stops the run
and picks the exported policy; ``select mean`` is that evaluation's mean) and the *report*: the
exported policy's greedy 100-episode mean on the report seeds, played once, which decides
``reached``; then the first 8 hex digits of the SHA-256 of the exported weights. The last line
counts the seeds where selection passed but the report missed. A seed given twice
(``--seeds 0 1 0 1``) runs twice. The load average is printed with every run: time on an idle
machine.

``--determinism-cost`` measures instead what ``deterministic = true`` (the default: the replay
sampled one call at a time, TensorFlow op determinism) costs against ``false`` (3 parallel
sampling calls and prefetch): both modes run the same fixed number of iterations with no early
stop and one evaluation at the end, alternating (on, off, on, off, ...) so that a change of load
hits both, and the training speed of each run is its iterations over its collect + train time
(``seconds_by_phase``; the first iteration, which traces the compiled functions, is timed apart
and left out). The last line is the median speed of each mode and the cost in percent.

    python benchmarks/tfa_cartpole.py --seeds 0 1 2
    python benchmarks/tfa_cartpole.py --seeds 0 1 2 --config num_envs=4 --config collect_steps=256
    python benchmarks/tfa_cartpole.py --determinism-cost --iterations 40 --repeats 3
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def run_seed(seed: int, overrides: list[str]) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp) / "run"
        cmd = [sys.executable, "-m", "kcourse", "run", "tfa-dqn", "--env", "cartpole", "--seed", str(seed),
               "--run-dir", str(run_dir)] + [a for o in overrides for a in ("--config", o)]
        load, start = os.getloadavg()[0], time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
        wall = time.perf_counter() - start
        if proc.returncode != 0:
            raise SystemExit(f"seed {seed} failed (exit {proc.returncode}): {proc.stderr[-1500:]}")
        result = json.loads((run_dir / "result.json").read_text())
        m = result["metrics"]
        # the exported policy's weights: two runs of one seed export the same policy (deterministic = true)
        weights = hashlib.sha256((run_dir / "policy" / "variables" / "variables.data-00000-of-00001").read_bytes())
    return {"seed": seed, "wall_seconds": wall, "train_seconds": m["train_seconds"], "env_steps": m["env_steps"],
            "updates": m["train_step"], "selection_passed": m["selection_passed"], "select_mean": m.get("select_mean"),
            "report_mean": m["final_eval_mean"], "report_min": m["final_eval_min"],
            "report_seeds": m.get("report_seeds"), "reached": result["reached"],
            "load_average_start": load, "load_average_end": os.getloadavg()[0], "overrides": overrides,
            "seconds_by_phase": m.get("seconds_by_phase", {}), "policy_sha256": weights.hexdigest()}


# A fixed amount of training: no target (no early stop, no screen), one short evaluation at the end.
COST_RUN = ["target_return=0", "eval_episodes=5", "final_eval_episodes=5", "gif=false"]


def determinism_cost(seed: int, iterations: int, repeats: int, overrides: list[str]) -> list[dict]:
    """Runs of ``iterations`` iterations with ``deterministic`` on and off in turn; one row each."""
    rows = []
    print(f"{'run':>4} {'deterministic':>13} {'iterations/s':>12} {'agent steps/s':>13} {'collect s':>9} "
          f"{'train s':>8} {'load':>10}", flush=True)
    for i in range(repeats):
        for deterministic in (True, False):
            fixed = COST_RUN + [f"iterations={iterations}", f"eval_interval={iterations}",
                                f"deterministic={str(deterministic).lower()}"]
            r = run_seed(seed, overrides + fixed)
            phases = r["seconds_by_phase"]
            loop = phases["collect"] + phases["train"]  # iterations 2 .. N (the first traces: its own phase)
            r.update(deterministic=deterministic, iterations_per_s=(iterations - 1) / loop,
                     agent_steps_per_s=r["env_steps"] * (iterations - 1) / iterations / loop)
            rows.append(r)
            print(f"{i:>4} {str(deterministic):>13} {r['iterations_per_s']:>12.2f} {r['agent_steps_per_s']:>13.0f} "
                  f"{phases['collect']:>9.1f} {phases['train']:>8.1f} "
                  f"{r['load_average_start']:>4.2f}-{r['load_average_end']:<4.2f}", flush=True)
    on, off = (statistics.median(r["iterations_per_s"] for r in rows if r["deterministic"] is mode)
               for mode in (True, False))
    print(f"median training speed: deterministic {on:.2f} iterations/s, not deterministic {off:.2f}; "
          f"determinism costs {100 * (1 - on / off):.1f}% (seed {seed}, {iterations} iterations a run, "
          f"{repeats} runs a mode)", flush=True)
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--config", action="append", default=[], metavar="KEY=VALUE", help="a TfaDqnConfig override")
    parser.add_argument("--json", default=None, help="also write the rows to this JSON file")
    parser.add_argument("--determinism-cost", action="store_true",
                        help="time deterministic on and off instead (the first of --seeds)")
    parser.add_argument("--iterations", type=int, default=40, help="--determinism-cost: iterations a run")
    parser.add_argument("--repeats", type=int, default=3, help="--determinism-cost: runs of each mode")
    args = parser.parse_args(argv)
    from keras_impl import files

    files.exit_unless_writable(parser, args.json)  # before the long work: one line, not a late traceback
    if args.determinism_cost:
        if args.iterations < 2 or args.repeats < 1:
            parser.error(f"--iterations must be >= 2 and --repeats >= 1, got {args.iterations} and {args.repeats}")
        rows = determinism_cost(args.seeds[0], args.iterations, args.repeats, args.config)
        if args.json:
            files.atomic_write_json(args.json, rows)
        return 0
    rows = []
    print(f"{'seed':>4} {'wall s':>8} {'train s':>8} {'env steps':>10} {'updates':>8} {'selection':>9} "
          f"{'select mean':>11} {'report mean':>11} {'report min':>10} {'reached':>8} {'load':>10} {'policy':>8}",
          flush=True)
    for seed in args.seeds:
        r = run_seed(seed, args.config)
        rows.append(r)
        print(f"{r['seed']:>4} {r['wall_seconds']:>8.1f} {r['train_seconds']:>8.1f} {r['env_steps']:>10,} "
              f"{r['updates']:>8,} {'passed' if r['selection_passed'] else 'no':>9} "
              f"{'-' if r['select_mean'] is None else format(r['select_mean'], '.1f'):>11} {r['report_mean']:>11.1f} "
              f"{r['report_min']:>10.1f} {str(r['reached']):>8} "
              f"{r['load_average_start']:>4.2f}-{r['load_average_end']:<4.2f} {r['policy_sha256'][:8]}", flush=True)
        if r["seconds_by_phase"]:
            print("     where the time went (s): " + ", ".join(f"{k} {v:.1f}" for k, v in r["seconds_by_phase"].items()),
                  flush=True)
    passed = [r for r in rows if r["selection_passed"]]
    print(f"selection passed on {len(passed)}/{len(rows)} seeds; the report reached the target on "
          f"{sum(bool(r['reached']) for r in rows)}/{len(rows)}; selection passed but the report missed on "
          f"{sum(not r['reached'] for r in passed)}/{len(passed)} of those", flush=True)
    if args.json:
        files.atomic_write_json(args.json, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
