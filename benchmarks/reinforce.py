"""REINFORCE benchmark: episodes and wall time to a greedy 100-episode mean >= target, per seed.

    .venv/bin/python benchmarks/reinforce.py                       # CartPole-v1, seeds 1 2 3
    .venv/bin/python benchmarks/reinforce.py --env LunarLander-v3 --seeds 1 --iterations 300

Prints one line per seed and a summary. Wall time includes the greedy checks (100 episodes
each) but not TensorFlow's import; numbers depend on how busy the CPU is.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from agents import policy_gradient as pg  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="CartPole-v1")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--iterations", type=int, default=None, help="maximum iterations (default: the env's preset)")
    args = parser.parse_args(argv)
    import keras  # noqa: F401  (import TensorFlow/Keras before the clock starts)
    print(f"REINFORCE on {args.env}, {os.cpu_count()} CPU cores visible, load average {os.getloadavg()[0]:.1f}")
    rows = []
    for seed in args.seeds:
        start = time.perf_counter()
        out = pg.train(pg.PolicyGradientConfig(env=args.env, seed=seed, iterations=args.iterations), log=None)
        total = time.perf_counter() - start
        ev = out["evaluation"]
        rows.append((seed, out["reached"], out["episodes"], out["steps"], out["seconds"], total, ev.mean))
        print(f"seed {seed}: {'reached' if out['reached'] else 'MISSED'} target {out['config'].target:g}: greedy "
              f"100-episode mean {ev.mean:.1f} (min {ev.min:.0f}) after {out['episodes']} episodes "
              f"({out['steps']} steps), training {out['seconds']:.1f}s, total {total:.1f}s, "
              f"load average {os.getloadavg()[0]:.1f}", flush=True)
    reached = sum(r[1] for r in rows)
    print(f"{reached}/{len(rows)} seeds reached the target; episodes {[r[2] for r in rows]}; "
          f"training seconds {[round(r[4], 1) for r in rows]}")
    return 0 if reached == len(rows) else 1


if __name__ == "__main__":
    sys.exit(main())
