"""One config dataclass per pipeline: fields, their ranges, presets, and the one resolution.

Declare fields with :func:`arg` so that the help text and the valid range live next to the
default (CleanRL keeps the help in the field's docstring; dataclass fields cannot carry one, so
it goes in ``metadata``)::

    @dataclasses.dataclass
    class DQNConfig:
        env: str = arg("CartPole-v1", "Gymnasium environment id")
        learning_rate: float = arg(2.3e-3, "optimizer learning rate", gt=0)
        seed: int = arg(0, "random seed", ge=0)

    DQNConfig.PRESETS = (Preset({"total_timesteps": 2000}, quick=True),)

* :func:`add_config_arguments` turns the fields into ``--env``, ``--learning-rate`` options
  (``--flag/--no-flag`` for booleans) that report only what the user typed;
* :func:`apply_overrides` applies ``KEY=VALUE`` strings with the field's type;
* :func:`validate` checks every field against its declared range (one place for all configs) and
  refuses NaN and infinity (``config.json`` is strict JSON);
* :func:`check_values` checks values read from a file (a resumed run's ``config.json``): type, choices, range;
* :func:`resolve` layers ``defaults < presets < the resumed run's config < what the user typed``.
"""
from __future__ import annotations

import argparse
import dataclasses
import math
import typing
from typing import Any, Callable, Iterable, Mapping

_BOUNDS = {"gt": ">", "ge": ">=", "lt": "<", "le": "<="}

# tf.distribute strategies by name (keras_impl.runtime.strategy); here so that configs need no TensorFlow.
STRATEGY_KINDS = ("auto", "cpu", "gpu", "mirrored", "multi-worker")


class ConfigError(ValueError):
    """A config key or value given by the user is not valid."""


def invalid(name: str, expected: str, got: Any) -> ValueError:
    """Keras' wording for a bad argument: ``Received an invalid value for argument `name`: expected ..., got ...``."""
    return ValueError(f"Received an invalid value for argument `{name}`: expected {expected}, got {got!r}")


def arg(default: Any, help: str, *, choices: Iterable | None = None, factory: bool = False,
        gt: float | None = None, ge: float | None = None, lt: float | None = None, le: float | None = None,
        why: Callable[[Any], str] | None = None):
    """A dataclass field with help text, optional choices and an optional numeric range.

    ``gt``/``ge``/``lt``/``le`` bound a number (or every number of a tuple field); :func:`validate`
    checks them and names the field in its error, followed by ``why(value)`` when given (e.g. how
    long a refused budget would take).
    """
    metadata: dict[str, Any] = {"help": help}
    if why is not None:
        metadata["why"] = why
    if choices is not None:
        metadata["choices"] = tuple(choices)
    bounds = {k: v for k, v in (("gt", gt), ("ge", ge), ("lt", lt), ("le", le)) if v is not None}
    if bounds:
        metadata["bounds"] = bounds
    if factory:
        return dataclasses.field(default_factory=default, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


@dataclasses.dataclass(frozen=True)
class Preset:
    """Values that replace a config's defaults.

    Args:
        values: ``{field: value}``.
        when: applies only when these fields have these values (``{"env": "breakout"}``; a tuple
            means any of its values, a function a test of the value); the deciding values come
            from what the user typed, else the resumed run, else the defaults.
        quick: applies only with ``--quick`` (the smoke-test budget).
    """

    values: Mapping[str, Any]
    when: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    quick: bool = False


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


def _fields(cls) -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(cls)}


def _unknown_key(cls, key: str) -> ConfigError:
    return ConfigError(f"unknown config key {key!r} for {cls.__name__}; valid keys: {', '.join(sorted(_fields(cls)))}")


def parse_value(cls, key: str, text: str):
    """Convert ``text`` to the type of field ``key`` of dataclass ``cls``.

    Raises:
        ConfigError: unknown key, or a value that does not convert / is not among the choices.
    """
    fields = _fields(cls)
    if key not in fields:
        raise _unknown_key(cls, key)
    tp, optional = _base_type(_field_types(cls)[key])
    if optional and text.lower() in ("none", "null", ""):
        return None
    if typing.get_origin(tp) in (tuple, list) and not text.replace(",", "").strip():
        # `hidden=` was a silent empty list (a linear Q-network)
        inner = getattr((typing.get_args(tp) or (str,))[0], "__name__", "value")
        raise ConfigError(f"config key {key!r} expects a comma-separated list of {inner}, e.g. {key}=64,64; "
                          f"got {text!r} (an empty list)")
    try:
        if tp is bool:
            lowered = text.strip().lower()
            if lowered in ("1", "true", "yes", "on"):
                value = True
            elif lowered in ("0", "false", "no", "off"):
                value = False
            else:
                raise ValueError(text)
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


def parse_overrides(cls, items: Iterable[str]) -> dict[str, Any]:
    """``["KEY=VALUE", ...]`` (``--config``) as typed values ``{key: value}``."""
    values = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"--config expects KEY=VALUE, got {item!r}")
        key, text = item.split("=", 1)
        key = key.strip().replace("-", "_")
        values[key] = parse_value(cls, key, text)
    return values


def apply_overrides(config, overrides: Mapping[str, Any] | Iterable[str]):
    """Return a copy of ``config`` with overrides applied.

    Args:
        config: a dataclass instance.
        overrides: a dict of already-typed values, or ``KEY=VALUE`` strings (``--config``).
    """
    cls = type(config)
    if isinstance(overrides, Mapping):
        for key in overrides:
            if key not in _fields(cls):
                raise _unknown_key(cls, key)
        return dataclasses.replace(config, **overrides)
    return dataclasses.replace(config, **parse_overrides(cls, overrides))


def _number(bound) -> str:
    """A bound as people write it: ``50,000,000`` (not ``5e+07``), ``0.5``."""
    return f"{int(bound):,}" if float(bound).is_integer() and abs(bound) >= 10_000 else f"{bound:g}"


def _check_bound(name: str, value, bounds: dict, why: Callable[[Any], str] | None = None) -> None:
    numbers = value if isinstance(value, (tuple, list)) else (value,)
    for number in numbers:
        if isinstance(number, bool) or not isinstance(number, (int, float)):
            raise invalid(name, "a number", value)
        ok = not (isinstance(number, float) and math.isnan(number))
        ok = ok and all({"gt": number > b, "ge": number >= b, "lt": number < b, "le": number <= b}[k]
                        for k, b in bounds.items())
        if not ok:
            err = invalid(name, " and ".join(f"{_BOUNDS[k]} {_number(b)}" for k, b in bounds.items()), value)
            raise ValueError(f"{err} ({why(value)})") if why is not None else err


def _is_type(value, tp) -> bool:
    """``value`` is a ``tp`` as JSON brings it back (an int is a float; a list is a tuple)."""
    if tp is bool:
        return isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if tp is str:
        return isinstance(value, str)
    if typing.get_origin(tp) in (tuple, list):
        inner = (typing.get_args(tp) or (Any,))[0]
        return isinstance(value, (tuple, list)) and (inner is Any or all(_is_type(v, inner) for v in value))
    return True  # a type this check does not know: left to validate()


def check_values(cls, values: Mapping[str, Any]) -> None:
    """Check values read from a file (a resumed run's ``config.json``) field by field: type, choices, range.

    Keys ``cls`` does not have are ignored (a run written by another version).

    Raises:
        ConfigError: naming the first bad field and its value.
    """
    fields, hints = _fields(cls), _field_types(cls)
    for key, value in values.items():
        if key not in fields:
            continue
        tp, optional = _base_type(hints[key])
        if value is None and optional:
            continue
        try:
            if not _is_type(value, tp):
                raise invalid(key, f"a value of type {getattr(tp, '__name__', tp)}", value)
            _check_field(fields[key], value)
        except ValueError as err:
            raise ConfigError(str(err)) from None
    # ... and as a whole (the class's own check, e.g. an env name that is no course env nor Atari game)
    canonical = getattr(cls, "CANONICAL", {})
    known = {k: canonical[k](v) if k in canonical else v for k, v in values.items() if k in fields}
    try:
        validate(cls(**_coerce(cls, known)))
    except ValueError as err:
        raise ConfigError(str(err)) from None


def _check_field(f: dataclasses.Field, value) -> None:
    """One field's value against its choices, its range, and finiteness (``config.json`` is strict JSON)."""
    choices = f.metadata.get("choices")
    if choices and value not in choices:
        raise invalid(f.name, f"one of {', '.join(map(str, choices))}", value)
    if "bounds" in f.metadata:
        _check_bound(f.name, value, f.metadata["bounds"], f.metadata.get("why"))
    numbers = value if isinstance(value, (tuple, list)) else (value,)
    if any(isinstance(n, float) and not math.isfinite(n) for n in numbers):
        # NaN compares false with everything (a target never reached) and config.json holds null for it,
        # so a resumed run would silently get the default back: refused.
        raise invalid(f.name, "a finite number", value)


def validate(config):
    """Check every field against its declared range and choices (NaN and infinity refused), then ``check()``.

    Returns:
        ``config`` (so ``validate(Cfg(...))`` can be used inline).

    Raises:
        ValueError: naming the first invalid field and its value.
    """
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if value is not None:
            _check_field(f, value)
    check = getattr(config, "check", None)
    if callable(check):
        check()
    return config


def _coerce(cls, values: dict) -> dict:
    """JSON brings tuples back as lists: give tuple fields tuples again."""
    hints = _field_types(cls)
    out = {}
    for key, value in values.items():
        tp, _ = _base_type(hints[key])
        out[key] = tuple(value) if typing.get_origin(tp) is tuple and isinstance(value, list) else value
    return out


def resolve(cls, typed: Mapping[str, Any] | None = None, *, quick: bool = False,
            resumed: Mapping[str, Any] | None = None):
    """The one config resolution: ``defaults < presets < the resumed run's config < typed``.

    Args:
        cls: the config dataclass; its ``PRESETS`` (a tuple of :class:`Preset`) apply in order, and
            its ``FIXED_ON_RESUME`` names the fields a resumed run cannot change (the environment,
            the network's shape: what its checkpoint was made for).
        typed: the values the user typed (flags, ``--config``, ``--seed``); they always win.
        quick: apply the ``quick=True`` presets too.
        resumed: the config of the run being resumed (its ``config.json``); keys it does not know
            are ignored (a run written by an older version).

    Returns:
        A validated ``cls`` instance.

    Raises:
        ConfigError: an unknown key in ``typed``. ValueError: a value out of range.
    """
    fields = _fields(cls)
    typed = dict(typed or {})
    for key in typed:
        if key not in fields:
            raise _unknown_key(cls, key)
    resumed = _coerce(cls, {k: v for k, v in (resumed or {}).items() if k in fields})
    canonical = getattr(cls, "CANONICAL", {})  # {field: fn}: one spelling of a value (an env id) before presets
    for given in (typed, resumed):
        for key, fn in canonical.items():
            if key in given:
                given[key] = fn(given[key])
    for key in getattr(cls, "FIXED_ON_RESUME", ()) if resumed else ():
        if key in typed and key in resumed and _coerce(cls, {key: typed[key]})[key] != resumed[key]:
            raise ConfigError(f"Received an invalid value for argument `{key}`: {typed[key]!r}, but the run being "
                              f"resumed trained with {resumed[key]!r} (a resumed run keeps it; start a new run instead)")
    values = dataclasses.asdict(cls())

    def deciding(name):  # what a preset's `when` is compared with
        return typed.get(name, resumed.get(name, values[name]))

    def matches(preset):  # a tuple in `when` means "any of these values"
        return all(v(deciding(k)) if callable(v) else deciding(k) in v if isinstance(v, tuple) else deciding(k) == v
                   for k, v in preset.when.items())

    for preset in getattr(cls, "PRESETS", ()):
        if (quick or not preset.quick) and matches(preset):
            values.update(preset.values)
    values.update(resumed)
    values.update(typed)
    return validate(cls(**_coerce(cls, values)))


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
