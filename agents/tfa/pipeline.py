"""``train_eval``: one TF-Agents DqnAgent pipeline for CartPole, FrozenLake and Breakout (HOML ch. 18).

Top to bottom: components (:func:`agents.tfa.components.build`) -> checkpoint (restore when
resuming) -> random initial collect -> dataset -> the loop (collect, train, log, evaluate, export
the best greedy policy, checkpoint; Ctrl-C saves) -> final evaluation of the exported SavedModel
through :mod:`agents.evaluation` -> GIF and learning curve.

Checkpoints are TF-Agents' objects in a ``tf.train.Checkpoint`` (what ``common.Checkpointer``
wraps) written by :class:`keras_impl.checkpoints.CheckpointManager`: atomic, SHA-256 verified,
the last two kept, a corrupt newest one skipped with a message. TF-Agents' own Checkpointer keeps
no checksums, so a truncated file surfaced as ``IndexError: Read less bytes than requested``.

Run it with ``kcourse run tfa-dqn --env cartpole|frozenlake|breakout [--iterations N]`` and
``kcourse run tfa-dqn --resume DIR [--iterations N]``.
"""
from __future__ import annotations

import collections
import contextlib
import dataclasses
import json
import os
import time
from pathlib import Path

import numpy as np
import tensorflow as tf
from tf_agents.drivers import dynamic_step_driver
from tf_agents.eval import metric_utils
from tf_agents.policies import random_tf_policy
from tf_agents.utils import common

from agents import policy_files, render
from agents.atari import FRAME_SKIP, PROTOCOLS
from agents.configs import TfaDqnConfig
from agents.evaluation import REPORT_SEED, screened, seed_span, select_seed, selection_bound, selection_passes
from agents.tfa.components import (
    build,
    env_factory,
    evaluate_policy,
    export_policy,
    greedy_policy,
    n_actions,
    sample_windows,
    train_on_window,
)
from keras_impl import config as cfglib
from keras_impl import files, runtime
from keras_impl.checkpoints import CheckpointManager, save_on_interrupt
from keras_impl.plotting import plot_learning_curve

POLICY_DIR = "policy"
HISTORY_FILE = "eval_history.json"
CHECKPOINT_FILE = "tf"  # prefix of the tf.train.Checkpoint files inside a checkpoint folder


def _checkpoint(c, p: TfaDqnConfig) -> tf.train.Checkpoint:
    """The objects a checkpoint holds (the names TF-Agents' Checkpointer gives them in HOML)."""
    objects = {"agent": c.agent, "policy": c.agent.policy, "global_step": c.train_step,
               "metrics": metric_utils.MetricsGroup(c.train_metrics, "train_metrics")}
    if p.checkpoint_replay_buffer:
        objects["replay_buffer"] = c.replay_buffer
    return tf.train.Checkpoint(**objects)


def _restore(manager: CheckpointManager, checkpoint: tf.train.Checkpoint) -> Path:
    """Restore the newest checkpoint that verifies (:meth:`CheckpointManager.latest`).

    A run made before kcourse's checkpoint folders (TF-Agents' ``Checkpointer`` files directly in
    ``checkpoints/``, no manifest) is read as it is, with a message: it cannot be verified.
    """
    legacy = tf.train.latest_checkpoint(str(manager.directory)) if not manager.checkpoints() else None
    if legacy:
        manager.log(f"reading {legacy}: a checkpoint written by TF-Agents' Checkpointer (an older kcourse), "
                    f"which has no checksums to verify")
        checkpoint.read(legacy).expect_partial()
        return Path(legacy)
    path = manager.latest()
    try:
        checkpoint.read(str(path / CHECKPOINT_FILE)).assert_existing_objects_matched()
    except (AssertionError, ValueError, tf.errors.OpError) as err:
        first = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
        raise ValueError(f"checkpoint {path} does not fit this run's agent ({first})") from None
    return path


def _initial_collect(c, p: TfaDqnConfig) -> int:
    """Random-policy steps into an empty buffer (skipped when a restored buffer holds data)."""
    if int(c.replay_buffer.num_frames()) > 0 or p.initial_collect_steps == 0:
        return 0
    random_policy = random_tf_policy.RandomTFPolicy(c.tf_env.time_step_spec(), c.tf_env.action_spec())
    driver = dynamic_step_driver.DynamicStepDriver(c.tf_env, random_policy, observers=[c.add_to_replay],
                                                   num_steps=p.initial_collect_steps)
    common.function(driver.run)()
    return p.initial_collect_steps


def _train_function(c, p: TfaDqnConfig):
    """``train(iterator) -> last loss``: ``train_steps`` agent updates in one compiled call.

    One call per iteration instead of one per update (CartPole takes 128 updates an iteration).
    The loop is a plain ``tf.while_loop``: AutoGraph would convert all of TF-Agents' training code.
    Each sampled window becomes its n-step transition cut at its episode's end, a window that
    starts at an end weighs 0 (:func:`~agents.tfa.components.n_step_transition`).
    """
    train_once = train_on_window(c, p.gamma)

    def train(iterator):
        def body(i, loss):
            experience, _ = next(iterator)
            return i + 1, train_once(experience).loss

        _, loss = tf.while_loop(lambda i, loss: i < p.train_steps, body, (tf.constant(0), tf.constant(0.0)))
        return loss

    return common.function(train, jit_compile=p.jit_compile or None)


@dataclasses.dataclass
class _Session:
    """One training session of :func:`train_eval`: components, history, writers, clocks."""

    p: TfaDqnConfig
    run_dir: Path
    c: object
    history: list
    writers: tuple
    chosen: dict | None = None  # the history entry of the exported policy's selection evaluation
    passed: bool = False  # a selection evaluation passed (agents.evaluation.selection_passes)
    timer: runtime.Timer = dataclasses.field(default_factory=runtime.Timer)
    window: tuple = dataclasses.field(default_factory=lambda: (0, time.perf_counter()))
    phases: collections.Counter = dataclasses.field(default_factory=collections.Counter)

    @property
    def step(self) -> int:
        return int(self.c.train_step.numpy())

    @contextlib.contextmanager
    def phase(self, name: str):
        """Add the block's wall time to ``phases[name]`` (the run's "where the time went")."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.phases[name] += time.perf_counter() - start


def _log(s: _Session, iteration: int, loss: float, verbose: bool) -> None:
    """TensorBoard scalars and the console line, every ``log_interval`` iterations."""
    start_iteration, start = s.window
    its_per_s = (iteration - start_iteration) / max(time.perf_counter() - start, 1e-9)
    s.window = (iteration, time.perf_counter())
    train_writer = s.writers[0]
    with train_writer.as_default(step=s.step):
        for metric in s.c.train_metrics:
            metric.tf_summaries(train_step=s.c.train_step, step_metrics=s.c.train_metrics[:2])
    epsilon = float(s.c.epsilon_fn(s.c.train_step))
    runtime.log_scalars(train_writer, s.step, {"losses/td_loss": loss, "charts/epsilon": epsilon,
                                               "charts/iterations_per_s": its_per_s,
                                               "charts/agent_steps_per_s": its_per_s * s.p.collect_steps})
    if verbose:
        m = s.c.train_metrics
        print(f"[tfa-dqn] iter {iteration:>7} | updates {s.step:>7} | loss {loss:8.4f} | eps {epsilon:.3f} | "
              f"episodes {int(m[0].result())} | avg return {float(m[2].result()):7.2f} | {its_per_s:6.1f} it/s",
              flush=True)


def _rank(entry: dict) -> tuple[bool, float]:
    """How selection evaluations compare: a passing one beats any other, then the higher mean."""
    return bool(entry.get("selection_passed")), entry["eval_mean"]


def _evaluate(s: _Session, greedy, iteration: int, verbose: bool) -> bool:
    """A greedy selection evaluation; export the policy when it ranks first so far (:func:`_rank`).

    Returns whether it passed the selection rule: all ``eval_episodes`` played and
    :func:`agents.evaluation.selection_passes` (the lower prediction bound of a
    ``final_eval_episodes``-episode report's mean reaches ``target_return``). With ``early_stop``
    and a target, a screen of 10 episodes comes first and all ``eval_episodes`` run only when the
    screen's mean reaches it (:func:`agents.evaluation.screened`, as for the hand-written DQN). Its
    episodes come from the selection seeds (a new first seed each iteration); the reported result
    is :func:`_finish`'s evaluation on the report seeds.
    """
    p = s.p
    seed = select_seed(iteration, p.eval_episodes)
    screen = p.target_return if p.target_return and p.early_stop else None
    actions = n_actions(s.c.agent.action_spec)
    result = screened(lambda n: evaluate_policy(greedy, p, n, seed, actions), p.eval_episodes, screen)
    bound = selection_bound(result.returns, p.final_eval_episodes)
    passed = (bool(p.target_return) and len(result.returns) == p.eval_episodes
              and selection_passes(result.returns, p.target_return, p.final_eval_episodes))
    runtime.log_scalars(s.writers[1], s.step, {"eval/mean_return": result.mean, "eval/std_return": result.std})
    m = s.c.train_metrics
    entry = {"iteration": iteration, "train_step": s.step, "eval_mean": result.mean, "eval_std": result.std,
             "eval_episodes": len(result.returns), "eval_seed": seed,
             "select_bound": bound if np.isfinite(bound) else None, "selection_passed": passed,
             "train_avg_return": float(m[2].result()), "env_steps": int(m[1].result()),
             "seconds": round(s.timer.seconds, 2)}
    s.history.append(entry)
    files.atomic_write_json(s.run_dir / HISTORY_FILE, s.history)
    if verbose:
        print(f"[tfa-dqn] eval at iter {iteration}: {result.summary()}; lower bound {bound:.3f}", flush=True)
    if not p.keep_best:  # the final policy is exported after training; this is the latest selection
        s.chosen = entry
    elif s.chosen is None or _rank(entry) > _rank(s.chosen) or not (s.run_dir / POLICY_DIR).is_dir():
        s.chosen = entry
        export_policy(s.c.agent, s.c.train_step, p, s.run_dir / POLICY_DIR, result)
    s.passed = s.passed or passed
    if passed and verbose:
        print(f"[tfa-dqn] selection passed at iteration {iteration}: lower bound {bound:.3f} >= target "
              f"{p.target_return:g}", flush=True)
    return passed


def _start(p: TfaDqnConfig, run_dir: Path, resume: bool) -> tuple[_Session, tf.train.Checkpoint, CheckpointManager]:
    """The components, restored from the newest usable checkpoint when resuming; the session state.

    A resumed run's folder changes only after its checkpoint has loaded (``config.json`` last).
    """
    runtime.require_legacy_keras()
    runtime.seed_everything(p.seed, deterministic=p.deterministic)  # the network, exploration, replay sampling
    c = build(p)
    checkpoint = _checkpoint(c, p)
    manager = CheckpointManager(run_dir / "checkpoints", keep=2, log=lambda line: print(f"[tfa-dqn] {line}"))
    if resume:
        path = _restore(manager, checkpoint)
        print(f"[tfa-dqn] resumed from {path} at update {int(c.train_step.numpy())}", flush=True)
    for sub in ("train", "eval", "checkpoints"):
        (run_dir / sub).mkdir(parents=True, exist_ok=True)
    files.atomic_write_json(run_dir / "config.json", p)
    step = int(c.train_step.numpy())
    history_path = run_dir / HISTORY_FILE
    history = files.read_json(history_path, "the evaluation history") if step and history_path.is_file() else []
    s = _Session(p, run_dir, c, [h for h in history if h["train_step"] <= step], runtime.summary_writers(run_dir))
    s.chosen = max(s.history, key=_rank, default=None)
    s.passed = any(h.get("selection_passed") for h in s.history)
    return s, checkpoint, manager


def _loop(s: _Session, iterator, save, verbose: bool) -> tuple[float, bool]:
    """Iterations until ``p.iterations`` or the target: collect, train, log, evaluate, checkpoint.

    Returns the last loss and whether a selection evaluation passed (with ``early_stop``, the run
    stops there).
    """
    p, c = s.p, s.c
    collect, train = common.function(c.collect_driver.run), _train_function(c, p)
    greedy = greedy_policy(c.agent.policy)
    # Every session starts a new episode: a resumed run's restored buffer ends mid-episode, and the
    # FIRST frame after it is where n_step_transition cuts the windows that span the two.
    time_step, policy_state = c.tf_env.reset(), c.agent.collect_policy.get_initial_state(c.tf_env.batch_size)
    loss, stop = float("nan"), False
    iteration = start = s.step // p.train_steps
    s.window = (iteration, time.perf_counter())
    # The agent's own loss summaries only once a log interval (not 128 times an iteration).
    summary_every = p.log_interval * p.train_steps
    with s.writers[0].as_default(), tf.summary.record_if(lambda: tf.equal(c.train_step % summary_every, 0)):
        while iteration < p.iterations and not stop:
            # a session's first iteration traces the compiled collect and train: its own phase
            first = "tracing (first iteration)" if iteration == start else None
            with s.phase(first or "collect"):
                time_step, policy_state = collect(time_step=time_step, policy_state=policy_state)
            with s.phase(first or "train"):
                loss, iteration = float(train(iterator)), iteration + 1
            if iteration % p.log_interval == 0:
                with s.phase("log"):
                    _log(s, iteration, loss, verbose)
            if iteration % p.eval_interval == 0 or iteration == p.iterations:
                with s.phase("evaluate"):
                    stop = _evaluate(s, greedy, iteration, verbose) and p.early_stop
            if iteration % p.checkpoint_interval == 0:
                with s.phase("checkpoint"):
                    save()
    return loss, s.passed


def train_eval(cfg: TfaDqnConfig, run_dir: str | os.PathLike, resume: bool = False, verbose: bool = True) -> dict:
    """Train a DqnAgent, checkpoint it, export and evaluate its greedy policy.

    Args:
        cfg: the resolved config (``keras_impl.config.resolve(TfaDqnConfig, {"env": "breakout"})``
            gives a preset's).
        run_dir: the run folder (``train/`` and ``eval/`` TensorBoard logs, ``checkpoints/``,
            ``policy/``, ``agent.gif``, ``learning_curve.png``).
        resume: continue from the run's newest usable checkpoint (an error when there is none);
            ``cfg.iterations`` is the new total.
        verbose: print a log line every ``log_interval`` iterations.

    Returns:
        ``{"headline", "metrics", "artifacts"}`` (the ``kcourse run`` result) with, in ``metrics``,
        the final train step, the last loss, the replay buffer size and the final evaluation.
    """
    p = cfglib.validate(cfg)
    s, checkpoint, manager = _start(p, Path(run_dir), resume)
    c, run_dir, resumed_from = s.c, s.run_dir, s.step

    def save() -> Path:
        path = manager.save(s.step, lambda folder: checkpoint.write(str(folder / CHECKPOINT_FILE)))
        if verbose and not getattr(save, "said", False):  # where and when, once per run
            save.said = True
            print(f"[tfa-dqn] checkpoint {path.name} saved in {manager.directory} at train step {s.step}; "
                  f"one every {p.checkpoint_interval} iterations and on Ctrl-C, the last {manager.keep} kept")
        return path

    initial_frames = _initial_collect(c, p)
    # (n + 1)-step trajectories (one n-step transition each); in parallel and prefetched only when not deterministic
    iterator = iter(sample_windows(c, p.n_step_update + 1, p.batch_size, parallel=not p.deterministic))
    cpu_start = time.process_time()
    with save_on_interrupt(save, f"kcourse run tfa-dqn --resume {run_dir}", log=print):
        loss, selection_passed = _loop(s, iterator, save, verbose)
    with s.phase("checkpoint"):
        save()
    train_seconds, train_cpu_seconds = s.timer.seconds, time.process_time() - cpu_start
    s.phases["start-up"] = train_seconds - sum(s.phases.values())  # components, restore, random collect, tracing
    if not p.keep_best or not (run_dir / POLICY_DIR).is_dir():  # the final policy; or never evaluated
        export_policy(c.agent, c.train_step, p, run_dir / POLICY_DIR, None)
    if hasattr(c.tf_env, "close"):
        c.tf_env.close()
    with s.phase("final evaluation, GIF, plot"):
        result = _finish(p, run_dir, c, s.writers[1], s.history, s.chosen, loss, selection_passed, initial_frames,
                         resumed_from, train_seconds, train_cpu_seconds)
    result["metrics"]["seconds_by_phase"] = {k: round(v, 2) for k, v in s.phases.items()}
    return result


def _finish(p: TfaDqnConfig, run_dir: Path, c, eval_writer, history: list, chosen: dict | None, loss: float,
            selection_passed: bool, initial_frames: int, resumed_from: int, train_seconds: float,
            train_cpu_seconds: float) -> dict:
    """Evaluate the exported SavedModel the way a user loads it, then the GIF, the plot and the metrics.

    That evaluation is the report: ``final_eval_episodes`` episodes on the report seeds, played once;
    ``reached`` comes from it. ``selection_passed`` is whether a periodic (selection) evaluation passed
    the selection rule; ``select_mean``/``select_bound`` are the exported policy's selection numbers.
    """
    policy, meta = policy_files.load_policy(run_dir / POLICY_DIR)
    # Atari: the report under each protocol (sticky first: the headline), on the same report seeds
    protocols = tuple(PROTOCOLS) if p.atari else (None,)
    reports = {protocol: evaluate_policy(policy, p, p.final_eval_episodes, seed=REPORT_SEED,
                                     actions=int(meta["action_space"]["n"]), protocol=protocol)
               for protocol in protocols}
    final = reports[protocols[0]]
    meta["evaluation"] = json.loads(files.to_json(final))
    policy_files.write_metadata(run_dir / POLICY_DIR, meta)
    runtime.log_scalars(eval_writer, int(c.train_step.numpy()), {"eval/final_mean_return": final.mean})
    artifacts = []
    if p.gif:
        factory = env_factory(p)
        env = factory(seed=REPORT_SEED, render=True, **p.env_kwargs) if factory else None
        frames = render.record_episode(policy, p.env_id, seed=REPORT_SEED, max_steps=p.gif_steps - 1,
                                       env_kwargs=p.env_kwargs, env=env)
        if env is not None:
            env.close()
        render.write_gif(frames, run_dir / "agent.gif", fps=30 if p.env != "frozenlake" else 3)
        artifacts.append("agent.gif")
    plot_learning_curve(run_dir / "learning_curve.png", f"TF-Agents DQN on {p.env_id}{' (slippery)' if p.slippery else ''}",
                        points={"greedy eval mean": ([h["train_step"] for h in history], [h["eval_mean"] for h in history]),
                                "collect avg return": ([h["train_step"] for h in history],
                                                       [h["train_avg_return"] for h in history])},
                        xlabel="agent updates (train steps)")
    artifacts.append("learning_curve.png")
    steps_done, env_steps = int(c.train_step.numpy()), int(c.train_metrics[1].result())
    metrics = {
        "env": p.env_id, "slippery": p.slippery if p.env == "frozenlake" else None, "train_step": steps_done,
        "iterations": steps_done // p.train_steps, "resumed_from": resumed_from,
        "updates_this_run": steps_done - resumed_from, "env_steps": env_steps,
        "episodes": int(c.train_metrics[0].result()), "initial_collect_steps_this_run": initial_frames,
        "replay_buffer_frames": int(c.replay_buffer.num_frames()), "last_loss": loss,
        "train_seconds": round(train_seconds, 2), "train_cpu_seconds": round(train_cpu_seconds, 2),
        "load_average_1min": round(os.getloadavg()[0], 1), "deterministic": p.deterministic,
        "selection_passed": selection_passed,
        "final_eval_mean": final.mean, "final_eval_std": final.std, "final_eval_episodes": len(final.returns),
        "final_eval_min": final.min, "report_seeds": seed_span(final),
        "select_mean": chosen["eval_mean"] if chosen else None,
        "select_bound": chosen.get("select_bound") if chosen else None,
        "best_periodic_eval": max((h["eval_mean"] for h in history), default=None),
        "policy_train_step": meta.get("train_step"),
    }
    metrics.update(protocol=protocols[0], distinct_outcomes=final.distinct, final_weights=not p.keep_best,
                   eval_epsilon=p.eval_epsilon)
    if p.atari:
        metrics["ale_frames"] = (env_steps + initial_frames) * FRAME_SKIP
        metrics["reports"] = {k: {"mean": r.mean, "std": r.std, "min": r.min, "max": r.max, "episodes": len(r.returns),
                                  "distinct_outcomes": r.distinct, "returns": r.returns, "lengths": r.lengths}
                              for k, r in reports.items()}
    if p.env == "frozenlake":
        metrics["final_success_rate"] = final.mean
    what = "success rate" if p.env == "frozenlake" else "mean return"
    target = p.report_target  # the slippery lake: 0.70
    reached = final.mean >= target if target else None
    verdict = "" if reached is None else f" (>= {target:g})" if reached else \
        f" (< {target:g}, missed by {target - final.mean:.3f})"
    selection = "" if reached is None else "selection passed, " if selection_passed else "selection never passed, "
    how = f"epsilon {p.eval_epsilon:g}" if p.eval_epsilon else "greedy"
    protocol_note = "".join(f", {k} protocol {r.mean:.2f} ({r.distinct_phrase})" for k, r in reports.items()
                            if k is not None)
    headline = (f"{p.env_id}{' slippery' if p.slippery else ''}: report {how} {what} {final.mean:.3f} over "
                f"{len(final.returns)} episodes{verdict}{protocol_note}; {selection}"
                f"{'final policy' if not p.keep_best else 'policy from update'} {meta.get('train_step')} "
                f"({train_seconds:.0f}s training)")
    return {"headline": headline, "metrics": metrics, "artifacts": artifacts, "reached": reached}


def run(cfg: TfaDqnConfig, run_dir: Path, resume: bool = False) -> dict:
    """``kcourse run tfa-dqn``: see :func:`train_eval`."""
    return train_eval(cfg, run_dir, resume=resume)
