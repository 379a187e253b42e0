"""Keras DQN agent vs the official PyTorch DQN tutorial loop on CartPole-v1 (CPU), side by side.

For each implementation and seed it prints: env steps per second of training (evaluation time
excluded), and the env steps and wall time needed to reach a 100-episode mean >= 475:

* ``torch``: the PyTorch tutorial's loop as the course gives it (rl-lecture-dqn-cartpole-torch.txt:
  128x128 MLP, BATCH_SIZE 128, GAMMA 0.99, EPS 0.9 -> 0.05 with EPS_DECAY 1000, TAU 0.005 soft
  update through ``state_dict`` every step, AdamW lr 1e-4 amsgrad, memory 10,000, SmoothL1,
  ``clip_grad_value_`` 100, one optimisation per env step). Its criterion: the 100-episode mean of
  its *training* episode durations (what the tutorial plots) reaches 475.
* ``keras``: ``agents.dqn`` with the config given by ``--variant`` and its defaults (SB3 zoo's
  hyperparameters); its criterion: a greedy 100-episode evaluation mean >= 475 on the selection
  seeds (stricter; it stops the run), and also the training 100-episode mean for the like-for-like
  comparison. After training, the weights it ends with are evaluated once on 100 report episodes
  (``agents.evaluation.REPORT_SEED``): ``report_mean``; the summary counts the runs whose report
  reaches 475 and those whose selection passed but whose report missed.

Both run on the CPU with the same number of threads (``--threads``, default 1), each run in its own
process; ``--parallel 2`` runs two at a time (only on an otherwise idle 2-core machine). The summary
gives, per implementation: how many seeds reach 475 within ``--budget`` env steps, the median and
the worst seed, and the median env steps/s. The load average is printed at the start and the end:
say whether the machine was shared when you quote the numbers.

Usage::

    python benchmarks/dqn_cartpole.py                    # both, seed 0
    python benchmarks/dqn_cartpole.py --variant all --seeds 0-9 --parallel 2 --json sweep.json
    python benchmarks/dqn_cartpole.py --impl keras --variant dueling --seeds 7 8 9 --config learning_rate=1e-3
"""
from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import tempfile
import time
from collections import deque, namedtuple
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

TARGET = 475.0


# ----------------------------------------------------------------------------------------------
# The PyTorch tutorial, as in the course (only the plotting removed and counters added)
# ----------------------------------------------------------------------------------------------


def run_torch(seed: int, max_steps: int, max_seconds: float, threads: int) -> dict:
    import gymnasium as gym
    import torch
    import torch.nn as nn
    import torch.optim as optim

    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    random.seed(seed)
    device = torch.device("cpu")
    env = gym.make("CartPole-v1")
    env.action_space.seed(seed)

    Transition = namedtuple("Transition", ("state", "action", "next_state", "reward"))

    class ReplayMemory:
        def __init__(self, capacity):
            self.memory = deque([], maxlen=capacity)

        def push(self, *args):
            self.memory.append(Transition(*args))

        def sample(self, batch_size):
            return random.sample(self.memory, batch_size)

        def __len__(self):
            return len(self.memory)

    class DQN(nn.Module):
        def __init__(self, n_observations, n_actions):
            super().__init__()
            self.layer1 = nn.Linear(n_observations, 128)
            self.layer2 = nn.Linear(128, 128)
            self.layer3 = nn.Linear(128, n_actions)

        def forward(self, x):
            x = torch.relu(self.layer1(x))
            x = torch.relu(self.layer2(x))
            return self.layer3(x)

    BATCH_SIZE, GAMMA, EPS_START, EPS_END, EPS_DECAY, TAU, LR = 128, 0.99, 0.9, 0.05, 1000, 0.005, 1e-4
    n_actions = env.action_space.n
    state, info = env.reset(seed=seed)
    policy_net = DQN(len(state), n_actions).to(device)
    target_net = DQN(len(state), n_actions).to(device)
    target_net.load_state_dict(policy_net.state_dict())
    optimizer = optim.AdamW(policy_net.parameters(), lr=LR, amsgrad=True)
    memory = ReplayMemory(10000)
    steps_done = 0

    def select_action(state):
        nonlocal steps_done
        sample = random.random()
        eps_threshold = EPS_END + (EPS_START - EPS_END) * math.exp(-1. * steps_done / EPS_DECAY)
        steps_done += 1
        if sample > eps_threshold:
            with torch.no_grad():
                return policy_net(state).max(1)[1].view(1, 1)
        return torch.tensor([[env.action_space.sample()]], device=device, dtype=torch.long)

    def optimize_model():
        if len(memory) < BATCH_SIZE:
            return
        transitions = memory.sample(BATCH_SIZE)
        batch = Transition(*zip(*transitions))
        non_final_mask = torch.tensor(tuple(map(lambda s: s is not None, batch.next_state)), device=device,
                                      dtype=torch.bool)
        non_final_next_states = torch.cat([s for s in batch.next_state if s is not None])
        state_batch = torch.cat(batch.state)
        action_batch = torch.cat(batch.action)
        reward_batch = torch.cat(batch.reward)
        state_action_values = policy_net(state_batch).gather(1, action_batch)
        next_state_values = torch.zeros(BATCH_SIZE, device=device)
        with torch.no_grad():
            next_state_values[non_final_mask] = target_net(non_final_next_states).max(1)[0]
        expected_state_action_values = (next_state_values * GAMMA) + reward_batch
        criterion = nn.SmoothL1Loss()
        loss = criterion(state_action_values, expected_state_action_values.unsqueeze(1))
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_value_(policy_net.parameters(), 100)
        optimizer.step()

    durations = []
    solved_step = solved_seconds = None
    start, cpu_start = time.perf_counter(), time.process_time()
    first = True
    while steps_done < max_steps and time.perf_counter() - start < max_seconds:
        state, info = env.reset() if not first else (state, info)
        first = False
        state = torch.tensor(state, dtype=torch.float32, device=device).unsqueeze(0)
        t = 0
        while True:
            action = select_action(state)
            observation, reward, terminated, truncated, _ = env.step(action.item())
            reward = torch.tensor([reward], device=device)
            done = terminated or truncated
            next_state = None if terminated else torch.tensor(observation, dtype=torch.float32,
                                                                device=device).unsqueeze(0)
            memory.push(state, action, next_state, reward)
            state = next_state
            optimize_model()
            target_net_state_dict = target_net.state_dict()
            policy_net_state_dict = policy_net.state_dict()
            for key in policy_net_state_dict:
                target_net_state_dict[key] = policy_net_state_dict[key] * TAU + target_net_state_dict[key] * (1 - TAU)
            target_net.load_state_dict(target_net_state_dict)
            t += 1
            if done:
                durations.append(t)
                break
        if solved_step is None and len(durations) >= 100 and np.mean(durations[-100:]) >= TARGET:
            solved_step, solved_seconds = steps_done, time.perf_counter() - start
            break
    seconds = time.perf_counter() - start
    env.close()
    return {"impl": "torch-tutorial", "seed": seed, "env_steps": steps_done, "episodes": len(durations),
            "seconds": seconds, "cpu_seconds": time.process_time() - cpu_start, "steps_per_second": steps_done / seconds,
            "train_mean100_solved_step": solved_step, "train_mean100_solved_seconds": solved_seconds,
            "final_train_mean100": float(np.mean(durations[-100:])) if durations else None}


# ----------------------------------------------------------------------------------------------
# The Keras agent
# ----------------------------------------------------------------------------------------------


def run_keras(seed: int, max_steps: int, variant: str, threads: int, overrides: list[str]) -> dict:
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
    from agents import dqn_train
    from agents.configs import DQNConfig
    from keras_impl import config as cfglib
    from keras_impl.plotting import moving_mean

    cfg = DQNConfig(variant=variant, seed=seed, total_timesteps=max_steps, gif=False, checkpoint_every=0)
    if overrides:
        cfg = cfglib.validate(cfglib.apply_overrides(cfg, overrides))
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        agent, state = dqn_train.train(cfg, tmp, log=lambda line: None)
        wall = time.perf_counter() - start
    from agents.evaluation import REPORT_EPISODES, REPORT_SEED, evaluate

    # the report: the weights the run ends with, once, on episodes the selection never saw (not timed)
    report = evaluate(agent.greedy_policy, cfg.env, episodes=REPORT_EPISODES, seed=REPORT_SEED)
    means = moving_mean(state.lengths)
    hit = np.flatnonzero((means >= TARGET) & (np.arange(1, len(means) + 1) >= 100))
    train_solved_step = int(np.cumsum(state.lengths)[hit[0]]) if hit.size else None
    return {"impl": f"keras-{variant}", "seed": seed, "env_steps": state.global_step, "episodes": state.episode,
            "seconds": wall, "train_seconds": state.train_seconds, "train_cpu_seconds": state.cpu_seconds,
            "steps_per_second": state.global_step / state.train_seconds,
            "greedy_eval_solved_step": state.solved_step, "greedy_eval_solved_seconds": state.solved_seconds,
            "train_mean100_solved_step": train_solved_step, "best_greedy_eval": state.best_eval,
            "report_mean": report.mean, "report_min": report.min, "report_episodes": len(report.returns),
            "report_seed": REPORT_SEED,
            "overrides": list(overrides), "evals": state.evals, "train_log": state.train_log,
            "epsilon_end": cfg.epsilon_end}


# ----------------------------------------------------------------------------------------------
# Seed sweeps: one process per run (one thread each), a summary per implementation
# ----------------------------------------------------------------------------------------------


def parse_seeds(items: list[str]) -> list[int]:
    """``["0-9"]`` -> ``[0, ..., 9]``; ``["7", "8"]`` -> ``[7, 8]``."""
    seeds = []
    for item in items:
        lo, _, hi = item.partition("-")
        seeds += list(range(int(lo), int(hi) + 1)) if hi else [int(lo)]
    return seeds


def _job(job: tuple) -> dict:
    kind, seed, args = job
    if kind == "torch":
        return run_torch(seed, args["torch_max_steps"], args["max_seconds"], args["threads"])
    return run_keras(seed, args["max_steps"], kind, args["threads"], args["config"])


def label(row: dict) -> str:
    """The row's implementation and, when it had any, its config overrides (``keras-dqn n_step=1``)."""
    return " ".join([row["impl"], *row.get("overrides", [])])


def summarize(rows: list[dict], budget: int) -> list[str]:
    """Per implementation: solved within ``budget`` env steps, median and worst steps to 475, steps/s."""
    lines = [f"{'impl':<36}{'solved':>9}{'median':>10}{'worst (seed)':>18}{'steps/s (median)':>18}"
             f"{'report >= 475':>15}{'selection passed, report missed':>33}"]
    for impl in dict.fromkeys(label(r) for r in rows):
        mine = [r for r in rows if label(r) == impl]
        key = "train_mean100_solved_step" if impl.startswith("torch") else "greedy_eval_solved_step"
        steps = [r[key] if r[key] is not None and r[key] <= budget else math.inf for r in mine]
        worst = max(range(len(mine)), key=lambda i: (steps[i], mine[i]["env_steps"]))
        worst_text = ("not solved" if math.isinf(steps[worst]) else f"{steps[worst]:,}") + f" ({mine[worst]['seed']})"
        median = float(np.median(steps))
        reported = [r for r in mine if r.get("report_mean") is not None]  # keras rows (rows of older files: none)
        passed = sum(r["report_mean"] >= TARGET for r in reported)
        missed = sum(r[key] is not None and r["report_mean"] < TARGET for r in reported)
        lines.append(f"{impl:<36}{sum(map(math.isfinite, steps)):>4}/{len(mine):<4}"
                     f"{'-' if math.isinf(median) else f'{median:,.0f}':>10}{worst_text:>18}"
                     f"{np.median([r['steps_per_second'] for r in mine]):>18,.0f}"
                     f"{f'{passed}/{len(reported)}' if reported else '-':>15}"
                     f"{f'{missed}/{len(reported)}' if reported else '-':>33}")
    return lines


def _plot_per_variant(rows: list[dict], path: str, draw) -> None:
    """One panel per Keras implementation, ``draw(ax, row)`` for each of its seeds, saved to ``path``."""
    from matplotlib.figure import Figure

    impls = [i for i in dict.fromkeys(label(r) for r in rows) if not i.startswith("torch")]
    fig = Figure(figsize=(4.2 * len(impls), 3.4))
    axes = fig.subplots(1, len(impls), squeeze=False)[0]
    for ax, impl in zip(axes, impls):
        for r in (r for r in rows if label(r) == impl):
            draw(ax, r)
        ax.set_title(impl)
    axes[-1].legend(fontsize=6, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=80)


def plot_sweep(rows: list[dict], path: str, budget: int) -> None:
    """One panel per Keras variant: every seed's greedy evaluation means against env steps."""
    def draw(ax, r):
        evals = np.asarray(r["evals"], dtype=float).reshape(-1, 5)  # [step, episode, mean, std, episodes]
        ax.plot(evals[:, 0], evals[:, 2], lw=1, label=f"seed {r['seed']}")
        ax.axhline(TARGET, color="gray", ls="--", lw=1)
        ax.axvline(budget, color="gray", ls=":", lw=1)
        ax.set(xlabel="env steps", ylabel="greedy evaluation mean")

    _plot_per_variant(rows, path, draw)


def plot_q_growth(rows: list[dict], path: str) -> None:
    """Mean Q of the taken actions per training round against env steps, every seed (the diagnosis plot)."""
    def draw(ax, r):
        log = np.asarray(r["train_log"], dtype=float).reshape(-1, 3)  # [step, mean loss, mean Q]
        solved = r["greedy_eval_solved_step"]
        ax.plot(log[:, 0], log[:, 2], lw=1, label=f"seed {r['seed']}" + ("" if solved else " (not solved)"))
        ax.axhline(100, color="gray", ls="--", lw=1)  # 1 / (1 - gamma): the scale of a balancing policy's values
        ax.set(xlabel="env steps", ylabel="mean Q of the taken actions")

    _plot_per_variant(rows, path, draw)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--impl", choices=("both", "torch", "keras"), default="both")
    parser.add_argument("--variant", nargs="+", default=["dqn"],
                        choices=("dqn", "double", "dueling", "dueling-double", "all"))
    parser.add_argument("--seeds", nargs="+", default=["0"], help="seeds, e.g. 0-9 or 7 8 9")
    parser.add_argument("--torch-seeds", nargs="+", default=None,
                        help="seeds of the PyTorch loop (default: the first 3 of --seeds)")
    parser.add_argument("--max-steps", type=int, default=50_000, help="env-step budget per Keras run")
    parser.add_argument("--torch-max-steps", type=int, default=150_000, help="env-step budget per PyTorch run")
    parser.add_argument("--budget", type=int, default=50_000, help="'solved' counts runs at 475 within this many steps")
    parser.add_argument("--max-seconds", type=float, default=900, help="wall-time cap for the torch loop")
    parser.add_argument("--threads", type=int, default=1, help="threads per run")
    parser.add_argument("--parallel", type=int, default=1, help="runs at a time (one process each); use 2 only on "
                                                                 "an otherwise idle 2-core machine")
    parser.add_argument("--config", action="append", default=[], metavar="KEY=VALUE",
                        help="override a DQNConfig field of the Keras agent")
    parser.add_argument("--json", default=None, help="also write the rows to this JSON file")
    parser.add_argument("--plot", default=None, help="also plot every seed's greedy evaluations to this PNG")
    parser.add_argument("--plot-q", default=None, help="also plot every seed's mean Q-value against env steps")
    parser.add_argument("--from-json", nargs="+", default=None,
                        help="summarise (and --plot) the rows of earlier --json files")
    args = parser.parse_args(argv)
    if args.from_json:
        rows = [r for f in args.from_json for r in json.loads(Path(f).read_text())]
        rows = [r for r in rows if args.impl == "both" or (r["impl"] == "torch-tutorial") == (args.impl == "torch")]
        rows = [r for r in rows if r["impl"].startswith("torch") or "all" in args.variant
                or r["impl"].removeprefix("keras-") in args.variant]
        print("\n".join(summarize(rows, args.budget)))
        if args.plot:
            plot_sweep(rows, args.plot, args.budget)
        if args.plot_q:
            plot_q_growth(rows, args.plot_q)
        return 0
    from keras_impl import files

    files.exit_unless_writable(parser, args.json)  # before the long work: one line, not a late traceback
    seeds = parse_seeds(args.seeds)
    torch_seeds = parse_seeds(args.torch_seeds) if args.torch_seeds else seeds[:3]
    variants = ["dqn", "double", "dueling", "dueling-double"] if "all" in args.variant else args.variant
    shared = {"max_steps": args.max_steps, "torch_max_steps": args.torch_max_steps, "max_seconds": args.max_seconds,
              "threads": args.threads, "config": args.config}
    jobs = []
    if args.impl in ("both", "torch"):
        jobs += [("torch", s, shared) for s in torch_seeds]
    if args.impl in ("both", "keras"):
        jobs += [(v, s, shared) for v in variants for s in seeds]
    print(f"[bench] {len(jobs)} runs, {args.parallel} at a time, {args.threads} thread(s) each; load average "
          f"{os.getloadavg()[0]:.2f} at the start", flush=True)
    rows = []
    with ProcessPoolExecutor(max_workers=args.parallel, mp_context=get_context("spawn")) as pool:
        for row in pool.map(_job, jobs):
            rows.append(row)
            brief = {k: row.get(k) for k in ("impl", "seed", "env_steps", "steps_per_second", "greedy_eval_solved_step",
                                             "train_mean100_solved_step", "seconds", "report_mean", "report_min")}
            print(json.dumps(brief), flush=True)
    print(f"\nload average at the end {os.getloadavg()[0]:.2f}; config {args.config or 'defaults'}")
    print("\n".join(summarize(rows, args.budget)))
    rates = {impl: np.median([r["steps_per_second"] for r in rows if label(r) == impl])
             for impl in dict.fromkeys(label(r) for r in rows)}
    if "torch-tutorial" in rates:
        for impl, rate in rates.items():
            if impl != "torch-tutorial":
                print(f"throughput {impl} / torch-tutorial: {rate / rates['torch-tutorial']:.2f}x")
    if args.json:
        files.atomic_write_json(args.json, rows)
    if args.plot:
        plot_sweep(rows, args.plot, args.budget)
    if args.plot_q:
        plot_q_growth(rows, args.plot_q)
    return 0


if __name__ == "__main__":
    sys.exit(main())
