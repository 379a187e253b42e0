"""Where a hand-written Breakout agent step's time goes, and whether XLA helps the train step.

Measures, on the data-efficient preset's agent (dueling-double, n = 10, DrQ shifts):
the preprocessed env (agent steps/s), acting (one-observation Q calls/s), replay sampling
(batches of 32/s), the compiled train step with and without XLA (updates/s), and the replay's
memory at 100,000 transitions. Prints the load average with the numbers (docs/dqn.md, "Breakout").

    python benchmarks/dqn_breakout.py [--seconds 20] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def rate(fn, seconds: float, warmup: int = 3) -> float:
    """Calls per second of ``fn`` over about ``seconds`` (after ``warmup`` calls: tracing)."""
    for _ in range(warmup):
        fn()
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        fn()
        n += 1
    return n / (time.perf_counter() - start)


class RandomPlay:
    """Random Breakout play written to a ``FrameReplay`` as training writes it (a lost life cuts the
    TD chain); shared by this benchmark and ``breakout_update_rates.py``."""

    def __init__(self, replay, seed: int = 0):
        import numpy as np

        from agents.atari import make_breakout_env

        self.env, self.replay, self.rng = make_breakout_env(seed=seed), replay, np.random.default_rng(seed)
        self.obs, _ = self.env.reset(seed=seed)

    def step(self) -> None:
        action = int(self.rng.integers(4))
        next_obs, reward, terminated, truncated, info = self.env.step(action)
        self.replay.add(self.obs, action, reward, next_obs, terminated or info["life_lost"], truncated,
                        episode_end=terminated or truncated)
        self.obs = next_obs if not (terminated or truncated) else self.env.reset()[0]

    def fill(self, rows: int) -> None:
        while len(self.replay) < rows:
            self.step()


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="seconds per measurement")
    parser.add_argument("--json", help="also write the numbers here")
    args = parser.parse_args(argv)
    from agents.configs import DQNConfig
    from agents.dqn import DQNAgent
    from agents.replay import FrameReplay
    from keras_impl import config as cfglib

    out = {"load_before": os.getloadavg()}
    replay = FrameReplay(20_000, n=10, gamma=0.99, seed=0)
    play = RandomPlay(replay)
    env = play.env
    out["env_steps_per_s"] = rate(play.step, args.seconds)
    play.fill(5_000)
    out["replay_batches_per_s"] = rate(lambda: replay.sample_many(1, 32), args.seconds / 2)
    out["replay_bytes_100k"] = FrameReplay(100_000, n=10).nbytes
    for jit in (False, True):
        cfg = cfglib.resolve(DQNConfig, {"env": "breakout", "jit_compile": jit})
        agent = DQNAgent(cfg, env.observation_space, env.action_space)
        if not jit:
            out["act_calls_per_s"] = rate(lambda: agent.act(play.obs, 0.0), args.seconds / 2)
        out[f"updates_per_s_jit_{jit}"] = rate(lambda: agent.learn(replay, 32, 1), args.seconds)
        agent.cfg = cfglib.resolve(DQNConfig, {"env": "breakout", "jit_compile": jit, "augment_pad": 0})
    out["load_after"] = os.getloadavg()
    for key, value in out.items():
        print(f"{key:>24}: {value if not isinstance(value, float) else round(value, 1)}")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n")
    return out


if __name__ == "__main__":
    main()
