"""``kcourse run tfa-dqn``: config resolution, the real CLI (quick), resume, the exported policy.

Default tier: one quick CartPole run through the CLI (shared by the round-trip, resume and
determinism tests), quick FrozenLake runs of one seed twice, one quick Breakout smoke run. ``slow``:
the learning thresholds (CartPole >= 475 over 100 episodes, FrozenLake 4x4 success 1.0 not
slippery / >= 0.70 slippery).
"""
import dataclasses
import importlib.util
import json
import shutil
import subprocess
import sys
import textwrap

import pytest

from agents.configs import TfaDqnConfig
from keras_impl.config import resolve

needs_ale = pytest.mark.skipif(importlib.util.find_spec("ale_py") is None, reason="needs ale-py")
QUICK_CARTPOLE = resolve(TfaDqnConfig, quick=True)
QUICK_BREAKOUT_INITIAL_COLLECT = 200


def _op_determinism_config():
    """TensorFlow's determinism switch, or None while TensorFlow is not imported (then it is off)."""
    if "tensorflow" not in sys.modules:
        return None
    from tensorflow.python.framework import config as tf_config  # the switch has no public way off

    return tf_config


@pytest.fixture(autouse=True)
def _op_determinism_as_before():
    """A run in this process sets TensorFlow's op determinism (deterministic = true turns it on): each
    test leaves it as it found it, for the tests of other modules that run after it."""
    config = _op_determinism_config()
    before = bool(config and config.is_op_determinism_enabled())
    yield
    config = _op_determinism_config()
    if config and config.is_op_determinism_enabled() != before:
        (config.enable_op_determinism if before else config.disable_op_determinism)()


# ----------------------------------------------------------------------------------------------
# Config resolution (no TensorFlow)
# ----------------------------------------------------------------------------------------------


def test_breakout_preset_is_homl():
    p = resolve(TfaDqnConfig, {"env": "breakout"})
    assert p.env_id == "ALE/Breakout-v5" and p.atari
    # HOML's Breakout numbers
    assert (p.learning_rate, p.optimizer, p.gamma, p.target_update_period, p.collect_steps) == \
        (2.5e-4, "rmsprop", 0.99, 2000, 4)
    assert (p.epsilon_start, p.epsilon_end, p.epsilon_decay_steps) == (1.0, 0.01, 250_000)
    assert p.epsilon_decay_updates == 62_500  # 250,000 agent steps / 4 steps per update
    assert p.fc_layers == (512,)
    # 250,000 agent steps, a 10-episode greedy evaluation every 25,000 (issue: Breakout learns on 2 CPUs)
    assert (p.iterations * p.collect_steps, p.eval_interval * p.collect_steps, p.eval_episodes) == (250_000, 25_000, 10)


def test_typed_values_beat_quick_values_beat_the_preset():
    p = resolve(TfaDqnConfig, {"batch_size": 7}, quick=True)
    assert p.iterations == 4 and p.batch_size == 7 and p.learning_rate == TfaDqnConfig().learning_rate


def test_resume_keeps_the_saved_run_and_applies_new_typed_values():
    saved = dataclasses.asdict(resolve(TfaDqnConfig, {"env": "frozenlake", "slippery": True, "seed": 3}, quick=True))
    p = resolve(TfaDqnConfig, {"iterations": 900}, resumed=saved)  # `--resume DIR --iterations 900`
    assert (p.env, p.slippery, p.seed, p.iterations, p.eval_interval) == ("frozenlake", True, 3, 900, 300)
    assert p.env_kwargs == {"is_slippery": True}


def test_resume_refuses_another_env():
    saved = dataclasses.asdict(resolve(TfaDqnConfig, {"env": "cartpole"}))
    with pytest.raises(ValueError, match="`env`: 'frozenlake', but the run being resumed trained with 'cartpole'"):
        resolve(TfaDqnConfig, {"env": "frozenlake"}, resumed=saved)


@pytest.mark.parametrize("field,value", [("iterations", 0), ("gamma", 1.5), ("batch_size", -1),
                                         ("target_update_tau", 0.0)])
def test_bad_values_name_the_argument(field, value):
    with pytest.raises(ValueError, match=f"argument `{field}`"):
        resolve(TfaDqnConfig, {field: value})


def test_breakout_without_ale_py_is_a_clear_value_error(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "ale_py" else real(name, *a))
    with pytest.raises(ValueError, match="needs ale-py.*kcourse\\[atari\\]"):
        resolve(TfaDqnConfig, {"env": "breakout"})


def test_cli_reports_a_bad_value_in_one_line(tmp_path, capsys):
    from kcourse import cli

    code = cli.main(["run", "tfa-dqn", "--quick", "--iterations", "0", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2
    assert "kcourse: error:" in err and "`iterations`" in err


# ----------------------------------------------------------------------------------------------
# n-step transitions cut at episode ends (hand-made trajectories, gamma 0.5)
# ----------------------------------------------------------------------------------------------

F, M, L = 0, 1, 2  # StepType FIRST, MID, LAST


def _windows(step_types, observations, rewards, discounts, n=3):
    """Every window of ``n + 1`` consecutive frames of one stored stream, as a sampled batch ``[B, n + 1]``.

    Frame ``k`` holds ``step_type[k]``, ``observation[k]``, and the reward and discount of the
    step from frame ``k`` to ``k + 1`` (a LAST -> FIRST boundary step: reward 0, discount 1).
    """
    import numpy as np
    import tensorflow as tf
    from tf_agents.trajectories import trajectory

    starts = range(len(step_types) - n)

    def stack(values, dtype):
        return tf.constant(np.array([values[i: i + n + 1] for i in starts], dtype=dtype))

    step_type = stack(step_types, np.int32)
    return trajectory.Trajectory(step_type=step_type, observation=stack(observations, np.float32),
                                 action=tf.zeros_like(step_type, dtype=tf.int64), policy_info=(),
                                 next_step_type=tf.concat([step_type[:, 1:], step_type[:, -1:]], axis=1),
                                 reward=stack(rewards, np.float32), discount=stack(discounts, np.float32))


def _n_step(experience):
    from agents.tfa.components import n_step_transition

    transition, weights = n_step_transition(experience, gamma=0.5)
    nxt = transition.next_time_step
    return (nxt.reward.numpy().tolist(), nxt.discount.numpy().tolist(), nxt.observation.numpy().tolist(),
            weights.numpy().tolist())


def test_n_step_window_is_cut_at_a_time_limit():
    # Episode: s0 -> s1 -> s2, truncated at s2 (LAST, discount 1); then the next episode s3, s4, s5.
    # Rewards: 1 (s0->s1), 2 (s1->s2), 0 (the LAST -> FIRST boundary), 4 (s3->s4), 8 (s4->s5).
    reward, discount, obs, weight = _n_step(_windows([F, M, L, F, M, M], [0, 1, 2, 3, 4, 5],
                                                     [1, 2, 0, 4, 8, 0], [1, 1, 1, 1, 1, 1]))
    # window s0..s3: cut at s2 -> reward 1 + 0.5*2 = 2, discount 0.5^1 = 0.5 (DqnAgent: target 2 + 0.25 Q(s2))
    #   (TF-Agents alone: 1 + 0.5*2 + 0.25*0 = 2 with discount 0.25 and Q of the NEXT episode's s3)
    # window s1..s4: cut at s2 -> reward 2, discount 0.5^0 = 1 (target 2 + 0.5 Q(s2))
    #   (TF-Agents alone: 2 + 0.5*0 + 0.25*4 = 3 and Q(s4): the next episode's reward and state)
    # window s2..s5: starts at the LAST frame -> weight 0
    assert reward[:2] == [2.0, 2.0] and discount[:2] == [0.5, 1.0] and obs[:2] == [2.0, 2.0]
    assert weight == [1.0, 1.0, 0.0]


def test_n_step_window_across_a_termination_keeps_tf_agents_numbers():
    # s0 -> s1 -> s2 terminated (the step s1->s2 has discount 0); next episode s3, s4, s5.
    experience = _windows([F, M, L, F, M, M], [0, 1, 2, 3, 4, 5], [1, 1, 0, 1, 1, 0], [1, 0, 1, 1, 1, 1])
    reward, discount, obs, weight = _n_step(experience)
    # window s0..s3: reward 1 + 0.5*1 = 1.5, discount 0.5 * 1 * 0 = 0 (target 1.5, no bootstrap)
    # window s1..s4: reward 1, discount 0 (target 1)
    assert reward[:2] == [1.5, 1.0] and discount[:2] == [0.0, 0.0] and obs[:2] == [2.0, 2.0]
    assert weight == [1.0, 1.0, 0.0]
    from tf_agents.trajectories import trajectory  # TF-Agents' own conversion gives the same reward and discount

    theirs = trajectory.to_n_step_transition(experience, gamma=0.5).next_time_step
    assert theirs.reward.numpy().tolist()[:2] == reward[:2] and theirs.discount.numpy().tolist()[:2] == discount[:2]


def test_n_step_window_is_cut_where_a_resumed_run_starts_a_new_episode():
    # The restored buffer ends mid-episode at s1 (its next state was never stored); the resumed
    # run's fresh env starts at s2 (FIRST) after it. Rewards 1, 1 (s1 -> ?, unknown next state), 2, 2.
    reward, discount, obs, weight = _n_step(_windows([M, M, F, M, M], [0, 1, 2, 3, 4], [1, 1, 2, 2, 0],
                                                     [1, 1, 1, 1, 1]))
    # window s0..s3: cut at s1 (s2 is FIRST) -> reward 1, discount 1 (target 1 + 0.5 Q(s1))
    # window s1..s4: s1's next state is not in the buffer -> weight 0
    assert reward[0] == 1.0 and discount[0] == 1.0 and obs[0] == 1.0
    assert weight == [1.0, 0.0]


def test_n_step_window_without_an_end_equals_tf_agents():
    from tf_agents.trajectories import trajectory

    experience = _windows([F, M, M, M, M], [0, 1, 2, 3, 4], [1, 2, 4, 8, 0], [1, 1, 1, 1, 1])
    reward, discount, obs, weight = _n_step(experience)
    # window s0..s3: 1 + 0.5*2 + 0.25*4 = 3, discount 0.25; window s1..s4: 2 + 0.5*4 + 0.25*8 = 6
    assert reward == [3.0, 6.0] and discount == [0.25, 0.25] and obs == [3.0, 4.0] and weight == [1.0, 1.0]
    theirs = trajectory.to_n_step_transition(experience, gamma=0.5).next_time_step
    assert theirs.reward.numpy().tolist() == reward and theirs.observation.numpy().tolist() == obs


def test_stack_rows_repeat_an_episode_start_to_the_left():
    import tensorflow as tf

    from agents.tfa.components import stack_rows

    def rows(step_types, positions):
        return stack_rows(tf.constant([step_types] * len(positions)), tf.constant(positions), 4).numpy().tolist()

    # A window of 6 stored steps; step 2 is an episode's FIRST. Stacks of 4, for steps 3, 4, 5:
    #   step 3: frames of steps 0 1 2 3 -> 0 and 1 are the previous episode's -> 2 2 2 3
    #   step 4: frames 1 2 3 4 -> 2 2 3 4
    #   step 5: frames 2 3 4 5 (the stack starts at the FIRST step: unchanged)
    assert rows([M, L, F, M, M, M], [3, 4, 5]) == [[2, 2, 2, 3], [2, 2, 3, 4], [2, 3, 4, 5]]
    # Two starts inside one stack (FIRST at 0 and 2): the newest counts. Step 3: 2 2 2 3; step 4: 2 2 3 4.
    assert rows([F, L, F, M, M], [3, 4]) == [[2, 2, 2, 3], [2, 2, 3, 4]]
    # A FIRST step's own stack is its frame four times (the env's reset observation).
    assert rows([M, M, L, F], [3]) == [[3, 3, 3, 3]]


@pytest.fixture(scope="module")
def breakout_stream():
    """83 stored steps of random Breakout play (25-step episodes: truncations and resets), twice:
    whole ``[84, 84, 4]`` observations, and Breakout's replay of the newest frame only."""
    pytest.importorskip("ale_py")
    from tf_agents.drivers import dynamic_step_driver
    from tf_agents.environments import tf_py_environment
    from tf_agents.policies import random_tf_policy

    from agents.atari import FRAME_STACK
    from agents.tfa.components import make_replay
    from agents.tfa.envs import make_py_env

    env = tf_py_environment.TFPyEnvironment(make_py_env("breakout", seed=3, max_episode_steps=25))
    policy = random_tf_policy.RandomTFPolicy(env.time_step_spec(), env.action_spec())
    whole, add_whole = make_replay(policy.trajectory_spec, 1, 200)
    frames, add_frames = make_replay(policy.trajectory_spec, 1, 200, FRAME_STACK)
    # eager: compiled, this two-buffer driver hung in TFPyEnvironment's py_function (the pipeline's one-buffer
    # compiled driver does not: test_breakout_quick_smoke_run)
    dynamic_step_driver.DynamicStepDriver(env, policy, observers=[add_whole, add_frames], num_steps=80).run()
    return whole.gather_all(), frames.gather_all()  # [1, T, ...]: the LAST -> FIRST steps are rows too


def test_frame_once_replay_rebuilds_the_observations_the_agent_saw(breakout_stream):
    import tensorflow as tf

    from agents.atari import FRAME_STACK
    from agents.tfa.components import stack_frames

    expected, stored = breakout_stream
    steps = int(stored.step_type.shape[1])
    assert stored.observation.shape[2:] == (84, 84) and expected.observation.shape[2:] == (84, 84, 4)
    assert int(tf.reduce_sum(tf.cast(tf.equal(expected.step_type, F), tf.int32))) >= 3  # episode starts
    positions = tf.range(FRAME_STACK - 1, steps)  # every step with 3 stored steps before it
    tile = lambda t: tf.repeat(t, len(positions), axis=0)  # noqa: E731 (one window per position)
    rebuilt = stack_frames(tile(stored.observation), tile(stored.step_type), positions, FRAME_STACK)
    assert tf.reduce_all(tf.equal(rebuilt, expected.observation[0, FRAME_STACK - 1:])).numpy()
    # and the stacks are not trivially equal: consecutive frames of a stack differ somewhere
    assert not tf.reduce_all(tf.equal(expected.observation[..., 0], expected.observation[..., -1])).numpy()


def test_n_step_transition_of_stored_frames_equals_that_of_whole_observations(breakout_stream):
    # The training path: a window of frames (3 steps longer) gives the same n-step transition,
    # weight and observations as the same window of whole observations.
    import tensorflow as tf

    from agents.atari import FRAME_STACK
    from agents.tfa.components import n_step_transition

    expected, stored = breakout_stream
    n, lead, steps = 10, FRAME_STACK - 1, int(stored.step_type.shape[1])
    starts = range(lead, steps - n)

    def windows(experience, before):
        return tf.nest.map_structure(lambda t: tf.concat([t[:, s - before: s + n + 1] for s in starts], axis=0),
                                     experience)

    ours, our_weights = n_step_transition(windows(stored, lead), 0.99, FRAME_STACK)
    theirs, their_weights = n_step_transition(windows(expected, 0), 0.99)
    assert len(starts) > 50 and float(tf.reduce_min(their_weights)) == 0.0  # some windows start at an end
    for a, b in zip(tf.nest.flatten(ours), tf.nest.flatten(theirs)):
        assert tf.reduce_all(tf.equal(a, b) | (tf.math.is_nan(tf.cast(a, tf.float32)))).numpy()
    assert tf.reduce_all(tf.equal(our_weights, their_weights)).numpy()


# ----------------------------------------------------------------------------------------------
# The real CLI, quick budget: CartPole run shared by the tests below
# ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cartpole_run(tmp_path_factory):
    from conftest import run_cli

    run_dir = tmp_path_factory.mktemp("tfa") / "cartpole"
    code, out, err = run_cli("run", "tfa-dqn", "--quick", "--env", "cartpole", "--seed", "0",
                             "--run-dir", run_dir, timeout=300)
    assert code == 0, err[-3000:]
    return run_dir, json.loads((run_dir / "result.json").read_text())


def test_quick_run_writes_the_run_directory(cartpole_run):
    run_dir, result = cartpole_run
    for name in ("config.json", "eval_history.json", "agent.gif", "learning_curve.png", "policy/policy.json",
                 "policy/saved_model.pb", "policy/manifest.json"):
        assert (run_dir / name).exists(), name
    assert list((run_dir / "train").glob("events.out.tfevents.*")), "no TensorBoard train log"
    assert list((run_dir / "eval").glob("events.out.tfevents.*")), "no TensorBoard eval log"
    metrics = result["metrics"]
    assert [c.name for c in sorted((run_dir / "checkpoints").iterdir())] == ["ckpt-000128", "ckpt-000256"]  # last 2
    p = json.loads((run_dir / "config.json").read_text())  # the resolved quick config
    assert metrics["iterations"] == p["iterations"] == QUICK_CARTPOLE.iterations
    assert metrics["train_step"] == p["iterations"] * p["train_steps"]  # agent updates
    assert metrics["env_steps"] == p["iterations"] * p["collect_steps"]  # EnvironmentSteps (collect policy only)
    # The buffer (capacity 100,000) holds the random initial steps, every collected step, and one
    # boundary transition (LAST -> FIRST) per finished episode, which the driver and the
    # EnvironmentSteps metric do not count as steps; CartPole episodes last >= 8 steps.
    steps = p["initial_collect_steps"] + metrics["env_steps"]
    assert 0 < metrics["replay_buffer_frames"] - steps <= steps // 8
    meta = json.loads((run_dir / "policy" / "policy.json").read_text())
    assert meta["kind"] == "tf-agents-saved-policy" and meta["env_id"] == "CartPole-v1"
    assert meta["format"] == "kcourse-policy/1" and meta["observation_space"]["shape"] == [4]


def test_selection_and_report_episodes_are_disjoint(cartpole_run):
    from agents.evaluation import REPORT_SEED, REPORT_SEEDS, SELECT_SEEDS

    run_dir, result = cartpole_run
    metrics = result["metrics"]
    first, last = metrics["report_seeds"]
    assert first == REPORT_SEED and last - first + 1 == metrics["final_eval_episodes"] and last in REPORT_SEEDS
    history = json.loads((run_dir / "eval_history.json").read_text())
    assert history and all(h["eval_seed"] in SELECT_SEEDS and h["eval_seed"] + h["eval_episodes"] - 1 in SELECT_SEEDS
                           for h in history)


def test_reached_follows_the_report_not_the_selection(tmp_path, monkeypatch):
    # Every selection evaluation passes (500 on selection seeds), the report misses (400 on report seeds).
    from agents import evaluation
    from agents.tfa import pipeline

    calls = []

    def fake_evaluate(policy, p, episodes, seed, actions, protocol=None):
        calls.append(range(seed, seed + episodes))
        mean = 500.0 if seed in evaluation.SELECT_SEEDS else 400.0
        return evaluation.EvalResult(mean, 0.0, mean, mean, [mean] * episodes, [int(mean)] * episodes, p.env_id, seed)

    monkeypatch.setattr(pipeline, "evaluate_policy", fake_evaluate)
    cfg = dataclasses.replace(QUICK_CARTPOLE, target_return=475.0, gif=False)
    result = pipeline.train_eval(cfg, tmp_path / "run", verbose=False)
    assert result["metrics"]["selection_passed"] is True and result["metrics"]["select_mean"] == 500.0
    assert result["reached"] is False
    n = cfg.final_eval_episodes
    assert f"report greedy mean return 400.000 over {n} episodes (< 475, missed by 75.000)" in result["headline"]
    *selection, report = calls
    assert report == range(evaluation.REPORT_SEED, evaluation.REPORT_SEED + n)
    assert selection and all(set(s).isdisjoint(report) for s in selection)


def test_exported_policy_round_trip_in_a_fresh_process_without_tf_agents(cartpole_run):
    run_dir, result = cartpole_run
    script = textwrap.dedent(f"""
        import json, sys
        from agents.evaluation import evaluate
        from agents.policy_files import load_policy
        policy, meta = load_policy({str(run_dir / 'policy')!r})
        r = evaluate(policy, meta["env_id"], episodes={result['metrics']['final_eval_episodes']},
                     seed={result['metrics']['report_seeds'][0]},
                     env_kwargs=meta["env_kwargs"])
        print(json.dumps({{"mean": r.mean, "tf_agents": any(m.startswith("tf_agents") for m in sys.modules)}}))
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["tf_agents"] is False  # loaded with tf.saved_model.load alone
    # The same greedy policy on the same seeds gives the result train_eval measured in-process.
    assert out["mean"] == pytest.approx(result["metrics"]["final_eval_mean"])


def test_resume_continues_train_step_metrics_and_replay_buffer(cartpole_run, tmp_path):
    run_dir, first = cartpole_run
    resumed_dir, twin = tmp_path / "resumed", tmp_path / "twin"
    for copy in (resumed_dir, twin):
        shutil.copytree(run_dir, copy)

    p = json.loads((run_dir / "config.json").read_text())
    extra = 2  # iterations
    total = first["metrics"]["iterations"] + extra
    _runs_at_once(*[("run", "tfa-dqn", "--resume", d, "--iterations", total) for d in (resumed_dir, twin)])
    # One checkpoint resumed twice with one command continues the same way (docs/tfa.md, "Determinism")
    assert _outcome(resumed_dir) == _outcome(twin)
    second = json.loads((resumed_dir / "result.json").read_text())["metrics"]
    assert second["env"] == "CartPole-v1"  # taken from the resumed run, not the CLI default
    assert second["resumed_from"] == first["metrics"]["train_step"]
    assert second["iterations"] == total
    assert second["train_step"] == total * p["train_steps"]  # the train step counter continues
    assert second["initial_collect_steps_this_run"] == 0  # the restored buffer already held data
    assert second["env_steps"] == first["metrics"]["env_steps"] + extra * p["collect_steps"]  # metrics restored
    assert second["episodes"] > first["metrics"]["episodes"]
    # buffer: the restored content + the new steps + one boundary per episode ended since (+/- 1 at the cut)
    boundaries = second["replay_buffer_frames"] - first["metrics"]["replay_buffer_frames"] - extra * p["collect_steps"]
    assert abs(boundaries - (second["episodes"] - first["metrics"]["episodes"])) <= 1
    history = json.loads((resumed_dir / "eval_history.json").read_text())
    assert [h["iteration"] for h in history] == [2, 4, 6]  # the first run's evaluations, then the new one


# ----------------------------------------------------------------------------------------------
# Determinism (the default, deterministic = true): one command and seed, one run
# ----------------------------------------------------------------------------------------------

TIMINGS = ("train_seconds", "train_cpu_seconds", "load_average_1min", "seconds_by_phase")


def _outcome(run_dir):
    """What a run decided: result.json's metrics and headline apart from timings, the evaluation
    history apart from its clock, and the exported policy's variables, byte for byte."""
    result = json.loads((run_dir / "result.json").read_text())
    metrics = {k: v for k, v in result["metrics"].items() if k not in TIMINGS}
    history = [{k: v for k, v in h.items() if k != "seconds"}
               for h in json.loads((run_dir / "eval_history.json").read_text())]
    headline = result["headline"].rsplit("(", 1)[0]  # without "(Ns training)"
    variables = (run_dir / "policy" / "variables" / "variables.data-00000-of-00001").read_bytes()
    return metrics, history, headline, variables


def _runs_at_once(*commands, timeout=400):
    """The CLI commands in parallel processes (each slows the other down: a race would show)."""
    from concurrent.futures import ThreadPoolExecutor

    from conftest import run_cli

    with ThreadPoolExecutor(len(commands)) as pool:
        for code, out, err in pool.map(lambda args: run_cli(*args, timeout=timeout), commands):
            assert code == 0, err[-3000:]


def test_two_quick_cartpole_runs_of_one_seed_are_identical(cartpole_run, tmp_path):
    run_dir, first = cartpole_run
    again = tmp_path / "again"
    _runs_at_once(("run", "tfa-dqn", "--quick", "--env", "cartpole", "--seed", "0", "--run-dir", again))
    assert first["metrics"]["deterministic"] is True
    assert _outcome(again) == _outcome(run_dir)
    assert json.loads((again / "result.json").read_text())["metrics"]["last_loss"] == first["metrics"]["last_loss"]


@pytest.mark.parametrize("slippery", ["--no-slippery", "--slippery"])
def test_two_quick_frozenlake_runs_of_one_seed_are_identical(tmp_path, slippery):
    dirs = [tmp_path / "a", tmp_path / "b"]
    _runs_at_once(*[("run", "tfa-dqn", "--quick", "--env", "frozenlake", slippery, "--seed", "3", "--iterations", "300",
                     "--config", "gif=false", "--run-dir", d) for d in dirs])
    a, b = (_outcome(d) for d in dirs)
    assert a == b
    assert a[0]["train_step"] == 300 and a[0]["slippery"] is (slippery == "--slippery")


def test_deterministic_flag_chooses_the_sampling_and_op_determinism(tmp_path, monkeypatch):
    from agents.tfa import pipeline

    seen = []

    def spy(c, steps, batch_size, parallel=True):
        dataset = pipeline_sample_windows(c, steps, batch_size, parallel=parallel)
        seen.append((parallel, type(dataset).__name__, dataset.options().experimental_optimization.inject_prefetch,
                     _op_determinism_config().is_op_determinism_enabled()))
        return dataset

    pipeline_sample_windows = pipeline.sample_windows
    monkeypatch.setattr(pipeline, "sample_windows", spy)
    for deterministic in (False, True):
        cfg = dataclasses.replace(QUICK_CARTPOLE, iterations=1, eval_interval=1, final_eval_episodes=1, gif=False,
                                  deterministic=deterministic)
        pipeline.train_eval(cfg, tmp_path / str(deterministic), verbose=False)
    # off: 3 parallel sampling calls, prefetched, no op determinism; on: one call at a time, nothing
    # prefetched (tf.data's own prefetch injection off too), op determinism on
    assert seen == [(True, "_PrefetchDataset", None, False), (False, "_OptionsDataset", False, True)]


# ----------------------------------------------------------------------------------------------
# Breakout smoke run (a few hundred iterations, tiny replay buffer)
# ----------------------------------------------------------------------------------------------


@needs_ale
def test_breakout_quick_smoke_run(cli, tmp_path):
    run_dir = tmp_path / "breakout"
    code, out, err = cli("run", "tfa-dqn", "--quick", "--env", "breakout", "--run-dir", run_dir, timeout=400)
    assert code == 0, err[-3000:]
    metrics = json.loads((run_dir / "result.json").read_text())["metrics"]
    assert metrics["train_step"] == metrics["iterations"] == 200
    assert metrics["env_steps"] == 4 * metrics["train_step"]  # a train step every 4 collect steps
    assert metrics["ale_frames"] == 4 * (metrics["env_steps"] + QUICK_BREAKOUT_INITIAL_COLLECT)
    meta = json.loads((run_dir / "policy" / "policy.json").read_text())
    assert meta["observation_space"]["shape"] == [84, 84, 4] and meta["observation_space"]["dtype"] == "uint8"
    assert meta["env_factory"] == "agents.atari:make_atari_env" and meta["env_id"] == "ALE/Breakout-v5"
    assert (run_dir / "agent.gif").is_file()


# ----------------------------------------------------------------------------------------------
# Learning regression (slow)
# ----------------------------------------------------------------------------------------------


def _run(cli, tmp_path, *args, timeout=1800):
    run_dir = tmp_path / "run"
    code, out, err = cli("run", "tfa-dqn", *args, "--run-dir", run_dir, timeout=timeout)
    assert code == 0, err[-3000:]
    return run_dir, json.loads((run_dir / "result.json").read_text())["metrics"]


@pytest.mark.slow
def test_cartpole_greedy_mean_at_least_475_over_100_episodes(cli, tmp_path):
    from agents.evaluation import assert_policy_return
    from agents.policy_files import load_policy

    run_dir, metrics = _run(cli, tmp_path, "--env", "cartpole", "--seed", "0")
    policy, meta = load_policy(run_dir / "policy")
    assert_policy_return(policy, "CartPole-v1", min_mean=475, episodes=100, seed=0)


@pytest.mark.slow
def test_frozenlake_not_slippery_success_is_one(cli, tmp_path):
    run_dir, metrics = _run(cli, tmp_path, "--env", "frozenlake", "--no-slippery", "--seed", "0")
    assert metrics["final_success_rate"] == 1.0


@pytest.mark.slow
def test_frozenlake_slippery_success_at_least_070(cli, tmp_path):
    # deterministic: seed 0 reports the same rate on every run (docs/tfa.md: seeds 0-9 all >= 0.70)
    run_dir, metrics = _run(cli, tmp_path, "--env", "frozenlake", "--slippery", "--seed", "0")
    assert metrics["final_eval_episodes"] >= 1000  # +/-0.014 standard error at p=0.74
    assert metrics["final_success_rate"] >= 0.70 and metrics["deterministic"] is True


# ----------------------------------------------------------------------------------------------
# Faults (issue 16): damaged checkpoints, a damaged export, a corrupt config.json, Ctrl-C
# ----------------------------------------------------------------------------------------------


def _snapshot(folder):
    return {p.relative_to(folder).as_posix(): (None if p.is_dir() else p.read_bytes())
            for p in sorted(folder.rglob("*"))}


def _one_error(err):
    assert "Traceback" not in err, err[-3000:]
    lines = [line for line in err.splitlines() if line.startswith("kcourse: error:")]
    assert len(lines) == 1, err[-3000:]
    return lines[0]


def _truncate(path):
    path.write_bytes(path.read_bytes()[: max(1, path.stat().st_size // 2)])


@pytest.fixture
def damaged_run(cartpole_run, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(cartpole_run[0], run_dir)
    return run_dir


def test_truncated_newest_checkpoint_falls_back_to_the_previous_one(damaged_run):
    from conftest import run_cli

    newest, older = damaged_run / "checkpoints" / "ckpt-000256", damaged_run / "checkpoints" / "ckpt-000128"
    _truncate(newest / "tf.data-00000-of-00001")
    # --iterations 2: the previous checkpoint is at iteration 2, so nothing is left to train and the run
    # ends at once (its last loss is NaN: result.json must still be strict JSON).
    code, out, err = run_cli("run", "tfa-dqn", "--resume", damaged_run, "--iterations", 2, "--no-gif", timeout=300)
    assert code == 0, err[-3000:]
    assert (f"[tfa-dqn] refusing checkpoint {newest} is corrupt: {newest / 'tf.data-00000-of-00001'} does not match "
            f"its SHA-256 in manifest.json (truncated or modified); trying the previous checkpoint") in out
    assert f"[tfa-dqn] resumed from {older} at update 128" in out
    text = (damaged_run / "result.json").read_text()

    def refuse(constant):
        raise ValueError(f"non-standard JSON constant {constant} in result.json")

    metrics = json.loads(text, parse_constant=refuse)["metrics"]
    assert metrics["resumed_from"] == 128 and metrics["updates_this_run"] == 0
    assert metrics["last_loss"] is None  # NaN: no update in this session (the old code wrote NaN)
    assert newest.is_dir()  # the corrupt one is kept for inspection


@pytest.mark.parametrize("damage", ["truncate-all", "remove-folder"])
def test_failed_tfa_resume_is_one_line_and_changes_nothing(damaged_run, damage):
    from conftest import run_cli

    if damage == "truncate-all":
        for ckpt in (damaged_run / "checkpoints").iterdir():
            _truncate(ckpt / "tf.index")
        expected = (f"kcourse: error: no usable checkpoint: checkpoint {damaged_run / 'checkpoints' / 'ckpt-000256'} "
                    f"is corrupt: {damaged_run / 'checkpoints' / 'ckpt-000256' / 'tf.index'} does not match its SHA-256")
    else:
        shutil.rmtree(damaged_run / "checkpoints")
        expected = f"kcourse: error: no checkpoint in {damaged_run / 'checkpoints'}"
    before = _snapshot(damaged_run)
    code, out, err = run_cli("run", "tfa-dqn", "--resume", damaged_run, "--iterations", 6, timeout=300)
    assert code == 2
    assert _one_error(err).startswith(expected)
    assert _snapshot(damaged_run) == before  # config.json, the history, the policy: untouched; nothing new


def test_resume_of_an_empty_folder_names_it(tmp_path, capsys):
    from kcourse import cli

    empty = tmp_path / "empty"
    empty.mkdir()
    assert cli.main(["run", "tfa-dqn", "--quick", "--resume", str(empty)]) == 2
    assert _one_error(capsys.readouterr().err) == (f"kcourse: error: --resume {empty}: not a kcourse run folder (no "
                                                   f"config.json); start a new run without --resume")
    assert list(empty.iterdir()) == []


@pytest.mark.parametrize("content, message", [
    ("{\"env\": ", "is unreadable or corrupt (Expecting value"),
    ("null", "is corrupt: expected a JSON object"),
    ('{"env": "notagame"}', "is corrupt: Received an invalid value for argument `env`: expected cartpole, "),
    ('{"iterations": "many"}', "is corrupt: Received an invalid value for argument `iterations`: expected a value of "
                               "type int, got 'many'"),
])
def test_resume_with_a_corrupt_config_json_names_the_file(damaged_run, capsys, content, message):
    from kcourse import cli

    (damaged_run / "config.json").write_text(content)
    before = _snapshot(damaged_run)
    assert cli.main(["run", "tfa-dqn", "--resume", str(damaged_run)]) == 2
    line = _one_error(capsys.readouterr().err)
    assert f"the run's config {damaged_run / 'config.json'} " in line and message in line, line
    assert _snapshot(damaged_run) == before


def test_truncated_policy_variables_file_is_named_by_kcourse_eval(damaged_run):
    from conftest import run_cli

    (variables,) = (damaged_run / "policy" / "variables").glob("variables.data-*")
    _truncate(variables)
    code, out, err = run_cli("eval", damaged_run / "policy", "--episodes", "1", timeout=300)
    assert code == 2
    assert _one_error(err) == (f"kcourse: error: saved policy {damaged_run / 'policy'} is corrupt: {variables} does "
                               f"not match its SHA-256 in manifest.json (truncated or modified)")


def test_ctrl_c_saves_a_checkpoint_that_resumes(tmp_path):
    import signal

    from keras_impl.checkpoints import CheckpointManager

    run_dir = tmp_path / "run"
    # No periodic checkpoint or evaluation: the only checkpoint can come from Ctrl-C.
    cmd = [sys.executable, "-m", "kcourse", "run", "tfa-dqn", "--quick", "--run-dir", str(run_dir),
           "--config", "iterations=100000", "--config", "checkpoint_interval=100000",
           "--config", "eval_interval=100000", "--no-gif"]
    from conftest import REPO

    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    try:
        lines = []
        for line in proc.stdout:  # the first log line: training runs
            lines.append(line)
            if line.startswith("[tfa-dqn] iter"):
                break
        assert lines and lines[-1].startswith("[tfa-dqn] iter"), "".join(lines) + proc.stderr.read()[-3000:]
        proc.send_signal(signal.SIGINT)
        rest, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    out = "".join(lines) + rest
    assert proc.returncode == 130, err[-3000:]
    assert f"continue with `kcourse run tfa-dqn --resume {run_dir}`" in out
    assert "Traceback" not in err and "kcourse: interrupted" in err
    saved = CheckpointManager(run_dir / "checkpoints").latest()
    step = int(saved.name.split("-")[1])
    assert step > 0 and step % QUICK_CARTPOLE.train_steps == 0
    from conftest import run_cli

    iterations = step // QUICK_CARTPOLE.train_steps + 1
    code, out, err = run_cli("run", "tfa-dqn", "--resume", run_dir, "--iterations", iterations, timeout=300)
    assert code == 0, err[-3000:]
    assert f"resumed from {saved} at update {step}" in out
    metrics = json.loads((run_dir / "result.json").read_text())["metrics"]
    assert metrics["resumed_from"] == step and metrics["train_step"] == step + QUICK_CARTPOLE.train_steps


def test_n_actions_counts_a_bounded_action_spec():
    """Breakout's 4 actions are the spec 0..3; a spec 1..6 also holds 6 actions (maximum - minimum + 1)."""
    pytest.importorskip("tf_agents")
    import tensorflow as tf
    from tf_agents.specs import tensor_spec

    from agents.tfa.components import n_actions

    assert n_actions(tensor_spec.BoundedTensorSpec((), tf.int64, 0, 3)) == 4
    assert n_actions(tensor_spec.BoundedTensorSpec((), tf.int64, 1, 6)) == 6
