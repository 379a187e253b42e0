"""Plot a tfa-dqn run's greedy evaluations against agent (environment) steps, for the docs.

    python scripts/plot_tfa_history.py RUN_DIR docs/img/breakout_tfa_dqn.png --reference 7.8 \
        --reference-label "HOML (about 200k agent steps)"

Reads ``RUN_DIR/eval_history.json`` (written by every tfa-dqn run, resumed runs included) and
draws the greedy evaluation means, the collect policy's average training return and an optional
reference line with ``keras_impl.plotting.plot_learning_curve``.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from keras_impl.plotting import plot_learning_curve


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--reference", type=float, default=None, help="a horizontal reference line")
    parser.add_argument("--reference-label", default="reference")
    parser.add_argument("--title", default=None)
    args = parser.parse_args(argv)
    history_file = args.run_dir / "eval_history.json"
    try:
        history = json.loads(history_file.read_text())
    except (OSError, ValueError) as err:
        print(f"plot_tfa_history: error: cannot read {history_file}: {err}", file=sys.stderr)
        return 2
    config = json.loads((args.run_dir / "config.json").read_text()) if (args.run_dir / "config.json").exists() else {}
    steps = [h["env_steps"] for h in history]
    title = args.title or f"TF-Agents DQN, {config.get('env', 'tfa-dqn')} (seed {config.get('seed', '?')})"
    plot_learning_curve(args.out, title,
                        points={"greedy eval mean (10 episodes)": (steps, [h["eval_mean"] for h in history]),
                                "collect policy avg return": (steps, [h["train_avg_return"] for h in history])},
                        target=args.reference, target_label=args.reference_label, xlabel="agent (environment) steps")
    print(f"wrote {args.out} ({len(history)} evaluations, up to {max(steps, default=0):,} agent steps)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
