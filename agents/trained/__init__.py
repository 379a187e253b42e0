"""Small trained policies committed with the package, for policy-regression tests.

Each sub-folder was written by :func:`agents.policy_files.save_policy` (``policy.json`` with the env,
the training config and its evaluation, plus ``model.keras``) and loads with
:func:`agents.policy_files.load_policy`::

    from agents.evaluation import assert_policy_return
    from agents.policy_files import load_policy
    from agents.trained import policy_path

    policy, meta = load_policy(policy_path("cartpole-v1-dqn"))
    assert_policy_return(policy, meta["env_id"], min_mean=475, episodes=100, seed=0)

How each one was trained (the exact command) is in ``docs/dqn.md``.
"""
from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent


def available() -> list[str]:
    """Names of the committed policies."""
    return sorted(p.name for p in HERE.iterdir() if (p / "policy.json").is_file())


def policy_path(name: str) -> Path:
    """The folder of committed policy ``name``: one of :func:`available`, never a path (``../x`` is refused)."""
    names = available()
    if name not in names:
        raise ValueError(f"Received an invalid value for argument `name`: no committed policy {name!r}; "
                         f"available: {', '.join(names)}")
    return HERE / name
