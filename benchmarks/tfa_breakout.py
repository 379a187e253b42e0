"""Where a TF-Agents Breakout iteration's time goes, and what each speed-up option changes.

Builds the ``breakout`` preset's components (:func:`agents.tfa.components.build`: HOML's conv
QNetwork, centered RMSProp, DqnAgent, uint8 TFUniformReplayBuffer, DynamicStepDriver with 4
collect steps per train step), fills the buffer with random steps, then times, one after the other
in the same process:

* ``env``: the preprocessed environment alone (Gymnasium's AtariPreprocessing + FIRE + frame
  stack, random actions), agent steps/s;
* ``ale-vector``: ale-py's own vectorised environment (C++ threads, the same preprocessing and
  frame stacking) with ``--vector-envs`` environments, agent steps/s over all of them;
* ``policy``: one call of the collect policy on one observation;
* ``sample``: one replay batch from the dataset iterator, with and without ``prefetch``;
* ``train``: one agent update on a pre-sampled batch, without and with ``jit_compile=True``;
* ``iteration``: collect 4 steps + 1 update, as in ``train_eval`` (1 env), and the same with 4
  batched environments (one collect step of 4 envs per update).

Every figure comes with the load average at its start; take them on an idle machine.

    python benchmarks/tfa_breakout.py                     # about two minutes on 2 CPU cores
    python benchmarks/tfa_breakout.py --json breakout.json
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from keras_impl import files  # noqa: E402


def _timed(label: str, n: int, fn, unit: str, figures: dict, per: int = 1) -> float:
    """Run ``fn`` ``n`` times; record and print ``per * n / seconds`` as ``label``."""
    load = os.getloadavg()[0]
    start = time.perf_counter()
    for _ in range(n):
        fn()
    rate = per * n / (time.perf_counter() - start)
    figures[label] = {"rate": rate, "unit": unit, "load_average": load}
    print(f"[bench] {label:<34} {rate:10.1f} {unit:<22} (load average {load:.2f})", flush=True)
    return rate


def bench_envs(args, figures: dict) -> None:
    import numpy as np

    from agents.atari import make_breakout_env

    env = make_breakout_env(seed=0)
    env.reset(seed=0)
    rng = np.random.default_rng(0)

    def step():
        _, _, terminated, truncated, _ = env.step(int(rng.integers(4)))
        if terminated or truncated:
            env.reset()

    _timed("env (gymnasium wrappers)", args.env_steps, step, "agent steps/s", figures)
    env.close()
    try:
        from ale_py.vector_env import AtariVectorEnv
    except ImportError:
        print("[bench] ale-vector: not available in this ale-py", flush=True)
        return
    n = args.vector_envs
    vec = AtariVectorEnv("breakout", num_envs=n, reward_clipping=False, episodic_life=False)
    vec.reset(seed=0)
    _timed(f"ale-vector ({n} envs, C++ threads)", args.env_steps // n,
           lambda: vec.step(rng.integers(4, size=n)), "agent steps/s", figures, per=n)
    vec.close()


def bench_agent(args, figures: dict) -> None:
    import tensorflow as tf
    from tf_agents.drivers import dynamic_step_driver
    from tf_agents.policies import random_tf_policy
    from tf_agents.utils import common

    from agents.configs import TfaDqnConfig
    from agents.tfa.components import build, sample_windows, train_on_window
    from keras_impl.config import resolve

    def components(**overrides):
        p = resolve(TfaDqnConfig, {"env": "breakout", "replay_capacity": max(10_000, 2 * args.prefill), **overrides})
        c = build(p)
        random_policy = random_tf_policy.RandomTFPolicy(c.tf_env.time_step_spec(), c.tf_env.action_spec())
        common.function(dynamic_step_driver.DynamicStepDriver(
            c.tf_env, random_policy, observers=[c.add_to_replay], num_steps=args.prefill).run)()
        return p, c

    p, c = components()
    time_step = c.tf_env.reset()
    action = common.function(c.agent.collect_policy.action)
    action(time_step)
    _timed("policy call (collect, 1 obs)", 200, lambda: action(time_step), "calls/s", figures)
    plain = iter(sample_windows(c, p.n_step_update + 1, p.batch_size, parallel=False))
    fast = iter(sample_windows(c, p.n_step_update + 1, p.batch_size))
    for label, it in (("sample (no prefetch)", plain), ("sample (3 parallel + prefetch)", fast)):
        next(it)
        _timed(label, 200, lambda it=it: next(it), "batches/s", figures)
    experience, _ = next(fast)
    for jit in (False, True):
        train = common.function(train_on_window(c, p.gamma), jit_compile=jit or None)
        float(train(experience).loss)
        _timed(f"train step (jit_compile={jit})", args.iterations, lambda: train(experience).loss.numpy(),
               "updates/s", figures)
    for num_envs in (1, 4):
        p, c = components(num_envs=num_envs, collect_steps=4 // num_envs * num_envs)
        collect, train = common.function(c.collect_driver.run), common.function(train_on_window(c, p.gamma))
        it = iter(sample_windows(c, p.n_step_update + 1, p.batch_size))
        state = {"ts": None, "ps": c.agent.collect_policy.get_initial_state(c.tf_env.batch_size)}

        def iteration():
            state["ts"], state["ps"] = collect(time_step=state["ts"], policy_state=state["ps"])
            train(next(it)[0]).loss.numpy()

        for _ in range(args.warmup):
            iteration()
        _timed(f"iteration, {num_envs} env(s): collect 4 + train 1", args.iterations, iteration, "agent steps/s",
               figures, per=4)
        tf.keras.backend.clear_session()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--iterations", type=int, default=200, help="timed train steps / iterations")
    parser.add_argument("--warmup", type=int, default=20, help="untimed iterations first (tracing)")
    parser.add_argument("--env-steps", type=int, default=2000, help="timed environment steps")
    parser.add_argument("--vector-envs", type=int, default=4, help="environments of ale-py's vector env")
    parser.add_argument("--prefill", type=int, default=2000, help="random steps put in the buffer first")
    parser.add_argument("--json", default="", help="write the figures to this JSON file too")
    args = parser.parse_args(argv)
    files.exit_unless_writable(parser, args.json)  # before the long work: one line, not a late traceback
    from keras_impl import runtime

    figures: dict = {"device": runtime.device_summary(), "cpu_count": os.cpu_count()}
    print(f"[bench] {figures['device']}", flush=True)
    bench_envs(args, figures)
    bench_agent(args, figures)
    rate = figures["iteration, 1 env(s): collect 4 + train 1"]["rate"]  # agent steps/s
    print(f"[bench] at the 1-env rate, 250,000 agent steps take {250_000 / rate / 3600:.2f} h "
          f"(without evaluations and the 20,000 random initial steps)", flush=True)
    if args.json:
        files.atomic_write_json(args.json, figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
