"""One config dataclass per pipeline; the command line is generated from it.

Declare fields with :func:`arg` so that the help text lives next to the default (CleanRL keeps
it in the field's docstring; dataclass fields cannot carry one, so it goes in ``metadata``)::

    @dataclasses.dataclass
    class DQNConfig:
        env: str = arg("CartPole-v1", "Gymnasium environment id")
        variant: str = arg("dqn", "which DQN", choices=("dqn", "double", "dueling", "dueling-double"))
        seed: int = arg(0, "random seed")

:func:`add_config_arguments` turns the fields into ``--env``, ``--variant``, ``--seed`` options
(``--flag/--no-flag`` for booleans); :func:`apply_overrides` applies ``KEY=VALUE`` strings with
the field's type and a clear error for unknown keys or bad values.
"""
from __future__ import annotations

import argparse
import dataclasses
import typing
from typing import Any, Iterable


class ConfigError(ValueError):
    """A config key or value given by the user is not valid."""


def arg(default: Any, help: str, *, choices: Iterable | None = None, factory: bool = False):
    """A dataclass field with help text (and optional choices) for the generated CLI."""
    metadata = {"help": help}
    if choices is not None:
        metadata["choices"] = tuple(choices)
    if factory:
        return dataclasses.field(default_factory=default, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def _field_types(cls) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _base_type(tp):
    """(base_type, optional) for ``int``, ``Optional[int]``, ``int | None``."""
    args = typing.get_args(tp)
    if args and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        if len(rest) == 1:
            return rest[0], True
    return tp, False


def parse_value(cls, key: str, text: str):
    """Convert ``text`` to the type of field ``key`` of dataclass ``cls``.

    Raises:
        ConfigError: unknown key, or a value that does not convert / is not among the choices.
    """
    fields = {f.name: f for f in dataclasses.fields(cls)}
    if key not in fields:
        raise ConfigError(
            f"unknown config key {key!r} for {cls.__name__}; valid keys: {', '.join(sorted(fields))}"
        )
    tp, optional = _base_type(_field_types(cls)[key])
    if optional and text.lower() in ("none", "null", ""):
        return None
    try:
        if tp is bool:
            lowered = text.strip().lower()
            if lowered in ("1", "true", "yes", "on"):
                value = True
            elif lowered in ("0", "false", "no", "off"):
                value = False
            else:
                raise ValueError(text)
        elif tp in (int, float, str):
            value = tp(text)
        elif typing.get_origin(tp) in (tuple, list):
            inner = typing.get_args(tp)[0] if typing.get_args(tp) else str
            items = [s for s in text.split(",") if s.strip()]
            value = typing.get_origin(tp)(inner(s.strip()) for s in items)
        else:
            value = tp(text)
    except (TypeError, ValueError):
        name = getattr(tp, "__name__", str(tp))
        raise ConfigError(f"config key {key!r} expects {name}, got {text!r}") from None
    choices = fields[key].metadata.get("choices")
    if choices and value not in choices:
        raise ConfigError(f"config key {key!r} must be one of {', '.join(map(str, choices))}; got {text!r}")
    return value


def apply_overrides(config, overrides: dict[str, Any] | Iterable[str]):
    """Return a copy of ``config`` with overrides applied.

    Args:
        config: a dataclass instance.
        overrides: a dict of already-typed values, or ``KEY=VALUE`` strings (``--config``).
    """
    cls = type(config)
    if isinstance(overrides, dict):
        values = {}
        names = {f.name for f in dataclasses.fields(cls)}
        for key, value in overrides.items():
            if key not in names:
                raise ConfigError(f"unknown config key {key!r} for {cls.__name__}; valid keys: {', '.join(sorted(names))}")
            values[key] = value
        return dataclasses.replace(config, **values)
    values = {}
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"--config expects KEY=VALUE, got {item!r}")
        key, text = item.split("=", 1)
        key = key.strip().replace("-", "_")
        values[key] = parse_value(cls, key, text)
    return dataclasses.replace(config, **values)


def add_config_arguments(parser: argparse.ArgumentParser, cls, skip: Iterable[str] = ()) -> None:
    """Add a ``--field-name`` option for each field of dataclass ``cls``.

    Defaults are suppressed so that only the options the user typed appear in the namespace
    (the dataclass stays the one place that defines defaults).
    """
    skip = set(skip)
    hints = _field_types(cls)
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        flag = "--" + f.name.replace("_", "-")
        tp, _ = _base_type(hints[f.name])
        default = f.default if f.default is not dataclasses.MISSING else "(computed)"
        help_text = f"{f.metadata.get('help', '')} (default: {default})".replace("%", "%%")  # argparse formats help
        kwargs: dict[str, Any] = {"dest": f.name, "default": argparse.SUPPRESS, "help": help_text}
        if tp is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, **kwargs)
            continue
        choices = f.metadata.get("choices")
        if choices:
            kwargs["choices"] = choices
        parser.add_argument(flag, type=_converter(cls, f.name), **kwargs)


def _converter(cls, key):
    def convert(text):
        try:
            return parse_value(cls, key, text)
        except ConfigError as err:
            raise argparse.ArgumentTypeError(str(err)) from None

    convert.__name__ = key
    return convert


def describe(cls) -> list[tuple[str, Any, str]]:
    """(name, default, help) for each field, for docs and ``--help``."""
    out = []
    for f in dataclasses.fields(cls):
        default = f.default if f.default is not dataclasses.MISSING else None
        out.append((f.name, default, f.metadata.get("help", "")))
    return out
