"""The TF-Agents pieces of ``tfa-dqn``: environments, QNetwork, DqnAgent, replay buffer, metrics, drivers.

:func:`build` makes them from a :class:`~agents.tfa.config.TfaDqnConfig` (HOML's settings for
Breakout); :func:`greedy_policy` turns the agent's policy into the batched NumPy policy that
:func:`agents.evaluation.evaluate` plays; :func:`export_policy` writes the ``PolicySaver``
SavedModel with its ``policy.json``. ``benchmarks/tfa_breakout.py`` times the same components.
"""
from __future__ import annotations

import dataclasses
import functools
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf
from tf_agents.agents.dqn import dqn_agent
from tf_agents.drivers import dynamic_step_driver
from tf_agents.environments import (
    batched_py_environment,
    parallel_py_environment,
    tf_py_environment,
)
from tf_agents.metrics import tf_metrics
from tf_agents.networks import q_network
from tf_agents.policies import policy_saver
from tf_agents.replay_buffers import tf_uniform_replay_buffer
from tf_agents.system import system_multiprocessing
from tf_agents.trajectories import policy_step, trajectory
from tf_agents.trajectories import time_step as ts
from tf_agents.utils import common

from agents import evaluation, policy_files
from agents.atari import FRAME_STACK, atari_policy_extra, make_agent_env
from agents.configs import BREAKOUT_CONV_LAYERS, TfaDqnConfig
from agents.tfa.envs import make_py_env
from agents.tfa.networks import AtariQNetwork
from keras_impl import files
from keras_impl.checkpoints import write_manifest

# TF-Agents' own warnings and deprecation log lines are filtered by the command line and the notebooks
# (keras_impl.process.install_noise_filters), not by importing this module.



def make_collect_env(p: TfaDqnConfig) -> tf_py_environment.TFPyEnvironment:
    """The collect environment: one env, or ``num_envs`` batched in-process or in subprocesses."""
    ctor = functools.partial(make_py_env, p.env_id, **p.env_kwargs)
    if p.num_envs == 1:
        return tf_py_environment.TFPyEnvironment(ctor(seed=p.seed))
    ctors = [functools.partial(ctor, seed=p.seed + i) for i in range(p.num_envs)]
    if p.parallel:
        system_multiprocessing.enable_interactive_mode()  # we are not under tf_agents' own main()
        py_env = parallel_py_environment.ParallelPyEnvironment(ctors, start_serially=False)
    else:
        py_env = batched_py_environment.BatchedPyEnvironment([c() for c in ctors])
    return tf_py_environment.TFPyEnvironment(py_env)


def make_q_network(p: TfaDqnConfig, env):
    """HOML's QNetworks: conv for Breakout (uint8 frames scaled in the net), one-hot for FrozenLake."""
    observation_spec, action_spec = env.observation_spec(), env.action_spec()
    if p.atari and (p.dueling or p.augment_pad):  # the data-efficient preset
        return AtariQNetwork(observation_spec, action_spec, BREAKOUT_CONV_LAYERS, fc_units=p.fc_layers[-1],
                             dueling=p.dueling, augment_pad=p.augment_pad, seed=p.seed)
    if p.atari:
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


def make_optimizer(p: TfaDqnConfig):
    if p.optimizer == "rmsprop":  # HOML's Breakout settings (DeepMind's centered RMSProp)
        return tf.keras.optimizers.RMSprop(learning_rate=p.learning_rate, rho=0.95, momentum=0.0,
                                           epsilon=1e-5, centered=True)
    return tf.keras.optimizers.Adam(learning_rate=p.learning_rate, epsilon=p.adam_epsilon)


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
    add_to_replay: Any  # the replay observer: add_batch, of the newest frame only for Breakout
    frame_stack: int = 0  # Breakout: frames per observation, rebuilt when sampling (0: whole observations)
    clip_rewards: bool = False  # Atari: the agent learns from rewards clipped to [-1, 1] (returns stay unclipped)


def build(p: TfaDqnConfig) -> Components:
    """Environments, QNetwork, DqnAgent (HOML's settings), replay buffer, metrics and collect driver."""
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
        gamma=p.gamma, n_step_update=p.n_step_update, train_step_counter=train_step,
        epsilon_greedy=lambda: epsilon_fn(train_step))
    agent.initialize()
    frame_stack = FRAME_STACK if p.atari else 0
    replay_buffer, add_to_replay = make_replay(agent.collect_data_spec, tf_env.batch_size,
                                               max(2, p.replay_capacity // tf_env.batch_size), frame_stack)
    train_metrics = [
        tf_metrics.NumberOfEpisodes(),
        tf_metrics.EnvironmentSteps(),
        tf_metrics.AverageReturnMetric(batch_size=tf_env.batch_size),
        tf_metrics.AverageEpisodeLengthMetric(batch_size=tf_env.batch_size),
    ]
    collect_driver = dynamic_step_driver.DynamicStepDriver(
        tf_env, agent.collect_policy, observers=[add_to_replay] + train_metrics, num_steps=p.collect_steps)
    return Components(tf_env, agent, replay_buffer, train_metrics, collect_driver, train_step, epsilon_fn,
                      add_to_replay, frame_stack, p.clip_rewards)


# ----------------------------------------------------------------------------------------------
# Replay: Breakout's frames stored once, stacks rebuilt when sampling
# ----------------------------------------------------------------------------------------------


def make_replay(data_spec, batch_size: int, max_length: int, frame_stack: int = 0):
    """A ``TFUniformReplayBuffer`` and its observer; with ``frame_stack``, it keeps each step's newest frame only.

    A stacked Breakout observation ``[84, 84, 4]`` shares 3 frames with the next step's, so the
    buffer stores ``observation[..., -1]`` (``[84, 84]`` uint8, 7 KB a step: 0.7 GB for 100,000
    steps instead of 2.8 GB) and :func:`n_step_transition` rebuilds the stacks it needs from the steps before
    (Dopamine's replay does the same; TF-Agents' buffers store whole observations). The agent, its
    policies and the environment still see ``[84, 84, 4]``.
    """
    if frame_stack:
        frame = data_spec.observation
        data_spec = data_spec._replace(observation=tf.TensorSpec(frame.shape[:-1], frame.dtype, name="frame"))
    buffer = tf_uniform_replay_buffer.TFUniformReplayBuffer(data_spec=data_spec, batch_size=batch_size,
                                                            max_length=max_length)
    if not frame_stack:
        return buffer, buffer.add_batch
    return buffer, lambda traj: buffer.add_batch(traj._replace(observation=traj.observation[..., -1]))


def stack_rows(step_type: tf.Tensor, index: tf.Tensor, stack: int) -> tf.Tensor:
    """``[B, W]`` step types and ``[B]`` window positions -> ``[B, stack]``: the positions of the frames
    of each state's observation, oldest first (``index >= stack - 1``).

    A ``FIRST`` step repeats its frame to the left, as ``FrameStackObservation`` pads a reset with
    the reset frame, so a stack never reaches into the episode before (or into the mid-episode
    end of a restored buffer: a resumed run's fresh env starts with ``FIRST``).
    """
    cols = [index - (stack - 1 - k) for k in range(stack)]  # stack x [B]
    first = tf.equal(step_type, ts.StepType.FIRST)  # [B, W]
    for k in range(stack - 2, -1, -1):  # right to left: a start's frame fills every slot left of it
        cols[k] = tf.where(tf.gather(first, cols[k + 1], batch_dims=1), cols[k + 1], cols[k])
    return tf.stack(cols, axis=1)


def stack_frames(frames: tf.Tensor, step_type: tf.Tensor, index: tf.Tensor, stack: int) -> tf.Tensor:
    """Frames ``[B, W, H, W']`` of sampled windows -> the observations ``[B, H, W', stack]`` at positions ``index``."""
    return tf.transpose(tf.gather(frames, stack_rows(step_type, index, stack), batch_dims=1), [0, 2, 3, 1])


SAMPLING_CALLS = 3  # parallel sampling calls and prefetched batches of the fast (not deterministic) mode


def sample_windows(c: Components, steps: int, batch_size: int, parallel: bool = True) -> tf.data.Dataset:
    """``(experience, info)`` batches of ``steps`` consecutive steps, plus ``frame_stack - 1`` steps before
    them when frames are stored once (:func:`n_step_transition` stacks the observations it needs).

    ``parallel=True`` (``deterministic = false``): :data:`SAMPLING_CALLS` sampling calls in parallel
    and as many batches prefetched. Faster, but not reproducible: the calls draw their random rows
    in the order the threads happen to run, and a prefetched batch may be drawn before or after the
    newest collected steps reach the buffer.

    ``parallel=False`` (the default run, ``deterministic = true``): one sampling call at a time, made
    when the training loop asks for a batch, with tf.data's own prefetch injection turned off, so a
    batch is a function of the seed and of the buffer at that moment.
    """
    lead = max(c.frame_stack - 1, 0)
    data = c.replay_buffer.as_dataset(sample_batch_size=batch_size, num_steps=steps + lead,
                                      num_parallel_calls=SAMPLING_CALLS if parallel else None)
    if parallel:
        return data.prefetch(SAMPLING_CALLS)
    options = tf.data.Options()
    options.deterministic = True
    # tf.data would otherwise add a prefetch (a background thread) after this synchronous map
    options.experimental_optimization.inject_prefetch = False
    options.experimental_optimization.map_parallelization = False
    return data.with_options(options)


def n_step_transition(experience: trajectory.Trajectory, gamma: float,
                      frame_stack: int = 0) -> tuple[trajectory.Transition, tf.Tensor]:
    """The n-step transition of each sampled window of ``n + 1`` frames, cut at its episode's end; and its weight.

    Frame ``k`` of a window ends an episode when it is LAST (a termination or a time limit) or when
    frame ``k + 1`` is FIRST (also where a resumed run's fresh env follows the restored buffer's
    mid-episode frame). With ``c`` the first end among frames ``1 .. n - 1`` (``c = n`` when there is
    none), rewards ``r_j`` and discounts ``d_j`` of the steps from frame ``j`` to ``j + 1``::

        reward           = sum_{j < c} gamma^j * d_0 * ... * d_{j-1} * r_j
        discount         = gamma^(c-1) * d_0 * ... * d_{c-1}    (DqnAgent multiplies it by gamma once more)
        next observation = observation[c]

    which is TF-Agents' ``to_n_step_transition`` of the window's first ``c + 1`` frames. A window
    whose frame 0 ends an episode gets weight 0 (its next observation is not in the window);
    every other window weight 1.

    Hand-written because TF-Agents' ``DqnAgent`` converts the whole window and masks only a LAST
    frame 0: across a time limit (discount 1) it summed the next episode's rewards and bootstrapped
    from the next episode's state. Across a termination (discount 0) its numbers were already right
    and stay the same here.

    With ``frame_stack`` (Breakout's replay of single frames), the window starts ``frame_stack - 1``
    steps earlier and its observations are frames: the two observations a transition needs, at
    frame 0 and frame ``c``, are stacked from them (:func:`stack_frames`), and no others.
    """
    lead = max(frame_stack - 1, 0)
    frames, window_step_type = experience.observation, experience.step_type
    experience = experience._replace(observation=())
    if lead:  # the frames before the transition's first step only feed its stack
        experience = tf.nest.map_structure(lambda t: t[:, lead:], experience)
    n = int(experience.step_type.shape[1]) - 1
    ends = tf.logical_or(tf.equal(experience.step_type[:, :n], ts.StepType.LAST),
                         tf.equal(experience.step_type[:, 1:], ts.StepType.FIRST))  # [B, n]: frame k ends an episode
    horizon = tf.fill(tf.shape(ends[:, :1]), n)  # [B, 1]
    frame = tf.broadcast_to(tf.range(1, n + 1)[None], tf.shape(ends))  # [B, n]: 1 .. n
    cut = tf.reduce_min(tf.concat([tf.where(ends[:, 1:], frame[:, :-1], n), horizon], axis=1), axis=1)  # [B]
    rewards, discounts = experience.reward[:, :n], experience.discount[:, :n]  # [B, n]
    before = tf.math.cumprod(gamma * discounts, axis=1, exclusive=True)  # gamma^j d_0 ... d_{j-1}
    kept = tf.cast(frame <= cut[:, None], rewards.dtype)  # steps j < c (frame j + 1 <= c)
    reward = tf.reduce_sum(kept * before * rewards, axis=1)  # [B]
    discount = (tf.pow(tf.cast(gamma, discounts.dtype), tf.cast(cut - 1, discounts.dtype))
                * tf.gather(tf.math.cumprod(discounts, axis=1), cut - 1, batch_dims=1))  # [B]

    def at(index):
        return lambda t: tf.gather(t, index, batch_dims=1)

    def observe(index):
        if frame_stack:
            return stack_frames(frames, window_step_type, index + lead, frame_stack)
        return tf.nest.map_structure(at(index), frames)

    zeros = tf.zeros_like(cut)
    first = tf.nest.map_structure(at(zeros), experience)
    transition = trajectory.Transition(
        time_step=ts.TimeStep(first.step_type, reward=np.nan * tf.ones_like(first.reward),
                              discount=np.nan * tf.ones_like(first.discount), observation=observe(zeros)),
        action_step=policy_step.PolicyStep(action=first.action, state=(), info=first.policy_info),
        next_time_step=ts.TimeStep(at(cut)(experience.step_type), reward=reward, discount=discount,
                                   observation=observe(cut)))
    return transition, 1.0 - tf.cast(ends[:, 0], tf.float32)


def train_on_window(c: Components, gamma: float):
    """``train(experience) -> LossInfo``: one agent update on a sampled batch of windows (their n-step
    transitions, :func:`n_step_transition`); what the training loop and the benchmarks call. With
    ``c.clip_rewards`` the rewards are clipped to [-1, 1] here, where they are learned from: the
    buffer, the metrics and the reported returns keep the game's score."""
    def train(experience):
        if c.clip_rewards:
            experience = experience._replace(reward=tf.clip_by_value(experience.reward, -1.0, 1.0))
        transition, weights = n_step_transition(experience, gamma, c.frame_stack)
        return c.agent.train(transition, weights=weights)

    return train


def greedy_policy(tf_policy) -> evaluation.Policy:
    """A TF-Agents policy as a batched NumPy policy ``[N, *obs] -> [N]`` (one compiled call per batch)."""
    obs_spec = tf_policy.time_step_spec.observation
    obs_dtype = obs_spec.dtype

    # One trace for every batch size: a lockstep evaluation's batch shrinks as episodes end.
    @tf.function(input_signature=[tf.TensorSpec([None, *obs_spec.shape], obs_dtype)])
    def act(obs):
        n = tf.shape(obs)[0]
        time_step = ts.TimeStep(step_type=tf.fill([n], ts.StepType.MID), reward=tf.zeros([n]),
                                discount=tf.ones([n]), observation=obs)
        return tf_policy.action(time_step).action  # [N]

    return lambda obs_batch: act(tf.convert_to_tensor(np.asarray(obs_batch), dtype=obs_dtype)).numpy()


def env_factory(p: TfaDqnConfig):
    """Atari games are played through their preprocessing wrappers; other envs through ``make_env``."""
    return functools.partial(make_agent_env, p.env_id) if p.atari else None


def n_actions(action_spec) -> int:
    """The number of discrete actions of a TF-Agents action spec (actions ``minimum..maximum``)."""
    return int(action_spec.maximum) - int(action_spec.minimum) + 1


def evaluate_policy(policy: evaluation.Policy, p: TfaDqnConfig, episodes: int, seed: int, actions: int,
                    protocol: str | None = None) -> evaluation.EvalResult:
    """Evaluation with :func:`agents.evaluation.evaluate` (episodes in lockstep, one call per step): greedy,
    or with ``p.eval_epsilon`` random actions among ``actions`` (Atari); an Atari game under ``protocol``
    (default: the training env's, sticky)."""
    env_kwargs = {**p.env_kwargs, "protocol": protocol} if protocol else p.env_kwargs
    factory = env_factory(p)
    policy = evaluation.epsilon_greedy(policy, actions, p.eval_epsilon, seed)
    return evaluation.evaluate(policy, p.env_id, episodes=episodes, seed=seed, env_kwargs=env_kwargs,
                               max_steps=p.eval_max_steps or None, env_factory=factory)


def export_policy(agent, train_step, p: TfaDqnConfig, folder: Path, result: evaluation.EvalResult | None) -> Path:
    """``PolicySaver`` export of the greedy policy with ``policy.json`` and a manifest, atomically."""
    extra = {"train_step": int(train_step.numpy()), "framework": "tf-agents 0.19 PolicySaver",
             "eval_epsilon": p.eval_epsilon}
    extra.update(atari_policy_extra(p.env_id))
    env_kwargs = dict(p.env_kwargs)
    if "protocol" in env_kwargs:  # how it was evaluated, not part of the env: an evaluation picks its own
        extra["protocol"] = env_kwargs.pop("protocol")
    meta = policy_files.policy_metadata(policy_files.TFA_KIND, p.env_id, env_kwargs, config=p,
                                        evaluation=result, extra=extra)
    saver = policy_saver.PolicySaver(agent.policy, batch_size=None, train_step=train_step)
    with files.atomic_directory(folder) as tmp:
        saver.save(str(tmp))
        policy_files.write_metadata(tmp, meta)
        write_manifest(tmp, exclude=(policy_files.POLICY_FILE,))
    return folder
