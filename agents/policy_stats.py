"""Anytime-valid tests on a policy's mean return: betting confidence sequences (pure NumPy).

A policy-regression test looks at a policy's returns after every batch of episodes and stops as
soon as the evidence settles the question "is the mean return at least ``threshold``?". Looking
again and again at a fixed-sample interval inflates its error rate; this module uses tests that
are valid at every episode at once, so a batch can end the test the moment it is settled.

The method is "testing by betting" (Waudby-Smith & Ramdas, *Estimating means of bounded random
variables by betting*, JRSS-B 2023, section 5, the aGRAPA bets). Returns are
first mapped to ``[0, 1]`` with the env's known range. To test "mean > m" a gambler starts with
capital 1 and bets ``lam_t * (x_t - m)`` on each episode:

    K_t(m) = prod_{i <= t} (1 + lam_i * (x_i - m)),    0 <= lam_i <= c / m  (never bankrupt),

where ``lam_i`` only uses episodes before ``i``. If the true mean is ``<= m`` the capital is a
non-negative supermartingale, and Ville's inequality bounds the chance that it *ever* reaches
``1 / alpha`` by ``alpha`` -- whatever the number of looks. So

* **pass** when the "above" capital at the threshold reaches ``1 / alpha``,
* **fail** when the mirror "below" capital (bets on ``m - x_t``) does,

and each wrong verdict has probability at most ``alpha``, with no union bound over the looks. The
set of ``m`` no capital has rejected so far is a confidence sequence: the interval reported.

Hand-written on purpose: ``confseq`` (the paper's authors' package) ships these bets but builds a
C++ extension, and the test is five small NumPy functions; a plugin loaded by every pytest run of a
project should not add a compiled dependency. The formulas are the paper's, checked against
numbers worked by hand in ``tests/test_policy_plugin.py``.

Example:
    >>> import numpy as np
    >>> x = np.ones(30)                      # 30 episodes at the top of the range
    >>> first_verdict(x, threshold=0.8, alpha=0.01)
    ('pass', 30)
"""
from __future__ import annotations

import math

import numpy as np

TRUNCATION = 0.75  # c: bet at most c/m of the capital (the paper's suggestion; c = 1 risks ruin on one 0)


def normalize(returns, low: float, high: float) -> np.ndarray:
    """Map returns to ``[0, 1]`` with the range ``[low, high]``; a return outside it is an error.

    A bound that does not hold would make every verdict invalid, so it is checked, not clipped.
    """
    x = np.asarray(returns, dtype=np.float64)
    if not high > low:
        raise ValueError(f"Received an invalid value for argument `return_range`: expected low < high, got [{low}, {high}]")
    outside = (x < low) | (x > high)
    if outside.any():
        bad = x[outside].ravel()[0]
        raise ValueError(f"a return of {bad:g} lies outside the return range [{low:g}, {high:g}]: "
                         f"declare the env's true range with return_range = [low, high]")
    return (x - low) / (high - low)


def indicator(returns, at_least: float) -> np.ndarray:
    """``1.0`` for each return ``>= at_least``, else ``0.0``: the quantile criterion's data.

    "At least a share ``q`` of episodes score ``>= at_least``" is "the mean of this indicator is
    ``>= q``", a mean in ``[0, 1]`` whatever the returns' range: the same betting test
    (:func:`first_verdict`, :func:`confidence_interval`) applies with no return range to declare,
    so a heavy-tailed return (Breakout's, bounded only by 864) is tested as easily as any other.
    """
    return (np.asarray(returns, dtype=np.float64) >= at_least).astype(np.float64)


def running_estimates(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The mean and variance estimates *before* each episode: ``(mu_{t-1}, sigma2_{t-1})`` for t = 1..n.

    ``mu_t = (1/2 + sum_{i<=t} x_i) / (t + 1)`` and ``sigma2_t = (1/4 + sum_{i<=t} (x_i - mu_i)^2) / (t + 1)``,
    so ``mu_0 = 1/2`` and ``sigma2_0 = 1/4`` (the paper's regularised estimates). ``x``: ``[..., n]``.
    """
    x = np.asarray(x, dtype=np.float64)
    t = np.arange(1, x.shape[-1] + 1, dtype=np.float64)
    mu = (0.5 + np.cumsum(x, axis=-1)) / (t + 1)
    sigma2 = (0.25 + np.cumsum((x - mu) ** 2, axis=-1)) / (t + 1)

    def before(values, first):
        return np.concatenate([np.full(x.shape[:-1] + (1,), first), values[..., :-1]], axis=-1)

    return before(mu, 0.5), before(sigma2, 0.25)


def bets(x: np.ndarray, m, side: str, c: float = TRUNCATION) -> np.ndarray:
    """The bet sizes ``lam_t`` (t = 1..n) on "mean above m" (``side="above"``) or "below m".

    aGRAPA (the paper's approximate growth-rate-optimal bet): with ``g = mu_{t-1} - m`` (above) or
    ``m - mu_{t-1}`` (below), ``lam_t = g / (sigma2_{t-1} + g^2)``, clipped to ``[0, c/m]`` (above) or
    ``[0, c/(1-m)]`` (below). It bets more the clearer the gap, so a policy far from the threshold
    is settled in few episodes; it only uses episodes before ``t``.
    """
    mu, sigma2 = running_estimates(x)
    m = np.asarray(m, dtype=np.float64)
    if side not in ("above", "below"):
        raise ValueError(f"side must be 'above' or 'below', got {side!r}")
    gap = mu - m if side == "above" else m - mu
    with np.errstate(divide="ignore"):
        cap = c / m if side == "above" else c / (1 - m)
    return np.clip(gap / (sigma2 + gap**2), 0.0, cap)


def log_capital(x: np.ndarray, m, side: str, c: float = TRUNCATION) -> np.ndarray:
    """``log K_t(m)`` for t = 1..n: the capital of betting that the mean is above (``side="above"``)
    or below (``side="below"``) ``m``. ``x``: ``[..., n]`` in ``[0, 1]``; ``m``: a number or an
    array broadcasting against ``x[..., :1]`` (e.g. a grid ``[G, 1]``)."""
    x = np.asarray(x, dtype=np.float64)
    sign = 1.0 if side == "above" else -1.0
    return np.cumsum(np.log1p(sign * bets(x, m, side, c) * (x - m)), axis=-1)


def first_verdict(x, threshold: float, alpha: float, c: float = TRUNCATION):
    """The first episode at which the evidence settles "mean >= threshold" (all in ``[0, 1]`` units).

    Returns ``(verdict, episodes)``: ``("pass", t)`` when the "above" capital first reaches ``1/alpha``
    at episode ``t``, ``("fail", t)`` for the "below" capital, ``(None, n)`` when neither has yet.
    A 1-D ``x`` gives one pair; for ``x`` of shape ``[R, n]`` (R simulated runs) it returns two
    arrays: verdict codes (+1 pass, -1 fail, 0 none) and episodes.
    """
    x = np.asarray(x, dtype=np.float64)
    bar = math.log(1 / alpha)
    n = x.shape[-1]
    hits = {}
    for side in ("above", "below"):
        crossed = log_capital(x, threshold, side, c) >= bar
        hits[side] = np.where(crossed.any(axis=-1), crossed.argmax(axis=-1) + 1, n + 1)
    code = np.where(hits["above"] < hits["below"], 1, np.where(hits["below"] < hits["above"], -1, 0))
    code = np.where(np.minimum(hits["above"], hits["below"]) > n, 0, code)
    episodes = np.where(code == 0, n, np.minimum(hits["above"], hits["below"]))
    if x.ndim == 1:
        return {1: "pass", -1: "fail", 0: None}[int(code)], int(episodes)
    return code, episodes


def confidence_interval(x, alpha: float, c: float = TRUNCATION, grid: int = 2001) -> tuple[float, float]:
    """The ``[lower, upper]`` confidence sequence on the mean after the episodes ``x`` (``[0, 1]`` units).

    The set of means no capital has rejected lies between two grid points: ``lower`` is the grid
    point just below the smallest ``m`` whose "above" capital never reached ``1/alpha`` (the last
    rejected one: the interval is rounded outward, never inward), ``upper`` the mirror. Each is a
    one-sided ``1 - alpha`` bound, valid at all times; the grid step is 1/2000 of the range.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.size == 0:
        return 0.0, 1.0
    bar = math.log(1 / alpha)
    m = np.linspace(0.0, 1.0, grid)[:, None]  # [G, 1]
    rejected_low = (log_capital(x, m, "above", c) >= bar).any(axis=-1)
    rejected_high = (log_capital(x, m, "below", c) >= bar).any(axis=-1)
    kept_low = np.flatnonzero(~rejected_low)
    kept_high = np.flatnonzero(~rejected_high)
    if not kept_low.size or not kept_high.size:  # every mean rejected on one side (cannot happen for alpha < 1)
        return (1.0, 1.0) if not kept_low.size else (0.0, 0.0)
    lower = m[max(kept_low[0] - 1, 0), 0]
    upper = m[min(kept_high[-1] + 1, grid - 1), 0]
    return float(lower), float(upper)
