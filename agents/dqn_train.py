"""Training the hand-written DQN family (:mod:`agents.dqn`): the loop, checkpoints, resume, artifacts.

The loop, CleanRL style: act epsilon-greedily and store the transition; every ``train_frequency``
steps take ``gradient_steps`` updates; update the target network; at an episode's end log it
(and checkpoint every ``checkpoint_every`` episodes); every ``eval_interval`` steps evaluate the
greedy policy on ``eval_episodes`` held-out episodes and stop at the target.

Checkpoints (:class:`keras_impl.checkpoints.CheckpointManager`, ``checkpoints/ckpt-EEEEEE`` by
episode) hold both networks' weights, the best evaluated weights, the optimizer's state, the
replay buffer, epsilon, the counters and the random generators; Ctrl-C saves one. ``kcourse run
dqn --resume RUN_DIR`` continues the run.

Run it::

    kcourse run dqn --env CartPole-v1 --variant dueling-double
    kcourse run dqn --resume runs/dqn__0__20260101-120000 --config total_timesteps=80000
"""
from __future__ import annotations

import csv
import dataclasses
import json
import time
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from agents import policy_files, render
from agents.configs import DQNConfig
from agents.atari import PROTOCOLS, atari_policy_extra, check_q_learnable, is_atari, make_agent_env, protocol_kwargs
from agents.dqn import DQNAgent, epsilon_at
from agents.envs import make_env, resolve_env_id
from agents.evaluation import REPORT_SEED, SELECT_SEED, evaluate, screened, seed_span, selection_passes, train_seed
from agents.replay import FrameReplay, NStepWindow, ReplayBuffer, check_replay_sizes
from keras_impl import config as cfglib
from keras_impl import files, runtime
from keras_impl.checkpoints import CheckpointManager, save_on_interrupt
from keras_impl.plotting import moving_mean, plot_learning_curve

# Training scalars go to TensorBoard as the mean of this many training rounds (CleanRL writes every
# 100 steps): a write each round was a visible share of an Atari agent step (docs/atari-speed.md).
LOG_ROUNDS = 100

# ----------------------------------------------------------------------------------------------
# Training state and checkpoints
# ----------------------------------------------------------------------------------------------


@dataclasses.dataclass
class TrainState:
    """Counters and histories saved with every checkpoint."""

    global_step: int = 0
    episode: int = 0
    updates: int = 0
    epsilon: float = 1.0
    train_seconds: float = 0.0
    cpu_seconds: float = 0.0  # process CPU time of training (evaluation excluded): wall time on an idle core
    returns: list = dataclasses.field(default_factory=list)
    lengths: list = dataclasses.field(default_factory=list)
    evals: list = dataclasses.field(default_factory=list)  # [step, episode, mean, std, episodes]
    train_log: list = dataclasses.field(default_factory=list)  # [step, mean loss, mean Q of taken actions] a round
    solved_step: Optional[int] = None
    solved_seconds: Optional[float] = None
    best_eval: Optional[float] = None
    schedule_timesteps: Optional[int] = None  # total_timesteps when the run started: fixes epsilon's span
    resumed_at: list = dataclasses.field(default_factory=list)  # env steps at which the run was resumed


def _write_checkpoint(folder: Path, agent: DQNAgent, buffer: ReplayBuffer, state: TrainState, cfg: DQNConfig,
                      best_weights: list) -> None:
    if agent.target_is_online:  # the target net is the online net: save it as such
        agent.update_target(1.0)
    agent.q_net.save_weights(folder / "q_net.weights.h5")
    agent.target_net.save_weights(folder / "target_net.weights.h5")
    current = agent.q_net.get_weights()
    agent.q_net.set_weights(best_weights)  # the best evaluated online weights so far
    agent.q_net.save_weights(folder / "best.weights.h5")
    agent.q_net.set_weights(current)
    np.savez(folder / "optimizer.npz", **agent.optimizer_state())
    buffer.save_npz(folder / "replay.npz")  # straight to the file: no second in-memory copy of 0.7 GB
    rng = {"explore": agent.rng.bit_generator.state, "replay": buffer.rng.bit_generator.state}
    if agent.augment_rng is not None:  # DrQ's shifts: an exact resume draws the same ones
        rng["augment"] = agent.augment_rng.state.numpy().tolist()
    meta = {"state": dataclasses.asdict(state), "config": dataclasses.asdict(cfg), "rng": rng}
    (folder / "state.json").write_text(files.to_json(meta) + "\n")


def save_checkpoint(manager: CheckpointManager, agent: DQNAgent, buffer: ReplayBuffer, state: TrainState,
                    cfg: DQNConfig, best_weights: list) -> Path:
    """``checkpoints/ckpt-{episode}``: atomic, with a SHA-256 manifest; older ones pruned."""
    return manager.save(state.episode, lambda folder: _write_checkpoint(folder, agent, buffer, state, cfg, best_weights))


def load_checkpoint(path: Path, agent: DQNAgent, buffer: ReplayBuffer) -> tuple[TrainState, list]:
    """Restore weights, optimizer, replay buffer and generators from a verified checkpoint folder.

    Returns:
        ``(saved TrainState, best evaluated weights)``.
    """
    meta = json.loads((path / "state.json").read_text())
    agent.q_net.load_weights(path / "best.weights.h5")
    best_weights = agent.q_net.get_weights()
    agent.q_net.load_weights(path / "q_net.weights.h5")
    agent.target_net.load_weights(path / "target_net.weights.h5")
    agent.weights_changed()
    with np.load(path / "optimizer.npz") as arrays:
        agent.load_optimizer_state({k: arrays[k] for k in arrays.files})
    buffer.load_npz(path / "replay.npz")
    agent.rng.bit_generator.state = meta["rng"]["explore"]
    buffer.rng.bit_generator.state = meta["rng"]["replay"]
    if agent.augment_rng is not None and "augment" in meta["rng"]:  # (older checkpoints lack it)
        agent.augment_rng.reset(np.asarray(meta["rng"]["augment"], dtype=np.int64))
    known = {f.name for f in dataclasses.fields(TrainState)}
    return TrainState(**{k: v for k, v in meta["state"].items() if k in known}), best_weights


# ----------------------------------------------------------------------------------------------
# The training loop
# ----------------------------------------------------------------------------------------------


def resolve_target_return(cfg: DQNConfig, env) -> Optional[float]:
    """``cfg.target_return``, else the env's ``reward_threshold`` (CartPole-v1: 475), else None."""
    if cfg.target_return is not None:
        return float(cfg.target_return)
    threshold = getattr(getattr(env, "spec", None), "reward_threshold", None)
    return None if threshold is None else float(threshold)


@dataclasses.dataclass
class _Run:
    """What one training session holds: the agent, its memory, the state, the clocks, the logs."""

    cfg: DQNConfig
    run_dir: Path
    agent: DQNAgent
    buffer: ReplayBuffer | FrameReplay
    window: NStepWindow | FrameReplay  # FrameReplay makes its n-step windows itself
    state: TrainState
    best_weights: list
    manager: CheckpointManager
    target: Optional[float]
    writers: tuple
    log: Callable[[str], None]
    on_update: Optional[Callable[[int, float], None]] = None
    start: float = dataclasses.field(default_factory=time.perf_counter)
    cpu_start: float = dataclasses.field(default_factory=time.process_time)
    base_seconds: float = 0.0  # training seconds of earlier sessions (resumed runs)
    base_cpu: float = 0.0
    eval_seconds: float = 0.0  # this session's evaluation time: not training time
    eval_cpu: float = 0.0
    saved_step: int = 0  # the env step of this session's last checkpoint (or of the one it resumed from)

    def elapsed(self) -> tuple[float, float]:
        """Training seconds and CPU seconds so far, all sessions, evaluations excluded."""
        return (self.base_seconds + time.perf_counter() - self.start - self.eval_seconds,
                self.base_cpu + time.process_time() - self.cpu_start - self.eval_cpu)

    def save(self) -> Path:
        self.state.train_seconds, self.state.cpu_seconds = self.elapsed()
        self.saved_step = self.state.global_step
        return save_checkpoint(self.manager, self.agent, self.buffer, self.state, self.cfg, self.best_weights)


def _start(cfg: DQNConfig, run_dir: Path, resume: bool, log: Callable[[str], None]) -> tuple[_Run, object]:
    """Seeding (one block), the env, the agent and its memory; restored from a checkpoint when resuming."""
    runtime.seed_everything(cfg.seed, deterministic=cfg.deterministic)
    env = make_agent_env(cfg.env, seed=cfg.seed, **protocol_kwargs(cfg.env, cfg.train_protocol))  # seeded by its resets
    check_q_learnable(cfg.env, env.observation_space)
    agent = DQNAgent(cfg, env.observation_space, env.action_space)
    obs_shape = tuple(env.observation_space.shape or ())
    # Checked before anything is allocated or written (a failure here leaves no run folder behind).
    if cfg.augment_pad and len(obs_shape) != 3:
        raise ValueError(f"Received an invalid value for argument `augment_pad`: expected 0 for {cfg.env!r} (random "
                         f"shifts move image observations; it has {list(obs_shape)}), got {cfg.augment_pad}")
    check_replay_sizes(cfg.buffer_size, cfg.batch_size, cfg.gradient_steps, cfg.n_step, obs_shape, agent.obs_dtype)
    if len(obs_shape) == 3:  # stacked frames: each frame stored once, n-step windows built when sampled
        buffer = FrameReplay(cfg.buffer_size, obs_shape[:2], obs_shape[2], n=cfg.n_step, gamma=cfg.gamma,
                             seed=cfg.seed + 1)
    else:
        buffer = ReplayBuffer(cfg.buffer_size, obs_shape, obs_dtype=agent.obs_dtype, seed=cfg.seed + 1)
    manager = CheckpointManager(run_dir / "checkpoints", keep=cfg.keep_checkpoints, log=lambda m: log(f"[dqn] {m}"))
    state, best_weights = TrainState(epsilon=cfg.epsilon_start, schedule_timesteps=cfg.total_timesteps), \
        agent.q_net.get_weights()
    if resume:
        path = manager.latest()
        try:
            state, best_weights = load_checkpoint(path, agent, buffer)
        except (KeyError, TypeError, ValueError, OSError) as err:  # verified files from another version or shape
            first = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
            raise ValueError(f"checkpoint {path} does not fit this run's agent ({type(err).__name__}: {first})") \
                from None
        state.schedule_timesteps = state.schedule_timesteps or cfg.total_timesteps
        state.resumed_at.append(state.global_step)
        log(f"[dqn] resumed from {path}: episode {state.episode}, step {state.global_step}, "
            f"epsilon {state.epsilon:.3f}, replay {len(buffer)}")
    files.atomic_write_json(run_dir / "config.json", cfg)  # a resumed run's record changes only after the restore
    window = buffer if isinstance(buffer, FrameReplay) else NStepWindow(buffer, cfg.n_step, cfg.gamma)
    run = _Run(cfg, run_dir, agent, buffer, window, state, best_weights, manager,
               resolve_target_return(cfg, env), runtime.summary_writers(run_dir), log,
               base_seconds=state.train_seconds, base_cpu=state.cpu_seconds, saved_step=state.global_step)
    return run, env


def _evaluate(run: _Run) -> bool:
    """Greedy selection evaluation (:func:`agents.evaluation.screened`: all ``eval_episodes`` only when a
    10-episode screen reaches the target) on the selection seeds ``SELECT_SEED + i``.

    It picks the best weights and stops the run; the reported result is a separate evaluation on
    the report seeds (:func:`run`). Returns whether the target is reached; its time counts as
    evaluation, not training.
    """
    t0, c0 = time.perf_counter(), time.process_time()
    cfg, state, target = run.cfg, run.state, run.target
    result = screened(lambda n: evaluate(run.agent.epsilon_policy(cfg.eval_epsilon, SELECT_SEED), cfg.env, episodes=n,
                                         seed=SELECT_SEED, env_kwargs=protocol_kwargs(cfg.env)),  # Atari: sticky
                      cfg.eval_episodes, target)
    n = len(result.returns)
    state.evals.append([state.global_step, state.episode, result.mean, result.std, n])
    runtime.log_scalars(run.writers[1], state.global_step, {"eval/mean_return": result.mean, "eval/episodes": n})
    if state.best_eval is None or result.mean > state.best_eval:
        state.best_eval, run.best_weights = result.mean, run.agent.q_net.get_weights()
    run.log(f"[dqn] step {state.global_step}: greedy eval mean {result.mean:.1f} +/- {result.std:.1f} over {n} episodes")
    run.eval_seconds += time.perf_counter() - t0
    run.eval_cpu += time.process_time() - c0
    solved = target is not None and n >= cfg.eval_episodes and selection_passes(result.returns, target, cfg.report_episodes)
    if solved and state.solved_step is None:
        state.solved_step, state.solved_seconds = state.global_step, run.elapsed()[0]
    return solved


def _end_episode(run: _Run, episode_return: float, episode_length: int, last_loss: float) -> None:
    state, cfg = run.state, run.cfg
    state.episode += 1
    state.returns.append(episode_return)
    state.lengths.append(episode_length)
    mean_100 = float(np.mean(state.returns[-100:]))
    runtime.log_scalars(run.writers[0], state.global_step, {
        "charts/episodic_return": episode_return, "charts/episodic_length": episode_length,
        "charts/epsilon": state.epsilon, "charts/mean_return_100": mean_100,
        "charts/SPS": state.global_step / max(run.elapsed()[0], 1e-9)})
    if state.episode % 20 == 0:
        run.log(f"[dqn] episode {state.episode} step {state.global_step}: return {episode_return:.1f}, "
                f"mean100 {mean_100:.1f}, epsilon {state.epsilon:.3f}, "
                + (f"loss {last_loss:.4f}" if state.updates else "no update yet"))  # no `loss nan` before the first
    # At an episode's end, so that a resume plays on exactly as the uninterrupted run; by steps: the
    # first episode end after each checkpoint_steps mark.
    by_steps = cfg.checkpoint_steps and state.global_step // cfg.checkpoint_steps > run.saved_step // cfg.checkpoint_steps
    if by_steps or (cfg.checkpoint_every and state.episode % cfg.checkpoint_every == 0):
        run.save()


def _loop(run: _Run, env) -> None:
    """Act, store, learn, update the target, end episodes, evaluate: until the budget or the target."""
    cfg, agent, buffer, state = run.cfg, run.agent, run.buffer, run.state
    obs, _ = env.reset(seed=train_seed(cfg.seed, state.episode))  # (a resumed run: the seed its next episode had)
    episode_return, episode_length, last_loss = 0.0, 0, float("nan")
    while state.global_step < cfg.total_timesteps:
        state.epsilon = epsilon_at(cfg, state.global_step, state.episode, state.schedule_timesteps)
        action = agent.act(obs, state.epsilon)
        next_obs, reward, terminated, truncated, info = env.step(action)
        # A lost life ends the TD chain (Atari training, Nature DQN), not the episode.
        chain_end = terminated or (cfg.life_loss_terminal and bool(info.get("life_lost", False)))
        stored = float(np.clip(reward, -1.0, 1.0)) if cfg.clip_rewards else reward  # returns stay unclipped
        run.window.add(obs, action, stored, next_obs, chain_end, truncated, episode_end=terminated or truncated)
        obs, state.global_step = next_obs, state.global_step + 1
        episode_return, episode_length = episode_return + float(reward), episode_length + 1
        if state.global_step > cfg.learning_starts and state.global_step % cfg.train_frequency == 0:
            losses, q_means = agent.learn(buffer, cfg.batch_size, cfg.gradient_steps)
            for i, loss in enumerate(losses, state.updates + 1) if run.on_update else ():
                run.on_update(i, float(loss))
            state.updates += cfg.gradient_steps
            last_loss = float(losses[-1])
            loss_mean, q_mean = float(losses.mean()), float(q_means.mean())
            state.train_log.append([state.global_step, loss_mean, q_mean])
            if len(state.train_log) % LOG_ROUNDS == 0:  # TensorBoard: the mean of each LOG_ROUNDS rounds
                recent = np.asarray(state.train_log[-LOG_ROUNDS:])  # [LOG_ROUNDS, 3]
                runtime.log_scalars(run.writers[0], state.global_step, {"losses/td_loss": recent[:, 1].mean(),
                                                                         "losses/q_values": recent[:, 2].mean()},
                                    flush=False)  # flushed with the episode's scalars
        if state.global_step % cfg.target_update_interval == 0:
            agent.sync_target()
        if terminated or truncated:
            _end_episode(run, episode_return, episode_length, last_loss)
            # Each episode its own training seed, so a run resumed at an episode's end plays on as
            # the uninterrupted one.
            obs, _ = env.reset(seed=train_seed(cfg.seed, state.episode))
            episode_return, episode_length = 0.0, 0
        if cfg.eval_interval and state.global_step % cfg.eval_interval == 0 and state.global_step > cfg.learning_starts:
            if _evaluate(run) and cfg.early_stop:
                run.log(f"[dqn] solved: greedy mean >= {run.target:g} at step {state.global_step}")
                return


def train(cfg: DQNConfig, run_dir, resume: bool = False, log: Callable[[str], None] = print,
          on_update: Optional[Callable[[int, float], None]] = None) -> tuple[DQNAgent, TrainState]:
    """Train (or resume) a DQN agent; checkpoints and TensorBoard logs go to ``run_dir``.

    Args:
        cfg: the config.
        run_dir: the run directory (created if needed).
        resume: continue from the newest checkpoint in ``run_dir`` that verifies.
        log: where progress lines go.
        on_update: called with ``(update_index, loss)`` for every gradient step, after its training
            round (tests record losses with it, or raise ``KeyboardInterrupt`` to simulate Ctrl-C).

    Returns:
        ``(agent, state)``; the agent holds the final weights, or with ``keep_best`` the best evaluated
        ones when the target was not reached.
    """
    cfglib.validate(cfg)
    run_dir = Path(run_dir)
    run, env = _start(cfg, run_dir, resume, log)  # a resumed folder is not touched before its checkpoint loads
    (run_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
    run.on_update = on_update
    with save_on_interrupt(run.save, f"kcourse run dqn --resume {run_dir}", log=lambda m: log(f"[dqn] {m}")):
        _loop(run, env)
    state = run.state
    if state.solved_step is None:
        if not state.evals or state.evals[-1][0] != state.global_step:
            _evaluate(run)
        if cfg.keep_best and state.best_eval is not None:  # the best evaluated weights (HOML keeps best_weights)
            run.agent.q_net.set_weights(run.best_weights)
            run.agent.weights_changed()
    run.save()
    env.close()
    return run.agent, state


# ----------------------------------------------------------------------------------------------
# Artifacts and the exercise
# ----------------------------------------------------------------------------------------------


def write_returns_csv(state: TrainState, path) -> Path:
    """``episode, return, length, mean_100`` per episode."""
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["episode", "return", "length", "mean_100"])
        for i, (ret, length, mean) in enumerate(zip(state.returns, state.lengths, moving_mean(state.returns)), 1):
            writer.writerow([i, ret, length, round(float(mean), 3)])
    return Path(path)


def selection_mean(state: TrainState) -> Optional[float]:
    """The selection evaluation behind the weights a run ends with: the one that solved it, else the best."""
    if state.solved_step is None:
        return state.best_eval
    return next((float(e[2]) for e in state.evals if e[0] == state.solved_step), None)


def run(cfg: DQNConfig, run_dir: Path, resume: bool = False) -> dict:
    """``kcourse run dqn``: train, evaluate greedily, write the learning curve, GIF, saved policy and metrics.

    The reported result (``eval_mean``, ``reached``, the headline) is one greedy evaluation of
    ``cfg.report_episodes`` episodes (100) on the report seeds, played once after
    training; the selection evaluations that stopped the run and picked its weights are reported
    apart (``select_mean``). A run whose report misses the target is "missed" even when a
    selection evaluation passed.
    """
    run_dir = Path(run_dir)
    env_id = resolve_env_id(cfg.env)
    agent, state = train(cfg, run_dir, resume=resume)
    probe = make_env(env_id)
    target = resolve_target_return(cfg, probe)
    probe.close()
    # Atari: the report under each protocol (sticky first: the headline), each on the same report seeds.
    protocols = tuple(PROTOCOLS) if is_atari(env_id) else (None,)
    reports = {protocol: evaluate(agent.epsilon_policy(cfg.eval_epsilon, REPORT_SEED), env_id,
                                  episodes=cfg.report_episodes, seed=REPORT_SEED,
                                  env_kwargs=protocol_kwargs(env_id, protocol))
               for protocol in protocols}
    final = reports[protocols[0]]
    reached = None if target is None else final.mean >= target  # None: no target ("n/a" in the report)
    evals = np.asarray(state.evals, dtype=float).reshape(-1, 5)
    plot_learning_curve(run_dir / "learning_curve.png", f"{env_id} {cfg.variant} (seed {cfg.seed})",
                        returns=state.returns, points={"greedy evaluation mean": (evals[:, 1], evals[:, 2])},
                        target=target)
    write_returns_csv(state, run_dir / "returns.csv")
    artifacts = ["learning_curve.png", "returns.csv"]
    if cfg.gif:
        render.record_gif(agent.greedy_policy, env_id, run_dir / "agent.gif", seed=REPORT_SEED)
        artifacts.append("agent.gif")
    policy_files.save_policy(run_dir / "policy", agent.q_net, env_id, config=cfg, evaluation=final,
                             extra={"algorithm": f"keras-{cfg.variant}", "env_steps": state.global_step,
                                    "eval_epsilon": cfg.eval_epsilon, "train_seconds": state.train_seconds,
                                    "protocol": protocols[0],
                                    **atari_policy_extra(env_id)})
    artifacts.append("policy")
    sps = state.global_step / max(state.train_seconds, 1e-9)
    select_mean = selection_mean(state)
    report = f"report {len(final.returns)}-episode mean {final.mean:.1f}"
    if protocols[0] is not None:
        report += "".join(f"{', ' if i else ' ('}{p} protocol{'' if i else ' (the headline)'}: "
                          f"{r.mean:.2f} over {r.distinct_phrase}"
                          for i, (p, r) in enumerate(reports.items())) + ")"
    if target is None:
        verdict = "no target"
    else:
        verdict = f">= {target:g}" if reached else f"< {target:g}, missed by {target - final.mean:.1f}"
    if state.solved_step is not None:
        selection = f"selection passed at {state.solved_step:,} env steps ({state.solved_seconds:.0f}s)"
    else:
        best = "none" if select_mean is None else f"{select_mean:.1f}"
        selection = f"selection never passed, best {best}"
    final_weights = not (cfg.keep_best and state.solved_step is None and state.best_eval is not None)  # as train()
    resumed = f"; resumed at env steps {', '.join(f'{s:,}' for s in state.resumed_at)}" if state.resumed_at else ""
    headline = (f"{cfg.variant}: {report} ({verdict}); {selection}; {state.global_step:,} env steps, "
                f"{sps:.0f} steps/s; {'final' if final_weights else 'best evaluated'} weights{resumed}")
    metrics = {"variant": cfg.variant, "env_steps": state.global_step, "episodes": state.episode,
               "updates": state.updates, "solved_step": state.solved_step, "solved_seconds": state.solved_seconds,
               "train_seconds": state.train_seconds, "train_cpu_seconds": state.cpu_seconds, "steps_per_second": sps,
               "eval_mean": final.mean, "eval_std": final.std, "eval_min": final.min,
               "report_episodes": len(final.returns), "report_seeds": seed_span(final),
               "select_mean": select_mean, "select_seed": SELECT_SEED, "best_eval": state.best_eval,
               "mean_return_100": float(np.mean(state.returns[-100:])) if state.returns else None,
               "protocol": protocols[0], "distinct_outcomes": final.distinct, "resumed_at": state.resumed_at,
               "final_weights": final_weights}
    if protocols[0] is not None:
        metrics["reports"] = {p: {"mean": r.mean, "std": r.std, "min": r.min, "max": r.max, "episodes": len(r.returns),
                                  "distinct_outcomes": r.distinct, "returns": r.returns, "lengths": r.lengths}
                              for p, r in reports.items()}
    return {"headline": headline, "metrics": metrics, "artifacts": artifacts, "reached": reached}
