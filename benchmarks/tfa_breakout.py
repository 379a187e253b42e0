"""Throughput of the TF-Agents Breakout pipeline: collect + train, agent steps/s and ALE frames/s.

Builds the ``breakout`` preset's components (:func:`agents.tfa.components.build`: HOML's conv
QNetwork, centered RMSProp, DqnAgent, uint8 TFUniformReplayBuffer, DynamicStepDriver with 4
collect steps per train step), fills the buffer with random steps, then times

* the environment alone (preprocessed Breakout, random actions),
* the train step alone (``common.function(agent.train)`` on batches of 32),
* the full iteration (collect 4 steps + 1 train step), as in ``train_eval``.

Optionally (``--learn N``) runs ``train_eval`` for N iterations and prints its learning curve.

    python benchmarks/tfa_breakout.py                      # about a minute on 2 CPU cores
    python benchmarks/tfa_breakout.py --iterations 500 --learn 5000 --out runs/bench

On a GPU machine the same script reports the GPU figure (TensorFlow places the network there).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from keras_impl import files, runtime  # noqa: E402

FRAME_SKIP = 4


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--iterations", type=int, default=200, help="timed collect+train iterations")
    parser.add_argument("--warmup", type=int, default=20, help="untimed iterations first (tracing)")
    parser.add_argument("--env-steps", type=int, default=1000, help="timed environment-only steps")
    parser.add_argument("--prefill", type=int, default=1000, help="random steps put in the buffer first")
    parser.add_argument("--learn", type=int, default=0, help="also run train_eval for this many iterations")
    parser.add_argument("--out", default="runs/bench-tfa-breakout", help="run dir for --learn")
    parser.add_argument("--json", default="", help="write the figures to this JSON file too")
    args = parser.parse_args(argv)
    if args.json:  # checked before the long work: an unwritable path is one line now, not a traceback later
        try:
            files.writable_path(args.json, "result file (--json)")
        except ValueError as err:
            parser.exit(2, f"{parser.prog}: error: {err}\n")

    runtime.require_legacy_keras()
    runtime.enable_memory_growth()
    runtime.seed_everything(0)
    import numpy as np
    from tf_agents.drivers import dynamic_step_driver
    from tf_agents.policies import random_tf_policy
    from tf_agents.utils import common

    from agents.atari import make_breakout_env
    from agents.configs import TfaDqnConfig
    from agents.tfa.components import build
    from keras_impl.config import resolve

    print(f"[bench] {runtime.device_summary()}", flush=True)
    figures: dict = {"device": runtime.device_summary(), "cpu_count": os.cpu_count()}

    # 1. the environment alone
    env = make_breakout_env(seed=0)
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    start, cpu_start = time.perf_counter(), time.process_time()
    for _ in range(args.env_steps):
        _, _, terminated, truncated, _ = env.step(int(rng.integers(4)))
        if terminated or truncated:
            env.reset()
    seconds = time.perf_counter() - start
    figures["env_only_agent_steps_per_s"] = args.env_steps / seconds
    figures["env_only_agent_steps_per_cpu_s"] = args.env_steps / (time.process_time() - cpu_start)
    figures["env_only_ale_frames_per_s"] = args.env_steps * FRAME_SKIP / seconds
    env.close()
    print(f"[bench] env only: {figures['env_only_agent_steps_per_s']:.0f} agent steps/s = "
          f"{figures['env_only_ale_frames_per_s']:.0f} ALE frames/s "
          f"({figures['env_only_agent_steps_per_cpu_s']:.0f} per CPU-second)", flush=True)

    # 2. the pipeline's components, buffer prefilled with random steps
    p = resolve(TfaDqnConfig, {"env": "breakout", "replay_capacity": max(10_000, args.prefill * 2)})
    c = build(p)
    random_policy = random_tf_policy.RandomTFPolicy(c.tf_env.time_step_spec(), c.tf_env.action_spec())
    prefill = dynamic_step_driver.DynamicStepDriver(c.tf_env, random_policy, observers=[c.replay_buffer.add_batch],
                                                    num_steps=args.prefill)
    common.function(prefill.run)()
    dataset = c.replay_buffer.as_dataset(sample_batch_size=p.batch_size, num_steps=2,
                                         num_parallel_calls=3).prefetch(3)
    iterator = iter(dataset)
    collect = common.function(c.collect_driver.run)
    train = common.function(c.agent.train)

    def iterate(n, do_collect=True, do_train=True):
        time_step, policy_state = None, c.agent.collect_policy.get_initial_state(c.tf_env.batch_size)
        loss = None
        for _ in range(n):
            if do_collect:
                time_step, policy_state = collect(time_step=time_step, policy_state=policy_state)
            if do_train:
                experience, _ = next(iterator)
                loss = train(experience).loss
        if loss is not None:
            float(loss)  # wait for the last step

    iterate(args.warmup)
    # 3. the train step alone
    start = time.perf_counter()
    iterate(args.iterations, do_collect=False)
    train_seconds = time.perf_counter() - start
    figures["train_steps_per_s"] = args.iterations / train_seconds
    # 4. collect + train, as in train_eval. On a shared machine wall time depends on the load, so
    # also report the rate per CPU-second of this process (all its threads).
    start, cpu_start = time.perf_counter(), time.process_time()
    iterate(args.iterations)
    seconds = time.perf_counter() - start
    cpu_seconds = time.process_time() - cpu_start
    figures["agent_steps_per_cpu_s"] = args.iterations * p.collect_steps / cpu_seconds
    figures["load_average_1min"] = os.getloadavg()[0]
    figures["iterations_per_s"] = args.iterations / seconds
    figures["agent_steps_per_s"] = args.iterations * p.collect_steps / seconds
    figures["ale_frames_per_s"] = figures["agent_steps_per_s"] * FRAME_SKIP
    figures["batch_size"] = p.batch_size
    print(f"[bench] train step alone: {figures['train_steps_per_s']:.1f} steps/s (batch {p.batch_size})", flush=True)
    print(f"[bench] collect+train: {figures['iterations_per_s']:.1f} iterations/s = "
          f"{figures['agent_steps_per_s']:.0f} agent steps/s = {figures['ale_frames_per_s']:.0f} ALE frames/s", flush=True)
    hours = 1_000_000 / figures["agent_steps_per_s"] / 3600
    print(f"[bench] per CPU-second of this process: {figures['agent_steps_per_cpu_s']:.0f} agent steps = "
          f"{figures['agent_steps_per_cpu_s'] * FRAME_SKIP:.0f} ALE frames (load average now "
          f"{figures['load_average_1min']:.1f} on {os.cpu_count()} cores)", flush=True)
    print(f"[bench] at this rate 1M agent steps (4M frames) take {hours:.1f} h", flush=True)
    figures["hours_per_million_agent_steps"] = hours

    if args.learn:
        from agents.tfa.pipeline import train_eval

        out = Path(args.out)
        # HOML's preset, with a smaller buffer/initial collect and short evaluations so that a
        # CPU run of a few thousand iterations shows a curve.
        result = train_eval(resolve(TfaDqnConfig, dict(env="breakout", iterations=args.learn, replay_capacity=20_000,
                                         initial_collect_steps=min(20_000, 5 * args.learn),
                                         eval_interval=max(1, args.learn // 5), eval_episodes=2,
                                         eval_max_steps=2_000, final_eval_episodes=3, gif_steps=300,
                                         log_interval=max(1, args.learn // 10),
                                         checkpoint_interval=max(1, args.learn // 5))), out)
        history = json.loads((out / "eval_history.json").read_text())
        print("[bench] learning curve (train_step, agent steps, greedy eval mean, collect avg return):")
        for h in history:
            print(f"  {h['train_step']:>8} {h['env_steps']:>9} {h['eval_mean']:8.2f} {h['train_avg_return']:8.2f}")
        print(f"[bench] {result['headline']}")
        figures["learning_curve"] = history

    if args.json:
        files.atomic_write_json(args.json, figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
