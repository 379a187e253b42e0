"""``train_eval``: one TF-Agents DqnAgent pipeline for CartPole, FrozenLake and Breakout (HOML ch. 18).

Top to bottom: environments -> QNetwork -> DqnAgent -> replay buffer -> metrics -> drivers ->
checkpointer (resume) -> random initial collect -> dataset -> the loop (collect, train, log,
evaluate, export the best greedy policy, checkpoint) -> final evaluation of the exported
SavedModel through :mod:`agents.evaluation` -> GIF and plot.

Run it with ``kcourse run tfa-dqn --env cartpole|frozenlake|breakout [--iterations N] [--resume DIR]``.
"""
from __future__ import annotations

import dataclasses
import functools
import json
import os
import time
import warnings
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import numpy as np  # noqa: E402

from keras_impl import runtime  # noqa: E402

runtime.require_legacy_keras()

import tensorflow as tf  # noqa: E402
from tf_agents.agents.dqn import dqn_agent  # noqa: E402
from tf_agents.drivers import dynamic_step_driver  # noqa: E402
from tf_agents.environments import batched_py_environment, parallel_py_environment, tf_py_environment  # noqa: E402
from tf_agents.eval import metric_utils  # noqa: E402
from tf_agents.metrics import tf_metrics  # noqa: E402
from tf_agents.networks import q_network  # noqa: E402
from tf_agents.policies import policy_saver, random_tf_policy  # noqa: E402
from tf_agents.replay_buffers import tf_uniform_replay_buffer  # noqa: E402
from tf_agents.trajectories import time_step as ts  # noqa: E402
from tf_agents.utils import common  # noqa: E402

from agents import evaluation  # noqa: E402
from agents.tfa import saved_policy  # noqa: E402
from agents.tfa.atari import FRAME_SKIP  # noqa: E402
from agents.tfa.config import BREAKOUT_CONV_LAYERS, RESOLVED_FILE, Resolved, TfaDqnConfig, read_resolved, resolve  # noqa: E402
from agents.tfa.envs import make_gym_env, make_py_env  # noqa: E402

# Noise from TF-Agents internals on TF 2.21: autograph's code for `policy_state is ()` and
# PolicySaver encoding TFP distribution specs. Neither is actionable here.
warnings.filterwarnings("ignore", category=SyntaxWarning, message=r'"is( not)?" with a literal')
warnings.filterwarnings("ignore", category=UserWarning, message="Encoding a StructuredValue with type tfp")

POLICY_DIR = "policy"
HISTORY_FILE = "eval_history.json"


# ----------------------------------------------------------------------------------------------
# Building blocks
# ----------------------------------------------------------------------------------------------


def make_collect_env(p: Resolved) -> tf_py_environment.TFPyEnvironment:
    """The collect environment: one env, or ``num_envs`` batched in-process or in subprocesses."""
    ctor = functools.partial(make_py_env, p.env_id, **p.env_kwargs)
    if p.num_envs == 1:
        return tf_py_environment.TFPyEnvironment(ctor(seed=p.seed))
    ctors = [functools.partial(ctor, seed=p.seed + i) for i in range(p.num_envs)]
    if p.parallel:
        from tf_agents.system import system_multiprocessing

        system_multiprocessing.enable_interactive_mode()  # we are not under tf_agents' own main()
        py_env = parallel_py_environment.ParallelPyEnvironment(ctors, start_serially=False)
    else:
        py_env = batched_py_environment.BatchedPyEnvironment([c() for c in ctors])
    return tf_py_environment.TFPyEnvironment(py_env)


def make_q_network(p: Resolved, env) -> q_network.QNetwork:
    """HOML's QNetworks: conv for Breakout (uint8 frames scaled in the net), one-hot for FrozenLake."""
    observation_spec, action_spec = env.observation_spec(), env.action_spec()
    if p.env == "breakout":
        # Frames stay uint8 in the replay buffer (4x smaller); scale them inside the network.
        scale = tf.keras.layers.Lambda(lambda obs: tf.cast(obs, tf.float32) / 255.0)
        return q_network.QNetwork(observation_spec, action_spec, preprocessing_layers=scale,
                                  conv_layer_params=BREAKOUT_CONV_LAYERS, fc_layer_params=p.fc_layers)
    if p.env == "frozenlake":
        n_states = int(observation_spec.maximum) + 1
        one_hot = tf.keras.layers.Lambda(lambda obs: tf.one_hot(tf.cast(obs, tf.int32), n_states))  # [B, 16]
        return q_network.QNetwork(observation_spec, action_spec, preprocessing_layers=one_hot,
                                  fc_layer_params=p.fc_layers)
    return q_network.QNetwork(observation_spec, action_spec, fc_layer_params=p.fc_layers)


def make_optimizer(p: Resolved):
    if p.optimizer == "rmsprop":  # HOML's Breakout settings (DeepMind's centered RMSProp)
        return tf.keras.optimizers.RMSprop(learning_rate=p.learning_rate, rho=0.95, momentum=0.0,
                                           epsilon=1e-5, centered=True)
    return tf.keras.optimizers.Adam(learning_rate=p.learning_rate)


def batched_policy(tf_policy) -> evaluation.Policy:
    """A TF-Agents policy as a batched numpy policy ``[N, *obs] -> [N]`` (one compiled call per batch)."""
    obs_dtype = tf_policy.time_step_spec.observation.dtype

    @tf.function
    def act(obs):
        n = tf.shape(obs)[0]
        time_step = ts.TimeStep(step_type=tf.fill([n], ts.StepType.MID), reward=tf.zeros([n]),
                                discount=tf.ones([n]), observation=obs)
        return tf_policy.action(time_step).action  # [N]

    return lambda obs_batch: act(tf.convert_to_tensor(np.asarray(obs_batch), dtype=obs_dtype)).numpy()


def evaluate_policy(policy: evaluation.Policy, p: Resolved, episodes: int, seed: int) -> evaluation.EvalResult:
    """Greedy evaluation with :func:`agents.evaluation.evaluate` (Breakout through its own factory)."""
    factory = functools.partial(make_gym_env, p.env_id) if p.env == "breakout" else None
    return evaluation.evaluate(policy, p.env_id, episodes=episodes, seed=seed, env_kwargs=p.env_kwargs,
                               max_steps=p.eval_max_steps or None, env_factory=factory)


def export_policy(agent, train_step, p: Resolved, run_dir: Path, result: evaluation.EvalResult) -> Path:
    """``PolicySaver`` export of the greedy policy + ``policy.json`` (written atomically)."""
    env = make_gym_env(p.env_id, **p.env_kwargs)
    extra = {"train_step": int(train_step.numpy()), "framework": "tf-agents 0.19 PolicySaver"}
    if p.env == "breakout":
        extra["env_factory"] = "agents.tfa.atari:make_breakout_env"
    saver = policy_saver.PolicySaver(agent.policy, batch_size=None, train_step=train_step)
    with runtime.atomic_directory(run_dir / POLICY_DIR) as tmp:
        saver.save(str(tmp))
        saved_policy.write_metadata(tmp, p.env_id, p.env_kwargs, env.observation_space, env.action_space,
                                    config=p, evaluation_result=result, extra=extra)
    env.close()
    return run_dir / POLICY_DIR


def write_gif(policy: evaluation.Policy, p: Resolved, path: Path, max_frames: int) -> int:
    """Play one greedy episode in a rendering env and save it as a GIF; returns the frame count."""
    import imageio.v2 as imageio

    env = make_gym_env(p.env_id, seed=p.seed, render=True, **p.env_kwargs)
    obs, _ = env.reset(seed=p.seed)
    frames = [env.render()]
    for _ in range(max_frames - 1):
        action = policy(np.asarray(obs)[None])[0]
        obs, _, terminated, truncated, _ = env.step(int(action))
        frames.append(env.render())
        if terminated or truncated:
            break
    env.close()
    imageio.mimsave(path, frames, duration=1000 / 30 if p.env != "frozenlake" else 300, loop=0)
    return len(frames)


def plot_history(history: list[dict], p: Resolved, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    if history:
        steps = [h["train_step"] for h in history]
        ax.plot(steps, [h["eval_mean"] for h in history], "o-", label="greedy eval mean")
        ax.plot(steps, [h["train_avg_return"] for h in history], ".--", alpha=0.6, label="collect avg return")
    ax.set_xlabel("agent updates (train steps)")
    ax.set_ylabel("return")
    ax.set_title(f"TF-Agents DQN on {p.env_id}{' (slippery)' if p.slippery else ''}")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


@dataclasses.dataclass
class Components:
    """What :func:`build` makes (also used by ``benchmarks/tfa_breakout.py``)."""

    tf_env: Any
    agent: Any
    replay_buffer: Any
    train_metrics: list
    collect_driver: Any
    train_step: Any
    epsilon_fn: Any


def build(p: Resolved) -> Components:
    """Environments, QNetwork, DqnAgent (HOML's settings), replay buffer, metrics and collect driver."""
    # --- environments, network, agent ---------------------------------------------------------
    tf_env = make_collect_env(p)
    q_net = make_q_network(p, tf_env)
    train_step = tf.Variable(0, dtype=tf.int64, trainable=False, name="train_step")
    epsilon_fn = tf.keras.optimizers.schedules.PolynomialDecay(
        initial_learning_rate=p.epsilon_start, decay_steps=p.epsilon_decay_updates, end_learning_rate=p.epsilon_end)
    agent_class = dqn_agent.DdqnAgent if p.agent == "ddqn" else dqn_agent.DqnAgent
    agent = agent_class(
        tf_env.time_step_spec(), tf_env.action_spec(), q_network=q_net, optimizer=make_optimizer(p),
        target_update_period=p.target_update_period, target_update_tau=p.target_update_tau,
        td_errors_loss_fn=common.element_wise_huber_loss, gradient_clipping=p.gradient_clipping or None,
        gamma=p.gamma, train_step_counter=train_step, epsilon_greedy=lambda: epsilon_fn(train_step))
    agent.initialize()

    # --- replay buffer and metrics ------------------------------------------------------------
    replay_buffer = tf_uniform_replay_buffer.TFUniformReplayBuffer(
        data_spec=agent.collect_data_spec, batch_size=tf_env.batch_size,
        max_length=max(2, p.replay_capacity // tf_env.batch_size))
    train_metrics = [
        tf_metrics.NumberOfEpisodes(),
        tf_metrics.EnvironmentSteps(),
        tf_metrics.AverageReturnMetric(batch_size=tf_env.batch_size),
        tf_metrics.AverageEpisodeLengthMetric(batch_size=tf_env.batch_size),
    ]
    collect_driver = dynamic_step_driver.DynamicStepDriver(
        tf_env, agent.collect_policy, observers=[replay_buffer.add_batch] + train_metrics,
        num_steps=p.collect_steps)

    return Components(tf_env, agent, replay_buffer, train_metrics, collect_driver, train_step, epsilon_fn)


# ----------------------------------------------------------------------------------------------
# train_eval
# ----------------------------------------------------------------------------------------------


def train_eval(cfg: TfaDqnConfig, run_dir: str | os.PathLike, verbose: bool = True) -> dict:
    """Train a DqnAgent, checkpoint it, export and evaluate its greedy policy.

    Args:
        cfg: the config; ``None`` fields come from the preset (or from the run being resumed when
            ``run_dir`` already holds a checkpoint).
        run_dir: the run directory (``train/`` and ``eval/`` TensorBoard logs, ``checkpoints/``,
            ``policy/``, ``agent.gif``, ``learning_curve.png``).
        verbose: print a log line every ``log_interval`` iterations.

    Returns:
        ``{"headline", "metrics", "artifacts"}`` (the ``kcourse run`` result) with, in ``metrics``,
        the final train step, the last loss, the replay buffer size and the final evaluation.
    """
    runtime.require_legacy_keras()
    run_dir = Path(run_dir)
    for sub in ("train", "eval", "checkpoints"):
        (run_dir / sub).mkdir(parents=True, exist_ok=True)
    p = resolve(cfg, read_resolved(run_dir))
    runtime.atomic_write_json(run_dir / RESOLVED_FILE, p)

    c = build(p)
    tf_env, agent, replay_buffer, train_metrics = c.tf_env, c.agent, c.replay_buffer, c.train_metrics
    train_step, epsilon_fn, collect_driver = c.train_step, c.epsilon_fn, c.collect_driver

    # --- checkpoints: agent, policy, replay buffer, metrics, train step -----------------------
    checkpointed = dict(agent=agent, policy=agent.policy, global_step=train_step,
                        metrics=metric_utils.MetricsGroup(train_metrics, "train_metrics"))
    if p.checkpoint_replay_buffer:
        checkpointed["replay_buffer"] = replay_buffer
    checkpointer = common.Checkpointer(ckpt_dir=str(run_dir / "checkpoints"), max_to_keep=1, **checkpointed)
    checkpointer.initialize_or_restore()
    resumed_from = int(train_step.numpy())
    history_path = run_dir / HISTORY_FILE
    history = json.loads(history_path.read_text()) if resumed_from and history_path.is_file() else []
    history = [h for h in history if h["train_step"] <= resumed_from]

    # --- random initial collect (skipped when a restored buffer already holds data) -----------
    initial_frames = 0
    if int(replay_buffer.num_frames()) == 0 and p.initial_collect_steps > 0:
        random_policy = random_tf_policy.RandomTFPolicy(tf_env.time_step_spec(), tf_env.action_spec())
        init_driver = dynamic_step_driver.DynamicStepDriver(
            tf_env, random_policy, observers=[replay_buffer.add_batch], num_steps=p.initial_collect_steps)
        common.function(init_driver.run)()
        initial_frames = p.initial_collect_steps

    # --- dataset of 2-step trajectories (one transition each) ---------------------------------
    dataset = replay_buffer.as_dataset(sample_batch_size=p.batch_size, num_steps=2,
                                       num_parallel_calls=3).prefetch(3)
    iterator = iter(dataset)
    collect = common.function(collect_driver.run)
    train = common.function(agent.train)

    train_writer, eval_writer = runtime.summary_writers(run_dir)
    greedy = batched_policy(agent.policy)
    best = max((h["eval_mean"] for h in history), default=-np.inf)
    time_step, policy_state = None, agent.collect_policy.get_initial_state(tf_env.batch_size)
    loss = float("nan")
    timer, window_start, cpu_start = runtime.Timer(), time.perf_counter(), time.process_time()
    window_steps = int(train_step.numpy()) // p.train_steps
    reached_target = False
    iteration = int(train_step.numpy()) // p.train_steps
    while iteration < p.iterations:
        with train_writer.as_default():
            time_step, policy_state = collect(time_step=time_step, policy_state=policy_state)
            for _ in range(p.train_steps):
                experience, _ = next(iterator)
                loss_tensor = train(experience).loss
        loss = float(loss_tensor)
        iteration += 1
        step = int(train_step.numpy())  # agent updates

        if iteration % p.log_interval == 0:
            seconds = time.perf_counter() - window_start
            its_per_s = (iteration - window_steps) / max(seconds, 1e-9)
            window_start, window_steps = time.perf_counter(), iteration
            with train_writer.as_default(step=step):
                for metric in train_metrics:
                    metric.tf_summaries(train_step=train_step, step_metrics=train_metrics[:2])
            runtime.log_scalars(train_writer, step, {
                "losses/td_loss": loss, "charts/epsilon": float(epsilon_fn(train_step)),
                "charts/iterations_per_s": its_per_s,
                "charts/agent_steps_per_s": its_per_s * p.collect_steps,
            })
            if verbose:
                print(f"[tfa-dqn] iter {iteration:>7} | updates {step:>7} | loss {loss:8.4f} | "
                      f"eps {float(epsilon_fn(train_step)):.3f} | episodes {int(train_metrics[0].result())} | "
                      f"avg return {float(train_metrics[2].result()):7.2f} | {its_per_s:6.1f} it/s", flush=True)

        if iteration % p.eval_interval == 0 or iteration == p.iterations:
            result = evaluate_policy(greedy, p, p.eval_episodes, seed=10_000 + iteration)
            runtime.log_scalars(eval_writer, step, {"eval/mean_return": result.mean, "eval/std_return": result.std})
            history.append({"iteration": iteration, "train_step": step, "eval_mean": result.mean,
                            "eval_std": result.std, "train_avg_return": float(train_metrics[2].result()),
                            "env_steps": int(train_metrics[1].result()), "seconds": round(timer.seconds, 2)})
            runtime.atomic_write_json(history_path, history)
            if verbose:
                print(f"[tfa-dqn] eval at iter {iteration}: {result.summary()}", flush=True)
            if result.mean > best or not (run_dir / POLICY_DIR).is_dir():
                best = max(best, result.mean)
                export_policy(agent, train_step, p, run_dir, result)
            if p.target_return and result.mean >= p.target_return:
                reached_target = True
                if verbose:
                    print(f"[tfa-dqn] target return {p.target_return:g} reached at iteration {iteration}", flush=True)
                break

        if iteration % p.checkpoint_interval == 0:
            checkpointer.save(global_step=train_step)

    checkpointer.save(global_step=train_step)
    train_seconds, train_cpu_seconds = timer.seconds, time.process_time() - cpu_start
    if not (run_dir / POLICY_DIR).is_dir():  # resumed at/after the end, or never evaluated
        export_policy(agent, train_step, p, run_dir, None)
    if hasattr(tf_env, "close"):
        tf_env.close()

    # --- final evaluation of the exported SavedModel (the way users load it) ------------------
    policy, meta = evaluation.load_policy(run_dir / POLICY_DIR)
    final = evaluate_policy(policy, p, p.final_eval_episodes, seed=p.seed)
    saved_policy.write_metadata(run_dir / POLICY_DIR, p.env_id, p.env_kwargs,
                                *_spaces(p), config=p, evaluation_result=final,
                                extra={k: v for k, v in meta.items() if k in ("train_step", "framework", "env_factory")})
    runtime.log_scalars(eval_writer, int(train_step.numpy()), {"eval/final_mean_return": final.mean})

    artifacts = []
    if p.gif:
        write_gif(policy, p, run_dir / "agent.gif", p.gif_steps)
        artifacts.append("agent.gif")
    plot_history(history, p, run_dir / "learning_curve.png")
    artifacts.append("learning_curve.png")

    steps_done = int(train_step.numpy())
    env_steps = int(train_metrics[1].result())
    metrics = {
        "env": p.env_id, "slippery": p.slippery if p.env == "frozenlake" else None,
        "train_step": steps_done, "iterations": steps_done // p.train_steps, "resumed_from": resumed_from, "updates_this_run": steps_done - resumed_from,
        "env_steps": env_steps, "episodes": int(train_metrics[0].result()),
        "initial_collect_steps_this_run": initial_frames,
        "replay_buffer_frames": int(replay_buffer.num_frames()), "last_loss": loss,
        "train_seconds": round(train_seconds, 2), "train_cpu_seconds": round(train_cpu_seconds, 2),
        "load_average_1min": round(os.getloadavg()[0], 1), "reached_target": reached_target,
        "final_eval_mean": final.mean, "final_eval_std": final.std, "final_eval_episodes": len(final.returns),
        "final_eval_min": final.min, "best_periodic_eval": best if np.isfinite(best) else None,
        "policy_train_step": meta.get("train_step"),
    }
    if p.env == "breakout":
        metrics["ale_frames"] = (env_steps + initial_frames) * FRAME_SKIP
    if p.env == "frozenlake":
        metrics["final_success_rate"] = final.mean
    what = "success rate" if p.env == "frozenlake" else "mean return"
    headline = (f"{p.env_id}{' slippery' if p.slippery else ''}: greedy {what} {final.mean:.3f} over "
                f"{len(final.returns)} episodes; policy from update {meta.get('train_step')} "
                f"({train_seconds:.0f}s training)")
    return {"headline": headline, "metrics": metrics, "artifacts": artifacts}


def _spaces(p: Resolved):
    env = make_gym_env(p.env_id, **p.env_kwargs)
    spaces = (env.observation_space, env.action_space)
    env.close()
    return spaces
