"""Updates/s of the hand-written agent and of TF-Agents on Breakout's data-efficient preset, side by side.

One update per agent step is what a 100k-step data-efficient run costs, so this is the number that
decides its wall time. Times, one after the other on the same CPU (take it on idle cores):

* the hand-written ``DQNAgent.learn(replay, 32, 1)`` (a ``FrameReplay`` sample, random shifts, Double
  DQN's three forward passes and one backward pass), for the preset's dueling-double, without the
  shifts, and for the plain ``dqn`` variant (``atari_speed.py`` times its train step alone, its whole
  training loop and a PyTorch update);
* TF-Agents' ``agent.train`` of ``--preset data-efficient`` (``DdqnAgent``, n-step 10, the dueling
  ``AtariQNetwork`` with ``RandomShift``) on a fixed sampled batch, in a child process (TF-Agents
  needs ``TF_USE_LEGACY_KERAS=1`` before TensorFlow is imported); and its training loop, one collect
  step and one update on a prefetched replay window (what ``kcourse run tfa-dqn`` does 100,000 times).

    python benchmarks/breakout_update_rates.py --seconds 12
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.atari_speed import learn_rate, make_agent, preset, random_replay, rate  # noqa: E402


def hand_written(seconds: float) -> None:
    replay, play = random_replay(preset())
    for label, overrides in (("dueling-double (the preset)", {}), ("dueling-double, no shifts", {"augment_pad": 0}),
                             ("dqn variant", {"variant": "dqn"})):
        agent = make_agent(preset(**overrides), play.env)
        print(f"hand-written {label}: learn {learn_rate(agent, replay, seconds):.1f} updates/s "
              f"(load average {os.getloadavg()[0]:.2f})", flush=True)
    play.env.close()


def tf_agents(seconds: float) -> None:
    from tf_agents.drivers import dynamic_step_driver
    from tf_agents.policies import random_tf_policy
    from tf_agents.utils import common

    from agents.configs import TfaDqnConfig
    from agents.tfa.components import build, sample_windows, train_on_window
    from keras_impl.config import resolve

    p = resolve(TfaDqnConfig, {"env": "breakout", "preset": "data-efficient", "replay_capacity": 10_000})
    c = build(p)
    random_policy = random_tf_policy.RandomTFPolicy(c.tf_env.time_step_spec(), c.tf_env.action_spec())
    common.function(dynamic_step_driver.DynamicStepDriver(
        c.tf_env, random_policy, observers=[c.add_to_replay], num_steps=2_000).run)()
    experience, _ = next(iter(sample_windows(c, p.n_step_update + 1, 32, parallel=False)))
    train = common.function(train_on_window(c, p.gamma))  # the n-step transition (stacks rebuilt) + agent.train
    train_rate = rate(lambda: train(experience).loss.numpy(), seconds, warmup=10)
    print(f"TF-Agents data-efficient agent.train: {train_rate:.1f} "
          f"updates/s (load average {os.getloadavg()[0]:.2f})", flush=True)

    # The training loop as kcourse runs it: collect 1 agent step, then one compiled update on a
    # prefetched window (the frames restacked inside n_step_transition).
    from agents.tfa.pipeline import _train_function

    iterator = iter(sample_windows(c, p.n_step_update + 1, p.batch_size))
    collect, train_loop = common.function(c.collect_driver.run), _train_function(c, p)
    state = {"time_step": c.tf_env.reset(), "policy_state": c.agent.collect_policy.get_initial_state(1)}

    def iteration():
        state["time_step"], state["policy_state"] = collect(**state)
        float(train_loop(iterator))

    loop_rate = rate(iteration, seconds, warmup=10)
    print(f"TF-Agents data-efficient loop (collect 1 + train 1): {loop_rate:.1f} "
          f"iterations/s (load average {os.getloadavg()[0]:.2f})", flush=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=12.0, help="seconds per measurement")
    parser.add_argument("--only", choices=("keras", "tfa"), default=None, help="one side only")
    args = parser.parse_args(argv)
    print(f"load average before: {os.getloadavg()}", flush=True)
    if args.only == "tfa":
        tf_agents(args.seconds)
        return 0
    hand_written(args.seconds)
    if args.only is None:  # TF-Agents in a fresh process: it needs the legacy-Keras switch before TensorFlow
        env = {**os.environ, "TF_USE_LEGACY_KERAS": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}
        subprocess.run([sys.executable, __file__, "--only", "tfa", "--seconds", str(args.seconds)], env=env, check=True)
    print(f"load average after: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
