"""Tabular methods on HOML's toy problems: a Markov chain and the 3-state MDP (HOML ch. 18).

* :func:`sample_markov_chain` walks HOML's 4-state Markov chain (state 3 is terminal).
* :data:`HOML_MDP` is the 3-state, 3-action MDP; :func:`q_value_iteration` solves it from its
  model (gamma 0.90, 50 iterations: Q(s0) = [18.92, 17.03, 13.62], policy [0, 0, 1]; with
  gamma 0.95 the action in s1 becomes 2, through the fire);
* :func:`q_learning` learns the same Q-values from sampled transitions with a random
  exploration policy and HOML's learning-rate decay ``alpha = alpha0 / (1 + t * decay)``;
* :func:`plot_convergence` draws Q(s0, a0) against iterations for both (HOML's figure).

Example:
    >>> from agents.tabular import HOML_MDP, q_value_iteration
    >>> q, _ = q_value_iteration(HOML_MDP, gamma=0.90, iterations=50)
    >>> q[0].round(2).tolist()
    [18.92, 17.03, 13.62]
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from agents.configs import MarkovConfig, QLearningConfig, QValueIterationConfig

# ----------------------------------------------------------------------------------------------
# Markov chain
# ----------------------------------------------------------------------------------------------

# HOML's chain: from s0 to s0, s1, s2, s3; ...; s3 is absorbing (terminal).
MARKOV_CHAIN = np.array([
    [0.7, 0.2, 0.0, 0.1],
    [0.0, 0.0, 0.9, 0.1],
    [0.0, 1.0, 0.0, 0.0],
    [0.0, 0.0, 0.0, 1.0],
])


def sample_markov_chain(transition_probabilities=MARKOV_CHAIN, start: int = 0, max_steps: int = 50,
                        rng: np.random.Generator | None = None, terminal: int | None = 3) -> list[int]:
    """One walk through a Markov chain.

    Args:
        transition_probabilities: ``[S, S']``, rows sum to 1.
        start: the first state.
        max_steps: the most states in the walk (HOML: 50).
        rng: generator to sample with (default: a fresh unseeded one).
        terminal: stop after reaching this state (None: never).

    Returns:
        The visited states, ``start`` first.
    """
    probs = np.asarray(transition_probabilities, dtype=np.float64)
    if probs.ndim != 2 or probs.shape[0] != probs.shape[1] or not np.allclose(probs.sum(axis=1), 1.0):
        raise ValueError("Received an invalid value for argument `transition_probabilities`: expected a square "
                         f"matrix whose rows sum to 1, got shape {probs.shape}")
    rng = rng or np.random.default_rng()
    states = [int(start)]
    while len(states) < max_steps and states[-1] != terminal:
        states.append(int(rng.choice(len(probs), p=probs[states[-1]])))
    return states


# ----------------------------------------------------------------------------------------------
# The 3-state MDP
# ----------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class MDP:
    """A finite MDP given by its model.

    Attributes:
        transitions: ``[S, A, S']`` probabilities (zero rows for impossible actions).
        rewards: ``[S, A, S']`` rewards.
        possible_actions: the actions allowed in each state.
    """

    transitions: np.ndarray
    rewards: np.ndarray
    possible_actions: tuple

    @property
    def n_states(self) -> int:
        return self.transitions.shape[0]

    @property
    def n_actions(self) -> int:
        return self.transitions.shape[1]

    def initial_q(self) -> np.ndarray:
        """Zeros for the possible actions, ``-inf`` for the impossible ones (HOML)."""
        q = np.full((self.n_states, self.n_actions), -np.inf)
        for state, actions in enumerate(self.possible_actions):
            q[state, list(actions)] = 0.0
        return q

    def step(self, state: int, action: int, rng: np.random.Generator) -> tuple[int, float]:
        """Sample ``(next_state, reward)`` from the model."""
        if action not in self.possible_actions[state]:
            raise ValueError(f"Received an invalid value for argument `action`: {action} is not possible in state "
                             f"{state} (possible: {list(self.possible_actions[state])})")
        next_state = int(rng.choice(self.n_states, p=self.transitions[state, action]))
        return next_state, float(self.rewards[state, action, next_state])


def _homl_mdp() -> MDP:
    nan = [0.0, 0.0, 0.0]  # HOML writes None for impossible actions
    transitions = np.array([
        [[0.7, 0.3, 0.0], [1.0, 0.0, 0.0], [0.8, 0.2, 0.0]],
        [[0.0, 1.0, 0.0], nan, [0.0, 0.0, 1.0]],
        [nan, [0.8, 0.1, 0.1], nan],
    ])
    rewards = np.array([
        [[+10, 0, 0], [0, 0, 0], [0, 0, 0]],
        [[0, 0, 0], [0, 0, 0], [0, 0, -50]],
        [[0, 0, 0], [+40, 0, 0], [0, 0, 0]],
    ], dtype=np.float64)
    return MDP(transitions, rewards, ((0, 1, 2), (0, 2), (1,)))


HOML_MDP = _homl_mdp()


def q_value_iteration(mdp: MDP = HOML_MDP, gamma: float = 0.90, iterations: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """Bellman optimality updates from the model: ``Q(s,a) = sum_s' T (R + gamma max_a' Q(s',a'))``.

    Returns:
        ``(Q [S, A], history [iterations, S, A])``; ``history[k]`` is Q *before* update ``k``
        (HOML's ``history1``), so ``history[0]`` is the initial table.
    """
    if not 0.0 <= gamma < 1.0:
        raise ValueError(f"Received an invalid value for argument `gamma`: expected a value in [0, 1), got {gamma!r}")
    q = mdp.initial_q()
    possible = np.isfinite(q)
    history = []
    for _ in range(iterations):
        history.append(q.copy())
        best_next = q.max(axis=1)  # [S'] value of the greedy policy
        target = np.sum(mdp.transitions * (mdp.rewards + gamma * best_next[None, None, :]), axis=2)  # [S, A]
        q = np.where(possible, target, -np.inf)
    return q, np.array(history)


def q_learning(mdp: MDP = HOML_MDP, gamma: float = 0.90, iterations: int = 10_000, alpha0: float = 0.05,
               decay: float = 0.005, seed: int = 42) -> tuple[np.ndarray, np.ndarray]:
    """Q-learning from sampled transitions with a uniformly random exploration policy.

    The learning rate decays as in HOML: ``alpha_t = alpha0 / (1 + t * decay)``.

    Returns:
        ``(Q [S, A], history [iterations, S, A])`` (``history[t]`` is Q before step ``t``).
    """
    rng = np.random.default_rng(seed)
    q = mdp.initial_q()
    history = np.empty((iterations, mdp.n_states, mdp.n_actions))
    # Draw all the random numbers at once (a call of rng.choice costs more than the update itself).
    u_action, u_next = rng.random(iterations), rng.random(iterations)
    cdf = np.cumsum(mdp.transitions, axis=2)  # [S, A, S']
    state = 0
    for t in range(iterations):
        history[t] = q
        actions = mdp.possible_actions[state]
        action = actions[int(u_action[t] * len(actions))]  # exploration policy: uniform
        next_state = min(int(np.searchsorted(cdf[state, action], u_next[t] * cdf[state, action, -1], side="right")),
                         mdp.n_states - 1)
        reward = mdp.rewards[state, action, next_state]
        next_value = q[next_state].max()  # greedy policy at the next step (off-policy)
        alpha = alpha0 / (1 + t * decay)
        q[state, action] = (1 - alpha) * q[state, action] + alpha * (reward + gamma * next_value)
        state = next_state
    return q, history


def greedy_policy(q: np.ndarray) -> np.ndarray:
    """``argmax_a Q(s, a)`` per state (impossible actions are ``-inf``, never chosen)."""
    return np.argmax(q, axis=1)


def plot_convergence(history_vi: np.ndarray, history_ql: np.ndarray, path: Path) -> None:
    """HOML's figure: Q(s0, a0) against iterations for Q-value iteration and Q-learning."""
    true_q = history_vi[-1, 0, 0]
    fig = Figure(figsize=(10, 4))
    axes = fig.subplots(1, 2, sharey=True)
    axes[0].set_ylabel("Q-Value$(s_0, a_0)$")
    for ax, title, history in zip(axes, ("Q-Value Iteration", "Q-Learning"), (history_vi, history_ql)):
        width = len(history)
        ax.plot([0, width], [true_q, true_q], "k--")
        ax.plot(np.arange(width), history[:, 0, 0], "b-", linewidth=2)
        ax.set_title(title)
        ax.set_xlabel("Iterations")
        ax.axis([0, width, 0, 24])
    fig.tight_layout()
    fig.savefig(path, dpi=80)


# ----------------------------------------------------------------------------------------------
# Exercises
# ----------------------------------------------------------------------------------------------


def run_markov(cfg: MarkovConfig, run_dir: Path) -> dict:
    rng = np.random.default_rng(cfg.seed)
    walks = [sample_markov_chain(MARKOV_CHAIN, 0, cfg.max_steps, rng) for _ in range(cfg.sequences)]
    lines = []
    for walk in walks:
        tail = "" if walk[-1] == 3 else " ..."
        lines.append("States: " + " ".join(map(str, walk)) + tail)
    print("\n".join(lines))
    (run_dir / "walks.txt").write_text("\n".join(lines) + "\n")
    ended = sum(w[-1] == 3 for w in walks)
    lengths = [len(w) for w in walks]
    return {"headline": f"{ended}/{len(walks)} walks reached s3; mean length {np.mean(lengths):.1f}",
            "reached": None,  # sampling a chain has no target
            "metrics": {"reached_terminal": ended, "mean_length": float(np.mean(lengths))},
            "artifacts": ["walks.txt"]}


def run_q_value_iteration(cfg: QValueIterationConfig, run_dir: Path) -> dict:
    q, history = q_value_iteration(HOML_MDP, cfg.gamma, cfg.iterations)
    q95, _ = q_value_iteration(HOML_MDP, 0.95, cfg.iterations)
    np.set_printoptions(precision=2, suppress=True)
    print(f"gamma {cfg.gamma}: Q =\n{q}\npolicy {greedy_policy(q).tolist()}")
    print(f"gamma 0.95: Q =\n{q95}\npolicy {greedy_policy(q95).tolist()}")
    np.save(run_dir / "q_values.npy", q)
    fig_path = run_dir / "q_value_iteration.png"
    _plot_single(history, fig_path, "Q-Value Iteration")
    return {"headline": f"gamma {cfg.gamma}: Q(s0)={np.round(q[0], 2).tolist()}, policy "
                        f"{greedy_policy(q).tolist()}; gamma 0.95: policy {greedy_policy(q95).tolist()}",
            "reached": greedy_policy(q95).tolist() == [0, 2, 1] and (cfg.gamma != 0.90 or (
                np.round(q[0], 2).tolist() == [18.92, 17.03, 13.62] and greedy_policy(q).tolist() == [0, 0, 1])),
            "metrics": {"q_s0": np.round(q[0], 4).tolist(), "policy": greedy_policy(q).tolist(),
                        "policy_gamma_0.95": greedy_policy(q95).tolist()},
            "artifacts": ["q_values.npy", "q_value_iteration.png"]}


def _plot_single(history: np.ndarray, path: Path, title: str) -> None:
    fig = Figure(figsize=(5, 3.5))
    ax = fig.subplots()
    for a in HOML_MDP.possible_actions[0]:
        ax.plot(history[:, 0, a], label=f"Q(s0, a{a})")
    ax.set_xlabel("Iterations")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=80)


def run_q_learning(cfg: QLearningConfig, run_dir: Path) -> dict:
    q, history = q_learning(HOML_MDP, cfg.gamma, cfg.iterations, cfg.alpha0, cfg.decay, cfg.seed)
    q_vi, history_vi = q_value_iteration(HOML_MDP, cfg.gamma, 50)
    np.set_printoptions(precision=2, suppress=True)
    print(f"Q-learning Q =\n{q}\npolicy {greedy_policy(q).tolist()}")
    print(f"Q-value iteration Q =\n{q_vi}\npolicy {greedy_policy(q_vi).tolist()}")
    plot_convergence(history_vi, history, run_dir / "q_value_plot.png")
    same = greedy_policy(q).tolist() == greedy_policy(q_vi).tolist()
    finite = np.isfinite(q)
    gap = float(np.max(np.abs(q[finite] - q_vi[finite])))
    return {"headline": f"Q-learning policy {greedy_policy(q).tolist()} "
                        f"({'same as' if same else 'differs from'} Q-value iteration); Q(s0)={np.round(q[0], 2).tolist()}",
            "reached": same,
            "metrics": {"policy": greedy_policy(q).tolist(), "same_policy_as_value_iteration": same,
                        "max_abs_gap_to_value_iteration": gap, "q_s0": np.round(q[0], 4).tolist()},
            "artifacts": ["q_value_plot.png"]}
