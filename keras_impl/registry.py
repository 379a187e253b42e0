"""Exercises and extra CLI commands register themselves here.

An exercise is a function ``run(config, run_dir) -> dict`` plus its config dataclass::

    from keras_impl.registry import exercise

    @exercise("hello", config=HelloConfig, section="supervised",
              summary="next-character RNN/LSTM on 'hello'",
              reference="100% accuracy (course)", quick={"epochs": 50})
    def run_hello(cfg: HelloConfig, run_dir: Path) -> dict:
        ...
        return {"headline": "6/6 variants at 100% accuracy", "metrics": {...}}

The returned dict may hold ``headline`` (one line for ``kcourse list``/the report's "ours"
column), ``metrics`` (numbers) and ``artifacts`` (paths relative to ``run_dir`` of plots and GIFs).

The CLI imports the modules in :data:`EXERCISE_MODULES`; a module that does not exist yet is
skipped, any other import error is raised.
"""
from __future__ import annotations

import dataclasses
import importlib
from pathlib import Path
from typing import Any, Callable

# Order = order in `kcourse list` and in the report.
EXERCISE_MODULES = (
    "keras_impl.linreg",
    "keras_impl.recommender",
    "keras_impl.movielens",
    "keras_impl.hello",
    "agents.tabular",
    "agents.policies",
    "agents.policy_gradient",
    "agents.evaluation",
    "agents.dqn",
    "agents.frozenlake",
    "agents.tfa",
    "agents.movielens_env",
    "agents.movielens_rl",
)


@dataclasses.dataclass(frozen=True)
class Exercise:
    """A registered exercise."""

    name: str
    run: Callable[[Any, Path], dict]
    config: type
    summary: str
    reference: str
    section: str = ""
    quick: dict = dataclasses.field(default_factory=dict)
    requires: tuple = ()  # importable module names (extras), e.g. ("ale_py",)
    module: str = ""

    def missing_requirements(self) -> list[str]:
        """Names in ``requires`` that cannot be imported here."""
        missing = []
        for name in self.requires:
            try:
                importlib.import_module(name)
            except Exception:
                missing.append(name)
        return missing


@dataclasses.dataclass(frozen=True)
class Command:
    """An extra top-level subcommand (``kcourse eval``, ``kcourse data``...)."""

    name: str
    help: str
    configure: Callable  # configure(subparser) -> None; set defaults(handler=fn(args) -> int)


_EXERCISES: dict[str, Exercise] = {}
_COMMANDS: dict[str, Command] = {}
_loaded = False


def exercise(name: str, *, config: type, summary: str, reference: str, section: str = "",
             quick: dict | None = None, requires: tuple = ()):
    """Decorator registering ``run(config, run_dir) -> dict`` as exercise ``name``."""
    if not dataclasses.is_dataclass(config):
        raise TypeError(f"exercise {name!r}: config must be a dataclass, got {config!r}")
    field_names = {f.name for f in dataclasses.fields(config)}
    if "seed" not in field_names:
        raise TypeError(f"exercise {name!r}: config {config.__name__} needs a `seed` field")
    for key in quick or {}:
        if key not in field_names:
            raise TypeError(f"exercise {name!r}: quick override {key!r} is not a field of {config.__name__}")

    def decorate(fn):
        _EXERCISES[name] = Exercise(
            name=name, run=fn, config=config, summary=summary, reference=reference,
            section=section, quick=dict(quick or {}), requires=tuple(requires), module=fn.__module__,
        )
        return fn

    return decorate


def command(name: str, *, help: str):
    """Decorator registering ``configure(subparser)`` for a top-level subcommand ``name``."""

    def decorate(configure):
        _COMMANDS[name] = Command(name=name, help=help, configure=configure)
        return configure

    return decorate


def load_all() -> None:
    """Import every module in :data:`EXERCISE_MODULES` (missing ones are skipped)."""
    global _loaded
    if _loaded:
        return
    for module in EXERCISE_MODULES:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as err:
            if err.name != module:  # the module exists but something it imports is missing
                raise
    _loaded = True


def _module_rank(module: str) -> int:
    """Position of ``module`` (or its parent package) in :data:`EXERCISE_MODULES`."""
    for rank, name in enumerate(EXERCISE_MODULES):
        if module == name or module.startswith(name + "."):
            return rank
    return len(EXERCISE_MODULES)


def exercises() -> dict[str, Exercise]:
    """All registered exercises, in :data:`EXERCISE_MODULES` order (then registration order).

    Modules import each other, so registration order alone depends on import side effects.
    """
    load_all()
    order = {name: i for i, name in enumerate(_EXERCISES)}
    ranked = sorted(_EXERCISES.values(), key=lambda ex: (_module_rank(ex.module), order[ex.name]))
    return {ex.name: ex for ex in ranked}


def commands() -> dict[str, Command]:
    """All registered extra subcommands."""
    load_all()
    return dict(_COMMANDS)


def get(name: str) -> Exercise:
    """The exercise called ``name``.

    Raises:
        ValueError: no such exercise; the message lists the registered names.
    """
    found = exercises()
    if name not in found:
        raise ValueError(f"unknown exercise {name!r}; available: {', '.join(found)} (see `kcourse list`)")
    return found[name]
