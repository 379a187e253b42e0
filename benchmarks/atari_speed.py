"""Atari DQN speed in one run: kcourse's update, its whole training loop, and a PyTorch update beside them.

What one run prints (every number with the 1-minute load average at the time it was taken; it
claims nothing, take it on idle cores), on ``kcourse run dqn --env breakout``'s data-efficient
preset (dueling Double DQN, n = 10, batch 32, DrQ shifts, Adam 1e-4 / eps 1.5e-4, Huber):

* ``learn``: ``DQNAgent.learn(replay, 32, 1)``: a ``FrameReplay`` sample (stacks and n-step windows
  rebuilt), the random shifts and one compiled update, on a replay filled by random play;
* ``train_step``: the compiled train step alone (shifts included) on one fixed batch of that replay;
* ``torch``: a CleanRL-style PyTorch update of the same network (Nature convolutions 32x8x8/4,
  64x4x4/2, 64x3x3/1, dueling head of 512 units, uint8 frames cast to float and scaled by 1/255 as
  ``agents.networks.atari_q_network`` does, Double-DQN n-step target, Huber, Adam 1e-4 / eps
  1.5e-4; no shifts: the bare update) on the same fixed batch, in a child process with
  ``torch.set_num_threads(2)`` (``make torch`` installs PyTorch; without it the line says so);
* ``loop``: the training loop itself (``agents.dqn_train._start`` then ``_loop``, unchanged: env,
  acting, replay, update, target sync, logging) in agent steps/s, measured for ``--seconds`` once
  ``--warmup-updates`` updates are done (tracing; epsilon decays to its final 0.01 within the
  warm-up, so acting costs what it costs for most of a real run), and its CPU seconds per agent
  step (``time.process_time``, all threads); no evaluations or checkpoints inside the window;
* the ratios loop / torch and loop / learn (issue 34's targets).

``--profile`` adds where one agent step of that loop goes: the loop's library calls are wrapped
from outside with timers (``env.step``, ``agent.act``, the replay's ``add`` and ``sample_many``, the
agent's compiled update call, ``sync_target``) while the unchanged ``_loop`` runs; the rest is the
loop's own bookkeeping. The compiled update is then split on a fixed batch by timing compiled
sub-functions: the two shifts, the forward passes of the loss, forward + backward, and the
update without shifts (the optimizer is its difference to forward + backward).

``--bf16`` compares the update under Keras' ``mixed_bfloat16`` policy with float32: the same weights,
max |dQ| and the loss difference over ``--bf16-batches`` fixed batches, the train step's rate under
each, and the PyTorch update under bf16 autocast.

    python benchmarks/atari_speed.py                         # 60 s of the loop after its warm-up
    python benchmarks/atari_speed.py --profile               # and the per-stage table
    python benchmarks/atari_speed.py --profile --xla         # and the train step compiled by XLA
    python benchmarks/atari_speed.py --bf16                  # mixed_bfloat16 against float32
    python benchmarks/atari_speed.py --seconds 5 --update-seconds 3 --warmup-updates 20   # a smoke run
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ENV = "breakout"
BATCH = 32
# Loop stages timed by --profile: (label, what is wrapped). The order is the table's.
STAGES = (("env step", "env.step"), ("acting", "agent.act"), ("replay add", "replay.add"),
          ("sampling and stacking", "replay.sample_many"),
          ("update call: shifts + forward + backward + optimizer (one compiled call)", "agent._train_steps"),
          ("target sync", "agent.sync_target"))


def load() -> float:
    """The 1-minute load average."""
    return os.getloadavg()[0]


def show(name: str, value: float | None, unit: str, note: str = "") -> None:
    """One result line: ``name: value unit (load average L)``; ``None`` prints ``n/a``."""
    number = "n/a" if value is None else f"{value:.4g}" if abs(value) < 1 else f"{value:,.1f}"
    print(f"{name}: {number}{' ' + unit if unit else ''} (load average {load():.2f}){' ' + note if note else ''}",
          flush=True)


def rate(fn, seconds: float, warmup: int = 3) -> float:
    """Calls per second of ``fn`` over about ``seconds`` (after ``warmup`` calls: tracing)."""
    for _ in range(warmup):
        fn()
    n, start = 0, time.perf_counter()
    while n == 0 or time.perf_counter() - start < seconds:
        fn()
        n += 1
    return n / (time.perf_counter() - start)


def preset(**overrides):
    """The config ``kcourse run dqn --env breakout`` trains with (the data-efficient preset), plus ``overrides``."""
    from agents.configs import DQNConfig
    from keras_impl import config as cfglib

    return cfglib.resolve(DQNConfig, {"env": ENV, **overrides})


class RandomPlay:
    """Random play of the preset's env written to a replay as the training loop writes it (a lost life
    cuts the TD chain; rewards clipped with ``clip_rewards``); shared with ``breakout_update_rates.py``."""

    def __init__(self, replay, seed: int = 0, clip_rewards: bool = False):
        import numpy as np

        from agents.atari import make_agent_env

        self.env, self.replay, self.rng = make_agent_env(ENV, seed=seed), replay, np.random.default_rng(seed)
        self.clip = clip_rewards
        self.obs, _ = self.env.reset(seed=seed)

    def step(self) -> None:
        action = int(self.rng.integers(self.env.action_space.n))
        next_obs, reward, terminated, truncated, info = self.env.step(action)
        stored = max(-1.0, min(1.0, float(reward))) if self.clip else reward
        self.replay.add(self.obs, action, stored, next_obs, terminated or info["life_lost"], truncated,
                        episode_end=terminated or truncated)
        self.obs = next_obs if not (terminated or truncated) else self.env.reset()[0]

    def fill(self, rows: int) -> None:
        while len(self.replay) < rows:
            self.step()


def random_replay(cfg, rows: int = 3_000, capacity: int = 20_000, seed: int = 0):
    """``(FrameReplay with cfg's n and gamma holding ``rows`` random-play rows, the RandomPlay)``."""
    from agents.replay import FrameReplay

    replay = FrameReplay(capacity, n=cfg.n_step, gamma=cfg.gamma, seed=seed)
    play = RandomPlay(replay, seed, clip_rewards=cfg.clip_rewards)
    play.fill(rows)
    return replay, play


def make_agent(cfg, env):
    from agents.dqn import DQNAgent

    return DQNAgent(cfg, env.observation_space, env.action_space)


def fixed_batch(replay, batch_size: int = BATCH) -> tuple:
    """One sampled batch ``(obs, actions, returns, next_obs, terminated, horizons)``, each ``[B, ...]``."""
    return tuple(a[0] for a in replay.sample_many(1, batch_size))


# ----------------------------------------------------------------------------------------------
# The update: kcourse's learn and train_step
# ----------------------------------------------------------------------------------------------


def learn_rate(agent, replay, seconds: float) -> float:
    """``agent.learn(replay, 32, 1)`` calls per second (sample, shifts, update)."""
    return rate(lambda: agent.learn(replay, BATCH, 1), seconds, warmup=10)


def compiled(fn):
    """``fn`` as a ``tf.function`` whose result is fetched to NumPy (so a timing waits for it)."""
    import tensorflow as tf

    function = tf.function(fn)
    return lambda *args: tf.nest.map_structure(lambda t: t.numpy(), function(*args))


def train_step_rate(agent, batch: tuple, seconds: float) -> float:
    """The compiled ``agent.train_step`` (shifts included) on one fixed batch, per second."""
    step = compiled(agent.train_step)
    return rate(lambda: step(*batch), seconds, warmup=10)


# ----------------------------------------------------------------------------------------------
# The PyTorch peer (a child process: PyTorch and TensorFlow never share one)
# ----------------------------------------------------------------------------------------------


def torch_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("torch") is not None


def torch_update_rate(batch: tuple, cfg, n_actions: int, seconds: float, bf16: bool = False) -> dict:
    """Run :func:`torch_child` in a fresh process on ``batch``; its result dict (``updates_per_s``...)."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "batch.npz"
        import numpy as np

        np.savez(path, **dict(zip(("obs", "actions", "returns", "next_obs", "terminated", "horizons"), batch)))
        spec = {"batch": str(path), "seconds": seconds, "n_actions": n_actions, "gamma": cfg.gamma,
                "learning_rate": cfg.learning_rate, "adam_epsilon": cfg.adam_epsilon, "bf16": bf16}
        proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--torch-child", json.dumps(spec)],
                              capture_output=True, text=True, timeout=600 + 4 * seconds)
    if proc.returncode != 0:
        raise RuntimeError(f"the PyTorch child failed: {proc.stderr.strip()[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def torch_child(spec: dict) -> dict:
    """A CleanRL-style PyTorch update of :func:`agents.networks.atari_q_network` (dueling) on a fixed batch.

    The frames are moved to channels-first once, outside the timed update, as CleanRL's replay
    stores them; the update is Double DQN's n-step target (online argmax, target value, ``gamma **
    horizon``, no bootstrap after a terminal), Huber loss (``smooth_l1_loss``, delta 1), Adam.
    """
    import numpy as np
    import torch
    from torch import nn
    from torch.nn import functional as F

    torch.set_num_threads(2)
    torch.manual_seed(0)

    class DuelingQNetwork(nn.Module):
        def __init__(self, n_actions: int):
            super().__init__()
            self.torso = nn.Sequential(nn.Conv2d(4, 32, 8, stride=4), nn.ReLU(), nn.Conv2d(32, 64, 4, stride=2),
                                       nn.ReLU(), nn.Conv2d(64, 64, 3, stride=1), nn.ReLU(), nn.Flatten(),
                                       nn.Linear(3136, 512), nn.ReLU())
            self.value, self.advantage = nn.Linear(512, 1), nn.Linear(512, n_actions)

        def forward(self, frames):  # [B, 4, 84, 84] uint8 -> [B, A]
            x = self.torso(frames.float() * (1.0 / 255))
            advantages = self.advantage(x)
            return self.value(x) + advantages - advantages.mean(dim=1, keepdim=True)

    data = np.load(spec["batch"])
    obs, next_obs = (torch.from_numpy(np.ascontiguousarray(data[k].transpose(0, 3, 1, 2))) for k in ("obs", "next_obs"))
    actions = torch.from_numpy(data["actions"].astype(np.int64))
    returns, terminated, horizons = (torch.from_numpy(data[k].astype(np.float32))
                                     for k in ("returns", "terminated", "horizons"))
    q_net, target_net = DuelingQNetwork(spec["n_actions"]), DuelingQNetwork(spec["n_actions"])
    target_net.load_state_dict(q_net.state_dict())
    optimizer = torch.optim.Adam(q_net.parameters(), lr=spec["learning_rate"], eps=spec["adam_epsilon"])
    discounts = spec["gamma"] ** horizons  # [B]

    def update(autocast: bool) -> float:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            with torch.no_grad():
                best = q_net(next_obs).argmax(dim=1, keepdim=True)  # [B, 1]
                next_q = target_net(next_obs).gather(1, best).squeeze(1).float()  # [B]
                targets = returns + discounts * (1.0 - terminated) * next_q  # [B]
            q_taken = q_net(obs).gather(1, actions[:, None]).squeeze(1).float()  # [B]
            loss = F.smooth_l1_loss(q_taken, targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss.item()

    out = {"torch": torch.__version__, "threads": torch.get_num_threads(),
           "updates_per_s": rate(lambda: update(False), spec["seconds"]), "load": load()}
    if spec.get("bf16"):
        out["bf16_updates_per_s"] = rate(lambda: update(True), spec["seconds"])
        out["bf16_load"] = load()
    return out


# ----------------------------------------------------------------------------------------------
# The training loop, driven from outside
# ----------------------------------------------------------------------------------------------


class _Done(Exception):
    """Raised by the update hook to end the loop once the measurement window is over."""


def _timed(fn, totals: dict, key: str, active: dict, fetch: bool = False):
    """``fn`` with its wall time added to ``totals[key]`` while ``active["on"]``; with ``fetch``, the
    tensors it returns are fetched (``.numpy()``) inside the timer, so a compiled call is timed to its end."""
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        out = fn(*args, **kwargs)
        if fetch:
            for tensor in out:
                tensor.numpy()
        if active["on"]:
            totals[key] += time.perf_counter() - start
        return out
    return wrapper


def loop_rate(seconds: float, warmup_updates: int, learning_starts: int | None = None, profile: bool = False,
              log=lambda message: None) -> dict:
    """The training loop of :mod:`agents.dqn_train` (``_start`` + ``_loop``) on the preset, timed in steady state.

    The config is the preset's with no evaluation and no checkpoint, a budget the window never
    reaches, epsilon decayed to its end within the warm-up, and ``learning_starts`` (default: the
    preset's). The window starts at update ``warmup_updates`` and ends at the first update after
    ``seconds``; the update hook (``on_update``) keeps the clocks and ends the loop.

    Returns:
        ``{"steps", "seconds", "steps_per_s", "cpu_per_step", "load", "agent", "replay_capacity",
        "replay_bytes"}`` (``agent``: the loop's, traced and trained); with ``profile``, also
        ``"stages"``: seconds per agent step of each wrapped call (keys of :data:`STAGES`).
    """
    from agents import dqn_train

    total = 10_000_000
    overrides = {"total_timesteps": total, "eval_interval": 0, "checkpoint_steps": 0, "checkpoint_every": 0,
                 "gif": False, "exploration_fraction": max(warmup_updates, 1) / total}
    if learning_starts is not None:
        overrides["learning_starts"] = learning_starts
    cfg = preset(**overrides)
    marks: dict = {}
    totals = {key: 0.0 for _, key in STAGES}
    active = {"on": False}
    with tempfile.TemporaryDirectory() as folder:
        run, env = dqn_train._start(cfg, Path(folder) / "run", False, log)
        if profile:  # instance attributes shadow the methods _loop and learn call
            agent, replay = run.agent, run.buffer
            env.step = _timed(env.step, totals, "env.step", active)
            agent.act = _timed(agent.act, totals, "agent.act", active)
            agent.sync_target = _timed(agent.sync_target, totals, "agent.sync_target", active)
            agent._train_steps = _timed(agent._train_steps, totals, "agent._train_steps", active, fetch=True)
            replay.sample_many = _timed(replay.sample_many, totals, "replay.sample_many", active)
            assert run.window is replay, "the Atari loop writes to its FrameReplay directly"
            replay.add = _timed(replay.add, totals, "replay.add", active)

        def on_update(index: int, loss: float) -> None:
            now = time.perf_counter()
            if index == warmup_updates:
                marks.update(t0=now, cpu0=time.process_time(), step0=run.state.global_step)
                active["on"] = True
            elif "t0" in marks and now - marks["t0"] >= seconds:
                marks.update(t1=now, cpu1=time.process_time(), step1=run.state.global_step)
                raise _Done

        run.on_update = on_update
        try:
            dqn_train._loop(run, env)
        except _Done:
            pass
        finally:
            env.close()
            for writer in run.writers:
                writer.close()
        agent = run.agent
    if "t1" not in marks:
        raise RuntimeError("the loop ended before its measurement window did")
    steps, wall = marks["step1"] - marks["step0"], marks["t1"] - marks["t0"]
    out = {"steps": steps, "seconds": wall, "steps_per_s": steps / wall,
           "cpu_per_step": (marks["cpu1"] - marks["cpu0"]) / steps, "load": load(), "agent": agent,
           "replay_capacity": run.buffer.capacity, "replay_bytes": run.buffer.nbytes}
    if profile:
        out["stages"] = {key: totals[key] / steps for _, key in STAGES}
    return out


# ----------------------------------------------------------------------------------------------
# The compiled update split into sub-functions (a fixed batch)
# ----------------------------------------------------------------------------------------------


def update_split(agent, batch: tuple, env, seconds: float, xla: bool = False) -> dict:
    """Seconds per call of compiled parts of ``agent.train_step`` on one fixed batch.

    ``shifts``: the two ``random_shift`` calls; ``forward``: ``compute_loss`` (its forward passes: two
    while the targets come from the online net, ``agent.target_is_online``, else three; and the loss);
    ``forward+backward``: it under a tape and its gradients; ``no-shift step``: the train step of the
    same config without shifts (forward, backward, the optimizer); ``whole step``: ``agent.train_step``
    (shifts included); with ``xla``, also ``whole step, XLA``: the same step compiled with
    ``jit_compile=True`` (the config's ``jit_compile``).
    """
    import tensorflow as tf

    from agents.augment import random_shift

    pad = agent.cfg.augment_pad
    shift_rng = tf.random.Generator.from_seed(0)
    plain = make_agent(dataclasses.replace(agent.cfg, augment_pad=0), env)
    plain.q_net.set_weights(agent.q_net.get_weights())
    plain.target_net.set_weights(agent.target_net.get_weights())

    def gradients(*b):
        with tf.GradientTape() as tape:
            loss = agent.compute_loss(*b)[0]
        return tape.gradient(loss, agent.q_net.trainable_variables)

    def shifts(obs, next_obs):
        return random_shift(obs, pad, shift_rng), random_shift(next_obs, pad, shift_rng)

    parts = {
        "shifts": compiled(shifts),
        "forward": compiled(lambda *b: agent.compute_loss(*b)[0]),
        "forward+backward": compiled(gradients),
        "no-shift step": compiled(plain.train_step),
        "whole step": compiled(agent.train_step),
    }
    if xla:
        parts["whole step, XLA"] = compiled(tf.function(agent.train_step, jit_compile=True))
    args = {"shifts": (batch[0], batch[3])}
    return {name: 1.0 / rate(lambda: fn(*args.get(name, batch)), seconds, warmup=5) for name, fn in parts.items()}


def print_profile(loop: dict, split: dict) -> None:
    """The per-stage table of one agent step (loop: wrapped calls) and the split of the compiled update."""
    per_step = 1.0 / loop["steps_per_s"]
    stages = loop["stages"]
    print(f"\nOne agent step of the training loop, steady state ({loop['steps']} steps over {loop['seconds']:.1f} s; "
          f"load average {loop['load']:.2f}; wrapped calls, the unchanged _loop):")
    print("| stage | ms per agent step | share |\n|---|---:|---:|")
    for label, key in STAGES:
        print(f"| {label} | {1e3 * stages[key]:.2f} | {100 * stages[key] / per_step:.1f}% |")
    rest = per_step - sum(stages.values())
    print(f"| rest of the loop (epsilon, bookkeeping, TensorBoard logging, episode ends) | {1e3 * rest:.2f} | "
          f"{100 * rest / per_step:.1f}% |")
    print(f"| **agent step** | **{1e3 * per_step:.2f}** | 100% |")
    whole = split["whole step"]
    passes = 2 if loop["agent"].target_is_online else 3
    rows = (("shifts (2 x random_shift)", split["shifts"]), (f"forward ({passes} passes + loss)", split["forward"]),
            ("backward", split["forward+backward"] - split["forward"]),
            ("optimizer (Adam)", split["no-shift step"] - split["forward+backward"]))
    print(f"\nThe compiled update split on a fixed batch of {BATCH} (compiled sub-functions, differences of "
          f"their times; load average {load():.2f}):")
    print("| part | ms per update | share of the whole step |\n|---|---:|---:|")
    for label, seconds in rows:
        print(f"| {label} | {1e3 * seconds:.2f} | {100 * seconds / whole:.1f}% |")
    print(f"| whole train_step minus the parts (fusion, overhead) | {1e3 * (whole - sum(s for _, s in rows)):.2f} | "
          f"{100 * (whole - sum(s for _, s in rows)) / whole:.1f}% |")
    print(f"| **whole train_step** | **{1e3 * whole:.2f}** | 100% |")
    if "whole step, XLA" in split:
        print(f"| whole train_step compiled with XLA (jit_compile) | {1e3 * split['whole step, XLA']:.2f} | "
              f"{100 * split['whole step, XLA'] / whole:.1f}% |")
    print(f"\nThe replay at the preset's buffer_size ({loop['replay_capacity']:,} transitions): "
          f"{loop['replay_bytes'] / 1e9:.2f} GB")
    print(flush=True)


# ----------------------------------------------------------------------------------------------
# mixed_bfloat16 against float32
# ----------------------------------------------------------------------------------------------


@contextlib.contextmanager
def dtype_policy(name: str):
    """Keras' global dtype policy set to ``name`` inside the block (networks built there keep it)."""
    import keras

    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(name)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


TRAINED = "breakout-dueling-double"  # the committed policy whose weights --bf16 compares on


def bf16_compare(cfg, replay, env, batches: int, seconds: float, weights: str = "trained") -> dict:
    """The update under ``mixed_bfloat16`` against float32, with the same weights.

    ``weights``: ``trained``, the committed Breakout policy's (:data:`TRAINED`: Q-values of a
    trained size), or ``init``, the float32 agent's initial ones. Over ``batches`` fixed batches (the
    replay's seeded sampler) both agents compute Q ``[B, A]`` of the observations and the loss of
    :meth:`DQNAgent.compute_loss` (no shifts, no update); then each one's compiled ``train_step``
    (shifts included) is timed on one fixed batch. (Not ``learn``: ``DQNAgent.train_steps`` collects
    ``mean(q_taken)`` in a float32 ``TensorArray``, which refuses the bfloat16 value that network gives.)
    """
    import numpy as np

    agents = {}
    for policy in ("float32", "mixed_bfloat16"):
        with dtype_policy(policy):
            agents[policy] = make_agent(cfg, env)
    if weights == "trained":
        from agents import policy_files
        from agents.trained import policy_path

        start = policy_files.load_keras_model(policy_path(TRAINED)).get_weights()
    else:
        start = agents["float32"].q_net.get_weights()
    for agent in agents.values():
        for net in (agent.q_net, agent.target_net):
            net.set_weights(start)
    evaluate = {name: compiled(lambda *b, a=a: (a.q_net(b[0], training=False), a.compute_loss(*b)[0]))
                for name, a in agents.items()}
    dq, dloss, losses, q_scale = 0.0, [], [], []
    for _ in range(batches):
        batch = fixed_batch(replay)
        q32, loss32 = evaluate["float32"](*batch)
        q16, loss16 = evaluate["mixed_bfloat16"](*batch)
        dq = max(dq, float(np.max(np.abs(q16.astype(np.float32) - q32))))
        dloss.append(abs(float(loss16) - float(loss32)))
        losses.append(abs(float(loss32)))
        q_scale.append(float(np.mean(np.abs(q32))))
    out = {"batches": batches, "weights": weights, "max_abs_dq": dq, "max_abs_dloss": max(dloss),
           "mean_abs_dloss": float(np.mean(dloss)), "mean_abs_loss": float(np.mean(losses)),
           "mean_abs_q": float(np.mean(q_scale)), "load": load()}
    batch = fixed_batch(replay)
    for name, agent in agents.items():
        out[f"train_step_{name}"] = train_step_rate(agent, batch, seconds)
    return out


# ----------------------------------------------------------------------------------------------


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=Path(__file__).name, description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0,
                        help="seconds of the training loop measured after its warm-up (default 60)")
    parser.add_argument("--warmup-updates", type=int, default=500,
                        help="updates of the loop before its window opens (tracing, epsilon's decay)")
    parser.add_argument("--learning-starts", type=int, default=None,
                        help="the loop's random steps before the first update (default: the preset's)")
    parser.add_argument("--prefill", type=int, default=3_000,
                        help="random-play transitions in the replay that the update measurements sample")
    parser.add_argument("--update-seconds", type=float, default=20.0,
                        help="seconds of each update measurement (learn, train_step, PyTorch)")
    parser.add_argument("--profile", action="store_true", help="also print the per-stage table of an agent step")
    parser.add_argument("--xla", action="store_true", help="with --profile: also the train step compiled by XLA")
    parser.add_argument("--bf16", action="store_true", help="also compare mixed_bfloat16 with float32")
    parser.add_argument("--bf16-batches", type=int, default=1_000, help="fixed batches of the bf16 comparison")
    parser.add_argument("--bf16-weights", choices=("trained", "init"), default="trained",
                        help=f"the weights both precisions share: the committed policy {TRAINED}'s, or initial ones")
    parser.add_argument("--no-torch", action="store_true", help="skip the PyTorch update")
    parser.add_argument("--torch-child", help=argparse.SUPPRESS)  # internal: the PyTorch child's job (JSON)
    args = parser.parse_args(argv)
    for name in ("seconds", "update_seconds"):
        if not getattr(args, name) > 0:
            parser.error(f"Received an invalid value for argument `--{name.replace('_', '-')}`: expected a "
                         f"number > 0, got {getattr(args, name)!r}")
    for name in ("warmup_updates", "bf16_batches"):
        if getattr(args, name) < 1:
            parser.error(f"Received an invalid value for argument `--{name.replace('_', '-')}`: expected an "
                         f"integer >= 1, got {getattr(args, name)!r}")
    if args.prefill < BATCH:
        parser.error(f"Received an invalid value for argument `--prefill`: expected an integer >= {BATCH}, "
                     f"got {args.prefill!r}")
    if args.learning_starts is not None and args.learning_starts < BATCH:
        parser.error(f"Received an invalid value for argument `--learning-starts`: expected an integer >= {BATCH}, "
                     f"got {args.learning_starts!r}")
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    if args.torch_child:
        print(json.dumps(torch_child(json.loads(args.torch_child))))
        return {}
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    print(f"load average at the start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; {os.cpu_count()} CPUs",
          flush=True)
    out: dict = {}
    cfg = preset()
    replay, play = random_replay(cfg, rows=args.prefill)
    agent = make_agent(cfg, play.env)
    out["learn"] = learn_rate(agent, replay, args.update_seconds)
    show("kcourse learn (sample + shifts + update)", out["learn"], "updates/s")
    batch = fixed_batch(replay)
    out["train_step"] = train_step_rate(agent, batch, args.update_seconds)
    show("kcourse train_step alone (shifts + update, fixed batch)", out["train_step"], "updates/s")
    out["torch"] = None
    if args.no_torch or not torch_available():
        show("PyTorch bare update (fixed batch)", None, "updates/s",
             "skipped (--no-torch)" if args.no_torch else "PyTorch is not installed: make torch")
    else:
        peer = torch_update_rate(batch, cfg, agent.n_actions, args.update_seconds, bf16=args.bf16)
        out["torch"] = peer["updates_per_s"]
        print(f"PyTorch bare update (fixed batch, torch {peer['torch']}, {peer['threads']} threads): "
              f"{peer['updates_per_s']:,.1f} updates/s (load average {peer['load']:.2f})", flush=True)
        if args.bf16:
            out["torch_bf16"] = peer["bf16_updates_per_s"]
            print(f"PyTorch bare update, bf16 autocast: {peer['bf16_updates_per_s']:,.1f} updates/s "
                  f"(load average {peer['bf16_load']:.2f})", flush=True)
    loop = loop_rate(args.seconds, args.warmup_updates, args.learning_starts, profile=args.profile)
    out["loop"], out["cpu_per_step"] = loop["steps_per_s"], loop["cpu_per_step"]
    show(f"kcourse full loop, steady state ({loop['steps']} agent steps in {loop['seconds']:.1f} s after "
         f"{args.warmup_updates} warm-up updates)", out["loop"], "agent steps/s")
    show("kcourse full loop CPU time", out["cpu_per_step"], "CPU-seconds per agent step")
    out["loop_over_torch"] = None if out["torch"] is None else out["loop"] / out["torch"]
    out["loop_over_learn"] = out["loop"] / out["learn"]
    show("ratio full loop / PyTorch update", out["loop_over_torch"], "")
    show("ratio full loop / kcourse learn", out["loop_over_learn"], "")
    if args.profile:
        split = update_split(loop["agent"], batch, play.env, args.update_seconds / 2, xla=args.xla)
        out["stages"], out["split"] = loop["stages"], split
        print_profile(loop, split)
    if args.bf16:
        bf16 = bf16_compare(cfg, replay, play.env, args.bf16_batches, args.update_seconds, args.bf16_weights)
        out["bf16"] = bf16
        weights = f"{TRAINED}'s" if args.bf16_weights == "trained" else "initial"
        print(f"mixed_bfloat16 vs float32, the same weights ({weights}), {bf16['batches']} fixed batches of {BATCH} "
              f"(load average {bf16['load']:.2f}):")
        show("  max |dQ|", bf16["max_abs_dq"], "", f"(mean float32 |Q| {bf16['mean_abs_q']:.3g})")
        show("  max |d loss|", bf16["max_abs_dloss"], "", f"(mean {bf16['mean_abs_dloss']:.3g}; mean float32 loss "
                                                          f"{bf16['mean_abs_loss']:.3g})")
        show("  kcourse train_step float32 (fixed batch)", bf16["train_step_float32"], "updates/s")
        show("  kcourse train_step mixed_bfloat16 (fixed batch)", bf16["train_step_mixed_bfloat16"], "updates/s")
    play.env.close()
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    return out


if __name__ == "__main__":
    main()
