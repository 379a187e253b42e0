"""Build ``notebooks/*.ipynb`` from the Python source below (so the notebooks stay reviewable).

Every notebook has the same skeleton, in the keras-io order:

1. a Colab cell that installs kcourse (and TF-Agents without its stale pins); it does nothing
   outside Colab;
2. Introduction (what the course exercise is, and the course's numbers);
3. Setup: the ``QUICK`` switch (``KCOURSE_QUICK``; on by default outside Colab, off in Colab),
   ``TF_USE_LEGACY_KERAS=1`` before TensorFlow, a run folder, inline plots;
4. Model, 5. Train, 6. Visualise: calls into ``keras_impl`` / ``agents`` only (no model, agent
   or environment is redefined here), learning curves from the packages' plot helpers and inline
   animations from :func:`agents.render.show`.

At ``QUICK`` settings each notebook finishes in about a minute on a CPU; ``tests/test_notebooks.py``
executes all of them that way. The notebooks are written without outputs.

    python scripts/make_notebooks.py           # (re)write notebooks/*.ipynb
    python scripts/make_notebooks.py --check   # exit 1 if a notebook differs from this script
"""
from __future__ import annotations

import argparse
import sys
import textwrap
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

ROOT = Path(__file__).resolve().parents[1]
OUT_DIR = ROOT / "notebooks"

# What a notebook must show once executed (checked by tests/test_notebooks.py):
# "image" = at least one image/png output, "animation" = at least one jshtml animation.
IMAGE, ANIMATION = "image", "animation"


def md(text: str):
    return new_markdown_cell(textwrap.dedent(text).strip())


def code(text: str):
    return new_code_cell(textwrap.dedent(text).strip())


def install_cell():
    return code('''
    # Colab only: install kcourse and TF-Agents (with --no-deps: its metadata pins cannot resolve beside
    # TF 2.21). Outside Colab this cell does nothing: install with `make venv` in the repository instead.
    import os
    import sys

    IN_COLAB = "google.colab" in sys.modules
    if IN_COLAB:
        # This repository's git URL (set KCOURSE_SOURCE to install from a fork or a branch).
        KCOURSE_SOURCE = os.environ.get("KCOURSE_SOURCE", "git+https://github.com/kcourse/kcourse")
        !pip -q install "kcourse[atari,box2d] @ {KCOURSE_SOURCE}"
        !pip -q install --no-deps tf-agents==0.19.0 gym==0.23.0
    ''')


def setup_cell(name: str, imports: str):
    return code(f'''
    import os
    import sys

    # TF-Agents needs Keras 2 (tf_keras) as tf.keras; this must happen before tf.keras is first used.
    # Importing `agents.tfa` sets it too; hand-written models use Keras 3 (`import keras`).
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    # QUICK: a tiny budget that runs in about a minute on a CPU (the default outside Colab, and what
    # the test suite runs); KCOURSE_QUICK=0 (the default in Colab) runs the course's full budget.
    IN_COLAB = "google.colab" in sys.modules
    QUICK = os.environ.get("KCOURSE_QUICK", "0" if IN_COLAB else "1") == "1"

    from pathlib import Path

    import numpy as np
    from IPython.display import Image, Markdown, display

    %matplotlib inline
    import matplotlib.pyplot as plt

{textwrap.indent(textwrap.dedent(imports).strip(), "    ")}

    RUN_DIR = Path("runs") / "notebooks" / "{name}"  # plots, GIFs, checkpoints, TensorBoard logs
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    print(f"QUICK={{QUICK}}; outputs in {{RUN_DIR.resolve()}}")
    ''')


def notebook(name: str, title: str, intro: str, imports: str, cells: list, expects: tuple) -> nbformat.NotebookNode:
    nb = new_notebook()
    nb.cells = [install_cell(), md(f"# {title}\n\n## Introduction\n\n{textwrap.dedent(intro).strip()}"),
                md("## Setup"), setup_cell(name, imports)] + cells
    for i, cell in enumerate(nb.cells):  # stable ids: regenerating gives the same file
        cell.id = f"{name.split('_')[0]}-{i:02d}"
    nb.metadata = {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
        "colab": {"provenance": []},
        "kcourse": {"generated_by": "scripts/make_notebooks.py", "expects": list(expects)},
    }
    return nb


# ----------------------------------------------------------------------------------------------
# 01 recommender
# ----------------------------------------------------------------------------------------------

RECOMMENDER = notebook(
    "01_recommender", "MovieLens recommender (exam part 1)",
    """
    Predict the rating a user gives a film from one embedding per user and per film: a biased matrix
    factorisation `0.5 + 4.5 * sigmoid(c + b_u + b_m + p_u . q_m)`, trained with Adam and MSE, batch 64,
    5 epochs, on the course's preprocessing of ml-20m (5,000 sampled users, 90/10 split). Two additions
    to the course's model, both on by default: a film's row starts from the mean of its genres' rows,
    and each entry has a learned variance (variational Bayes) so rarely rated users and films are not
    overfitted (`--posterior map --no-genres` gives the plain point-estimate model).

    The course printed validation MSE **0.7995, 0.7595, 0.7444, 0.7383, 0.7334** and then asked for the
    predicted rating of user index 2303 for movie index 49 ("Usual Suspects, The (1995)").

    With `QUICK` the notebook trains on a small *synthetic* set in the MovieLens CSV layout (MovieLens
    may not be redistributed); in Colab (`QUICK` off) it downloads ml-20m from GroupLens.
    Code: `keras_impl/recommender/`, `keras_impl/movielens/`; options: `keras_impl/configs.py`.
    """,
    """
    import pandas as pd

    from keras_impl import movielens
    from keras_impl import recommender as rec
    from keras_impl import runtime
    from keras_impl.configs import RecommenderConfig

    print(runtime.device_summary())
    """,
    [
        md("""
        The data: `movielens.load_course_data` merges `ratings.csv` with `movies.csv` in the course's row
        order (pandas < 2.2: see `docs/recommender.md`), samples the users with the course's seed, re-indexes
        users and films from 0 and splits 90/10.
        """),
        code("""
        if QUICK:
            folder = movielens.synthetic_folder("small", seed=0)  # generated once, cached in ~/.cache/kcourse
        else:
            folder = movielens.download("ml-20m", "data")  # ~190 MB from files.grouplens.org
        cfg = RecommenderConfig(data=str(folder), epochs=3 if QUICK else 5, batch_size=256 if QUICK else 64)
        data = movielens.load_course_data(folder, merge_order=cfg.merge_order, n_users=cfg.users)
        print(f"{len(data.frame):,} ratings, {data.n_users} users, {data.n_movies} films; "
              f"train {len(data.x_train):,}, validation {len(data.x_val):,}")
        data.frame.head()
        """),
        md("""
        ## Model

        One embedding row per user and per film plus biases (and, by default, a row per genre and a
        log-variance per entry: `model.summary()` lists them); the dot product is taken **per row**
        (`tensordot(u, m, 2)` would sum over the whole batch and still pass a shape test). The check below
        is the test that catches that bug: one example alone gives the same prediction as inside a batch.
        """),
        code("""
        model = rec.build_model(data, cfg)
        x = data.x_val[:8]  # [8, 2] (user index, movie index)
        print("batch-independent:", np.allclose(model(x[:1]), model(x)[:1]))
        print("first predictions (the global mean at initialisation):", np.asarray(model(x)).ravel()[:4].round(3))
        model.summary()
        """),
        md("## Train\n\n`rec.train` fits with `model.fit` and prints the validation MSE after each epoch in the course's format."),
        code("""
        model, history, log = rec.train(data, cfg, RUN_DIR)
        """),
        md("## Visualise\n\nThe learning curve (training loss and validation MSE per epoch):"),
        code("""
        fig, ax = plt.subplots(figsize=(5, 3.5))
        epochs = np.arange(1, cfg.epochs + 1)
        ax.plot(epochs, history.history["loss"], "o-", label="training loss")
        ax.plot(epochs, log.val_mse, "o-", label="validation MSE")
        if not QUICK:
            ax.plot(epochs, rec.COURSE_VAL_MSE[: cfg.epochs], "k--", label="course (PyTorch)")
        ax.set(xlabel="epoch", ylabel="MSE", title="recommender")
        ax.legend()
        plt.show()
        """),
        md("Predicted against true ratings on the validation set (the course's scatter plot):"),
        code("""
        y_pred = rec.predict_batch(model, data.x_val)
        val_mse = float(np.mean((y_pred - data.y_val.ravel()) ** 2))
        display(Image(filename=str(rec.scatter_plot(data.y_val, y_pred, RUN_DIR / "scatter.png",
                                                    title=f"validation MSE {val_mse:.4f}"))))
        """),
        md("""
        The course's question (on ml-20m) and the top-10 unseen films for a user, with titles. The list is
        ranked by a lower credible bound of the rating (`rank="mean"` ranks by the prediction) and leaves
        out films with fewer than 5 training ratings (`min_ratings`); `n_ratings` is each film's count.
        """),
        code("""
        user = rec.COURSE_QUESTION[0] if not QUICK else int(np.argmax(np.diff(model.mappings.seen_indptr)))
        movie = rec.COURSE_QUESTION[1] if not QUICK else 0
        print(rec.predict(model, user, movie, by="index"))
        pd.DataFrame(rec.recommend(model, user, n=10, by="index", rank="lower-bound"))
        """),
        md("Save and load: one `.keras` file that also carries the id/title mappings."),
        code("""
        path = rec.save(model, RUN_DIR / "recommender.keras")
        loaded = rec.load(path)
        print(path, "same predictions after loading:", np.allclose(loaded(data.x_val[:256]), model(data.x_val[:256])))
        """),
    ],
    expects=(IMAGE,),
)

# ----------------------------------------------------------------------------------------------
# 02 hello RNN / LSTM
# ----------------------------------------------------------------------------------------------

HELLO = notebook(
    "02_hello_rnn_lstm", "\"hello\": next-character RNN and LSTM (exam part 2)",
    """
    `txt = list('hello') * 100`: every character predicts the next one. The exam asks for six models,
    each followed by a `Dense` layer and trained with Adam (0.1) for 200 epochs on the whole sequence:

    1. `SimpleRNN`, 2. `RNN(SimpleRNNCell)`, 3. a hand-written RNN cell that gives **the same fitted
    values** as (2), 4. `LSTM`, 5. `RNN(LSTMCell)`, 6. a hand-written LSTM cell that reproduces (5).

    The course reaches 100% next-character accuracy. Keras cells have one bias (PyTorch two) and Keras
    LSTM gates are ordered i, f, c, o (PyTorch i, f, g, o). Code: `keras_impl/hello.py`.
    """,
    """
    from keras_impl import hello
    """,
    [
        code("""
        data = hello.make_data(list("hello") * (10 if QUICK else 100))
        print(f"vocabulary {data.vocab}, {len(data.y)} steps; first inputs -> targets:",
              [(data.vocab[i], data.vocab[t]) for i, t in zip(data.input_ids[:5], data.y[:5])])
        """),
        md("""
        ## Model

        The six variants; the hand-written cells compute `x @ W + h @ U + b` in the same op order as Keras'
        cells, so that gradients agree as well as the forward pass.
        """),
        code("""
        for variant in hello.VARIANTS:
            model = hello.build_model(variant, len(data.vocab), units=4)
            print(f"{variant:<13} {hello.LABELS[variant]:<27} twin: {hello.TWIN[variant]:<11} "
                  f"{model.count_params()} parameters")
        """),
        md("## Train\n\nEach family (RNN, LSTM) starts from one set of initial weights, copied into every variant."),
        code("""
        results = hello.train_variants(list(hello.VARIANTS), data, units=4, epochs=100 if QUICK else 200,
                                       learning_rate=0.1, seed=0)
        diffs = hello.twin_differences(results)
        print(hello.format_table(results, diffs, hello.VARIANTS))
        """),
        md("## Visualise\n\nLearning curves: a hand-written cell's curve lies on its built-in twin's."),
        code("""
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.5), sharey=True)
        for ax, family in zip(axes, (hello.RNN_VARIANTS, hello.LSTM_VARIANTS)):
            for variant, style in zip(family, ("-", "--", ":")):
                ax.plot(results[variant].losses, style, lw=2, label=hello.LABELS[variant])
            ax.set(xlabel="epoch", ylabel="cross-entropy", yscale="log")
            ax.legend()
        plt.show()
        """),
        md("The fitted next-character probabilities (the course's `soft(net(x))` rows):"),
        code("""
        print(hello.format_probs(results["my_lstm_cell"], data, steps=5))
        display(Image(filename=str(hello.save_heatmap(results, data, hello.VARIANTS, RUN_DIR / "heatmap.png", steps=5))))
        """),
    ],
    expects=(IMAGE,),
)

# ----------------------------------------------------------------------------------------------
# 03 tabular RL
# ----------------------------------------------------------------------------------------------

TABULAR = notebook(
    "03_tabular_rl", "Markov chains, Q-value iteration and Q-learning (HOML ch. 18)",
    """
    HOML's toy problems: a 4-state Markov chain, then a 3-state, 3-action MDP solved two ways: Q-value
    iteration from the known model (gamma 0.90, 50 iterations: Q(s0) = **[18.92, 17.03, 13.62]**, policy
    **[0, 0, 1]**; with gamma 0.95 the best action in s1 becomes 2, through the fire) and Q-learning from
    sampled transitions with a random exploration policy. Code: `agents/tabular.py`. No TensorFlow here.
    """,
    """
    from agents import tabular
    """,
    [
        md("## Model\n\nThe Markov chain's transition matrix, and a few walks from s0 (s3 is terminal):"),
        code("""
        print(tabular.MARKOV_CHAIN)
        rng = np.random.default_rng(42)
        for _ in range(5):
            print("States:", *tabular.sample_markov_chain(tabular.MARKOV_CHAIN, 0, 50, rng))
        """),
        md("The MDP: `transitions[s, a, s']`, `rewards[s, a, s']` and the actions possible in each state."),
        code("""
        mdp = tabular.HOML_MDP
        print("possible actions:", mdp.possible_actions)
        print("rewards from s1 with action 2 (through the fire):", mdp.rewards[1, 2])
        """),
        md("## Train\n\nQ-value iteration (from the model) for two discount factors, then Q-learning (from samples)."),
        code("""
        np.set_printoptions(precision=2, suppress=True)
        for gamma in (0.90, 0.95):
            q, history_vi = tabular.q_value_iteration(mdp, gamma=gamma, iterations=50)
            print(f"gamma {gamma}: Q =\\n{q}\\ngreedy policy {tabular.greedy_policy(q).tolist()}")
        q_vi, history_vi = tabular.q_value_iteration(mdp, gamma=0.90, iterations=50)
        """),
        code("""
        q_ql, history_ql = tabular.q_learning(mdp, gamma=0.90, iterations=10_000, seed=42)
        print(f"Q-learning: Q =\\n{q_ql}\\ngreedy policy {tabular.greedy_policy(q_ql).tolist()} "
              f"(Q-value iteration: {tabular.greedy_policy(q_vi).tolist()})")
        """),
        md("## Visualise\n\nHOML's figure: Q(s0, a0) against iterations, converging to the same value both ways."),
        code("""
        tabular.plot_convergence(history_vi, history_ql, RUN_DIR / "q_value_plot.png")
        display(Image(filename=str(RUN_DIR / "q_value_plot.png")))
        """),
    ],
    expects=(IMAGE,),
)

# ----------------------------------------------------------------------------------------------
# 04 policy gradients
# ----------------------------------------------------------------------------------------------

POLICY_GRADIENTS = notebook(
    "04_policy_gradients", "CartPole policies and REINFORCE policy gradients (HOML ch. 18)",
    """
    Three ways to balance the pole: HOML's hard-coded policy (push towards the side the pole leans to:
    mean about **42** steps, max 68, over 500 episodes capped at 200 steps), a small network trained
    to imitate it, and REINFORCE: play whole episodes with a softmax policy, discount and normalise
    the rewards (`discount_rewards([10, 0, -50], 0.8) == [-22, -40, -50]`), and make the actions of
    better-than-average episodes more likely. HOML reaches a mean of about 190 at the 200-step cap.
    Code: `agents/policies.py`, `agents/policy_gradient.py`, `agents/render.py`.
    """,
    """
    from agents import policies, render
    from agents import policy_gradient as pg
    from agents.configs import PolicyGradientConfig
    from keras_impl.plotting import plot_learning_curve

    print("discount_rewards([10, 0, -50], 0.8) =", pg.discount_rewards([10, 0, -50], 0.8))
    print("normalised over two episodes:", pg.discount_and_normalize_rewards([[10, 0, -50], [10, 20]], 0.8))
    """,
    [
        md("## Model\n\nThe hard-coded angle policy, measured with HOML's 200-step cap, and one episode of it:"),
        code("""
        stats = policies.basic_policy_stats(episodes=100 if QUICK else 500, seed=42, max_steps=200)
        print(stats.summary())
        frames = render.record_episode(policies.basic_policy, "CartPole-v1", seed=42, max_steps=100 if QUICK else 500)
        render.show(frames)
        """),
        md("""
        REINFORCE's policy network outputs one logit per action (the policy is their softmax); two hidden
        layers of 32 units for CartPole.
        """),
        code("""
        cfg = PolicyGradientConfig(env="CartPole-v1", iterations=8 if QUICK else 200,
                                   eval_episodes=10 if QUICK else 100, seed=1)
        print(pg.resolved(cfg))
        pg.build_policy_model(4, 2, hidden_units=32).summary()
        """),
        md("## Train\n\nEach iteration plays 16 episodes in lockstep and takes one compiled gradient step."),
        code("""
        out = pg.train(cfg)
        print(out["evaluation"].summary(), f"after {out['episodes']} episodes, {out['seconds']:.0f}s")
        """),
        md("## Visualise\n\nThe learning curve (mean training return per iteration) and the trained policy playing:"),
        code("""
        path = RUN_DIR / "learning_curve.png"
        plot_learning_curve(path, "REINFORCE on CartPole-v1", returns=out["history"], returns_label="mean training return",
                            window=10, xlabel="iteration", target=out["config"].target)
        display(Image(filename=str(path)))
        """),
        code("""
        agent = out["agent"]
        frames = render.record_episode(agent.greedy_policy(), "CartPole-v1", seed=10_001, max_steps=100 if QUICK else 500)
        render.write_gif(frames, RUN_DIR / "reinforce.gif")
        render.show(frames)
        """),
    ],
    expects=(IMAGE, ANIMATION),
)

# ----------------------------------------------------------------------------------------------
# 05 DQN on CartPole
# ----------------------------------------------------------------------------------------------

DQN = notebook(
    "05_dqn_cartpole", "Deep Q-Networks on CartPole: DQN, Double, Dueling (HOML, Keras and PyTorch tutorials)",
    """
    A Q-network estimates the return of each action; it learns from a replay buffer of transitions
    towards the TD target `r + gamma * max_a' Q_target(s', a')`, bootstrapping **only when the episode
    did not terminate** (a time-limit truncation still has a future). Double DQN picks `a'` with the
    online network; Dueling DQN splits the head into a state value and advantages. HOML's agent balances
    CartPole after about 600 episodes; the PyTorch tutorial uses a soft target update (TAU 0.005) and an
    exponential epsilon. Code: `agents/dqn.py` (the agent), `agents/dqn_train.py` (the loop), `agents/networks.py`,
    `agents/replay.py`; options: `agents/configs.py`.
    """,
    """
    from agents import dqn, dqn_train, evaluation, render
    from agents.configs import DQNConfig
    from keras_impl import runtime
    from keras_impl.plotting import plot_learning_curve

    print(runtime.device_summary())
    """,
    [
        md("## Model\n\nThe TD target is a pure function (terminated transitions do not bootstrap):"),
        code("""
        print(dqn.td_target(np.array([1.0, 1.0]), np.array([10.0, 10.0]), np.array([0.0, 1.0]), 0.9))  # [10, 1]
        cfg = DQNConfig(
            env="CartPole-v1", variant="double",
            total_timesteps=3_000 if QUICK else 50_000, learning_starts=500 if QUICK else 1_000,
            hidden=(64, 64) if QUICK else (256, 256), eval_interval=1_000 if QUICK else 2_000,
            eval_episodes=10 if QUICK else 100, checkpoint_every=20 if QUICK else 50, seed=0)
        """),
        md("The exploration schedule (linear by step, as in SB3's tuned CartPole settings):"),
        code("""
        steps = np.arange(0, cfg.total_timesteps, 50)
        plt.figure(figsize=(5, 3))
        plt.plot(steps, [dqn.epsilon_at(cfg, int(s), 0) for s in steps])
        plt.xlabel("env step"); plt.ylabel("epsilon"); plt.title("exploration")
        plt.show()
        """),
        md("## Train\n\nCheckpoints (with the replay buffer) go to the run folder; `resume=True` continues a run."),
        code("""
        agent, state = dqn_train.train(cfg, RUN_DIR / "dqn")
        print(f"{state.episode} episodes, {state.global_step} env steps, {state.train_seconds:.0f}s training")
        """),
        md("## Visualise\n\nReturn per episode, its 100-episode mean and the greedy evaluations:"),
        code("""
        evals = np.asarray(state.evals, dtype=float).reshape(-1, 5)  # [step, episode, mean, std, episodes]
        path = plot_learning_curve(RUN_DIR / "learning_curve.png", f"CartPole-v1 {cfg.variant}", returns=state.returns,
                                   points={"greedy evaluation mean": (evals[:, 1], evals[:, 2])}, target=475)
        display(Image(filename=str(path)))
        result = evaluation.evaluate(agent.greedy_policy, "CartPole-v1", episodes=10 if QUICK else 100,
                                     seed=evaluation.SELECT_SEED)
        print(result.summary())
        """),
        code("""
        frames = render.record_episode(agent.greedy_policy, "CartPole-v1", seed=evaluation.SELECT_SEED,
                                       max_steps=100 if QUICK else 500)
        render.show(frames)
        """),
    ],
    expects=(IMAGE, ANIMATION),
)

# ----------------------------------------------------------------------------------------------
# 06 FrozenLake
# ----------------------------------------------------------------------------------------------

FROZENLAKE = notebook(
    "06_frozenlake", "FrozenLake 4x4 with a DQN (exam part 3)",
    """
    `FrozenLake-v1`, 4x4, `is_slippery=False`: walk from S to G without falling into a hole. The exam's
    agent keeps a deque replay buffer of 50,000 transitions and a Q-network whose first layer is an
    `Embedding` (states are categories, not numbers), prints a log line every 500 episodes (episode,
    experiences, score, play time, epsilon) and is done when the mean score of the last 100 episodes
    reaches 0.9 (the course needed **2,832 episodes**). Unlike the course, each sample bootstraps on its
    *own* `terminated` flag. Code: `agents/frozenlake.py`.
    """,
    """
    from agents import evaluation, frozenlake, render
    from agents.configs import FrozenLakeConfig
    from agents.envs import make_env
    from keras_impl.plotting import plot_learning_curve
    """,
    [
        md("## Model\n\nThe lake (S start, F frozen, H hole, G goal) and the agent's q_net: an `Embedding` row per state, then one Q-value per action."),
        code("""
        cfg = FrozenLakeConfig(episodes=300 if QUICK else 3000, eval_episodes=100 if QUICK else 1000,
                               log_every=100 if QUICK else 500, seed=0)
        env = make_env(frozenlake.ENV_ID, render=True, **cfg.env_kwargs)
        env.reset(seed=0)
        plt.figure(figsize=(3, 3))
        plt.imshow(env.render())
        plt.axis("off")
        plt.show()
        frozenlake.FrozenLakeAgent(env, cfg).q_net.summary()
        env.close()
        """),
        md("## Train\n\nThe course's loop (`act` -> `env.step` -> `save_experience` -> `learn`) and its log line; it stops once cleared."),
        code("""
        agent, cleared_at = frozenlake.train(cfg)
        print("cleared after", cleared_at, "episodes (the course: 2,832)")
        """),
        md("## Visualise\n\nScore per episode and its 100-episode mean, the greedy success rate, and the trained agent walking:"),
        code("""
        path = plot_learning_curve(RUN_DIR / "learning_curve.png", "FrozenLake 4x4", returns=agent.scores,
                                   returns_label="score per episode", target=cfg.clear_score,
                                   target_label="clear condition", ylabel="score")
        display(Image(filename=str(path)))
        result = evaluation.evaluate(agent.greedy_policy, frozenlake.ENV_ID, episodes=cfg.eval_episodes,
                                     seed=evaluation.SELECT_SEED, env_kwargs=cfg.env_kwargs)
        print(result.summary())
        """),
        code("""
        frames = render.record_episode(agent.greedy_policy, frozenlake.ENV_ID, seed=evaluation.SELECT_SEED,
                                       max_steps=100, env_kwargs=cfg.env_kwargs)
        render.show(frames, interval=300)
        """),
    ],
    expects=(IMAGE, ANIMATION),
)

# ----------------------------------------------------------------------------------------------
# 07 TF-Agents Breakout
# ----------------------------------------------------------------------------------------------

TFA = notebook(
    "07_tfa_breakout", "TF-Agents DQN on Atari Breakout (HOML ch. 18)",
    """
    HOML's TF-Agents pipeline: `BreakoutNoFrameskip-v4` with Atari preprocessing (grayscale 84x84, frame
    skip 4, FIRE at start and after a lost life, a stack of 4 frames), a conv `QNetwork` (32x8x8/4,
    64x4x4/2, 64x3x3/1, 512), RMSProp 2.5e-4, epsilon decaying 1.0 -> 0.01, target update every 2,000
    steps, a `TFUniformReplayBuffer`, drivers, metrics, checkpoints and a saved policy. HOML reports an
    average return of about **7.8** after ~200k agent steps (humans ~30). On 2 CPU cores kcourse's run
    passed it only after about 675k agent steps (2.7M frames: about 2 hours at the 91 agent steps/s
    this machine trains with, evaluations included, resumed across sessions; `docs/tfa.md`), so with
    `QUICK` this is a smoke run of 100 iterations. Code: `agents/tfa/`, `agents/atari.py`; options:
    `agents/configs.py` (`TfaDqnConfig` and its presets).
    """,
    """
    import dataclasses

    from absl import logging as absl_logging

    from agents import render
    from agents.atari import make_breakout_env
    from agents.configs import TfaDqnConfig
    from agents.tfa.pipeline import train_eval  # stops with the fix if tf.keras is not Keras 2 (TF-Agents needs it)
    from keras_impl import process, runtime
    from keras_impl.config import resolve

    process.install_noise_filters()  # TF-Agents' own warnings (the `kcourse` command line does the same)
    print(runtime.device_summary())
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")  # TF-Agents 0.19 on TF 2.21: deprecation warnings we cannot act on
    absl_logging.set_verbosity(absl_logging.ERROR)
    """,
    [
        md("## Model\n\nThe preprocessed environment: what the agent sees is a stack of 4 grayscale 84x84 frames."),
        code("""
        env = make_breakout_env(seed=0)
        obs, _ = env.reset(seed=0)
        for _ in range(20):
            obs, *_ = env.step(env.action_space.sample())
        print("observation", obs.shape, obs.dtype, "actions", env.unwrapped.get_action_meanings())
        env.close()
        fig, axes = plt.subplots(1, 4, figsize=(10, 2.8))
        for i, ax in enumerate(axes):
            ax.imshow(obs[:, :, i], cmap="gray")
            ax.set_title(f"frame t-{3 - i}")
            ax.axis("off")
        plt.show()
        """),
        md("The configuration: HOML's hyperparameters (the `breakout` preset) or the smoke-test budget (`quick`)."),
        code("""
        cfg = resolve(TfaDqnConfig, {"env": "breakout", "seed": 0}, quick=QUICK)
        if QUICK:  # half of `kcourse run tfa-dqn --env breakout --quick`: the notebook test's budget
            cfg = dataclasses.replace(cfg, iterations=100, eval_interval=100, checkpoint_interval=100)
        print(cfg)
        """),
        md("## Train\n\n`train_eval` collects with a driver, trains from the replay buffer, checkpoints, exports the greedy policy with `PolicySaver` and evaluates the exported policy."),
        code("""
        result = train_eval(cfg, RUN_DIR / "breakout")
        print(result["headline"])
        """),
        md("## Visualise\n\nThe learning curve and the trained agent (from the exported policy):"),
        code("""
        display(Image(filename=str(RUN_DIR / "breakout" / "learning_curve.png")))
        """),
        code("""
        import imageio.v2 as imageio

        frames = imageio.mimread(RUN_DIR / "breakout" / "agent.gif")
        render.show(frames)
        """),
    ],
    expects=(IMAGE, ANIMATION),
)

# ----------------------------------------------------------------------------------------------
# 08 MovieLens RL
# ----------------------------------------------------------------------------------------------

MOVIELENS_RL = notebook(
    "08_movielens_rl", "Recommending films as a reinforcement-learning problem",
    """
    The course's MovieLens RL notebook as a Gymnasium environment, done right: an episode recommends
    `k` distinct films from a candidate set to one user; the reward is the user's observed rating or,
    for a film they have not rated, the trained recommender's prediction. User *indices* and MovieLens
    *ids* are kept apart. Agents: random, most popular, greedy by the recommender, tabular Q-learning
    and a DQN with action masking. (The course notebook has no working result: its episodes never end.)
    Code: `agents/movielens_env.py`, `agents/movielens_rl.py`.
    """,
    """
    import pandas as pd

    from agents import movielens_env
    from agents import movielens_rl as mrl
    from agents.configs import MovieLensRLConfig
    """,
    [
        md("## Model\n\nData, the recommender that fills in unseen ratings, and the environment's tables:"),
        code("""
        # data="synthetic" (MovieLens CSV layout, generated); set data= to a MovieLens folder for real
        # ratings, e.g. str(movielens.download("ml-latest-small", "data")) from keras_impl.movielens.
        cfg = MovieLensRLConfig(
            synthetic_size="small" if QUICK else "course", candidates=10 if QUICK else 100, k=3 if QUICK else 10,
            eval_users=100 if QUICK else 500, rec_epochs=3 if QUICK else 2, rec_batch_size=256 if QUICK else 512,
            dqn_episodes=400 if QUICK else 6000, q_episodes=1000 if QUICK else 20_000, seed=0)
        (RUN_DIR / "checkpoints").mkdir(exist_ok=True)  # prepare() saves the recommender there
        tables, train_users, eval_users, info = mrl.prepare(cfg, RUN_DIR)
        """),
        md("One episode with the greedy-by-recommender policy, rendered as text:"),
        code("""
        env = movielens_env.MovieLensRecommendationEnv(tables, k=cfg.k, render_mode="ansi")
        obs, info_ = env.reset(seed=0, options={"user_index": int(eval_users[0])})
        terminated = False
        while not terminated:
            action = int(np.argmax(np.where(info_["action_mask"] == 1, tables.predicted[env.user_index], -np.inf)))
            obs, reward, terminated, truncated, info_ = env.step(action)
        print(env.render())
        """),
        md("## Train\n\nThe baselines need no training; Q-learning and the DQN train on the training users."),
        code("""
        rows, curves = {}, {}
        kwargs = {"k": cfg.k, "reward": cfg.reward, "unrated_reward": cfg.unrated_reward, "repeat": "raise"}
        for name in ("random", "popular", "greedy", "q-learning", "dqn"):
            policy, facts = mrl.run_agent(name, cfg, tables, train_users, seed=cfg.seed)
            metrics = mrl.evaluate(tables, policy, eval_users, kwargs, seed=cfg.seed)
            metrics.update({key: facts[key] for key in ("train_seconds", "states") if key in facts})
            rows[name] = [metrics]
            if "curve" in facts:
                curves[name] = facts["curve"]
        # Not an agent: the top-k of the environment's own reward table, an upper bound for any policy.
        oracle = mrl.oracle_agent(tables, cfg.reward, cfg.unrated_reward)
        rows["oracle (upper bound)"] = [mrl.evaluate(tables, oracle, eval_users, kwargs, seed=cfg.seed)]
        """),
        md("## Visualise\n\nEvery agent on the same held-out users:"),
        code("""
        greedy_reward = rows["greedy"][0]["avg_reward"]
        display(Markdown(mrl.format_table(rows, greedy_reward)))
        """),
        code("""
        fig, axes = plt.subplots(1, len(curves), figsize=(5 * len(curves), 3.5), squeeze=False)
        for ax, (name, curve) in zip(axes[0], curves.items()):
            ax.plot(curve)
            ax.axhline(greedy_reward, color="k", ls="--", lw=1, label="greedy (evaluation)")
            ax.set(title=name, xlabel="batch of training episodes", ylabel="mean reward per recommendation")
            ax.legend()
        plt.show()
        """),
    ],
    expects=(IMAGE,),
)

NOTEBOOKS = {
    "01_recommender": RECOMMENDER,
    "02_hello_rnn_lstm": HELLO,
    "03_tabular_rl": TABULAR,
    "04_policy_gradients": POLICY_GRADIENTS,
    "05_dqn_cartpole": DQN,
    "06_frozenlake": FROZENLAKE,
    "07_tfa_breakout": TFA,
    "08_movielens_rl": MOVIELENS_RL,
}


def render_notebook(nb: nbformat.NotebookNode) -> str:
    """The notebook's file text (validated against the nbformat 4 schema), ending in a newline."""
    nbformat.validate(nb)
    text = nbformat.writes(nb, version=4)
    return text if text.endswith("\n") else text + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a notebook differs from this script")
    parser.add_argument("--out", default=str(OUT_DIR), help="output folder (default: notebooks/)")
    args = parser.parse_args(argv)
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    stale = []
    for name, nb in NOTEBOOKS.items():
        path = out_dir / f"{name}.ipynb"
        text = render_notebook(nb)
        if args.check:
            if not path.is_file() or path.read_text(encoding="utf-8") != text:
                stale.append(path.name)
            continue
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path}")
    if stale:
        print(f"out of date (run python scripts/make_notebooks.py): {', '.join(stale)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
