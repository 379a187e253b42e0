"""Learning curves: one plotter for every trainer (DQN, FrozenLake, REINFORCE, TF-Agents).

Figures are drawn on a ``matplotlib.figure.Figure`` (no pyplot, no backend switch), so saving a
plot from a notebook leaves the notebook's own matplotlib backend alone.

Example:
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "curve.png"
    >>> _ = plot_learning_curve(path, "demo", returns=[1, 2, 3, 4], target=3)
    >>> path.is_file()
    True
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure


def moving_mean(values, window: int = 100) -> np.ndarray:
    """Mean of the last ``window`` values at each index (fewer at the start).

    Example:
        >>> moving_mean([1, 3, 5, 7], window=2).tolist()
        [1.0, 2.0, 4.0, 6.0]
    """
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return values
    cums = np.cumsum(np.insert(values, 0, 0.0))
    idx = np.arange(1, values.size + 1)
    lo = np.maximum(idx - window, 0)
    return (cums[idx] - cums[lo]) / (idx - lo)


def plot_learning_curve(path: str | os.PathLike, title: str, *, returns: Sequence[float] = (),
                        returns_label: str = "return per episode",
                        points: Mapping[str, tuple[Sequence[float], Sequence[float]]] | None = None,
                        target: float | None = None, target_label: str = "target",
                        xlabel: str = "episode", ylabel: str = "return", window: int = 100) -> Path:
    """Save a learning curve.

    Args:
        path: the image file.
        title: the plot's title.
        returns: one value per episode (or iteration): drawn faintly with its ``window`` moving mean.
        returns_label: the legend of ``returns``.
        points: more curves ``{label: (x values, y values)}``, e.g. greedy evaluations.
        target: a horizontal reference line (the course's target), labelled ``target_label``.
        xlabel, ylabel: axis labels.
        window: the moving-mean window.
    """
    fig = Figure(figsize=(7, 4))
    ax = fig.subplots()
    if len(returns):
        x = np.arange(1, len(returns) + 1)
        ax.plot(x, returns, color="tab:blue", alpha=0.35, lw=0.8, label=returns_label)
        ax.plot(x, moving_mean(returns, window), color="tab:blue", lw=2, label=f"{window}-point mean")
    colors = iter(("tab:red", "tab:green", "tab:purple", "tab:orange"))
    for label, (xs, ys) in (points or {}).items():
        ax.plot(xs, ys, "o-", ms=3, color=next(colors, None), label=label)
    if target is not None:
        ax.axhline(target, color="gray", ls="--", lw=1, label=f"{target_label} {target:g}")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    return Path(path)
