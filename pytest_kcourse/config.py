"""Policy entries from ``policies.toml`` or ``[tool.kcourse.policies]``, and the baseline file.

A ``policies.toml`` declares itself a kcourse file with ``format = "kcourse-policies/1"`` (other
projects' files of that name are left alone: :func:`classify`); ``[tool.kcourse.policies]`` in a
``pyproject.toml`` needs no declaration (the table's name is one). The table holds settings
(``alpha``, ``max_episodes``, ``batch``, ``growth``, ``seed``) that apply to every entry, and one
sub-table per policy::

    format = "kcourse-policies/1"      # required in a policies.toml: this file is kcourse's
    alpha = 0.01                       # optional defaults for every entry
    [cartpole-v1-dqn]                  # the test id: policies.toml::cartpole-v1-dqn
    path = "agents/trained/cartpole-v1-dqn"   # relative to this file; "kcourse:NAME" = a committed policy
    min_mean = 400                     # criterion "min_mean" (the default): pass when the mean is above

Only the standard library is imported here (``tomllib``): collecting a project costs no TensorFlow.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any, Callable

try:
    import tomllib
except ImportError:  # Python 3.10
    tomllib = None

CONFIG_FILE = "policies.toml"
PYPROJECT = "pyproject.toml"
BASELINE_FILE = "policies.baseline.json"
COMMITTED_PREFIX = "kcourse:"
FORMAT_KEY = "format"
FORMAT = "kcourse-policies/1"  # what a policies.toml says to be collected
# Keys that make an undeclared table look like a kcourse policy check (classify: a warning, not a silent skip).
CHECK_KEYS = ("min_mean", "criterion", "delta", "return_range", "max_episodes", "at_least", "fraction")
CRITERIA = ("min_mean", "baseline", "quantile")
DEFAULTS = {"alpha": 0.01, "max_episodes": 400, "batch": 30, "growth": 2.0, "seed": 0}
ENTRY_KEYS = (*DEFAULTS, "path", "env", "env_kwargs", "criterion", "min_mean", "delta", "at_least", "fraction",
              "return_range", "max_steps", "slow", "epsilon", "protocol")


class ConfigError(ValueError):
    """A policies table that cannot be read; the message names the file, the entry and the key."""


@dataclasses.dataclass
class PolicySpec:
    """One policy check: what to evaluate, against what, with which statistics.

    ``policy`` is a folder path (``str``; ``"kcourse:NAME"`` names a policy committed with kcourse)
    or a batched policy callable ``[N, *obs] -> [N]`` (then ``env`` is required).

    Criteria: ``"min_mean"`` (the mean return is at least ``min_mean``), ``"baseline"`` (at least
    the recorded baseline's mean minus ``delta``), ``"quantile"`` (at least a share ``fraction`` of
    episodes score ``>= at_least``: a test on the indicator, which needs no return range).
    """

    name: str
    policy: str | Callable
    min_mean: float | None = None
    criterion: str = "min_mean"
    delta: float | None = None
    at_least: float | None = None  # criterion "quantile": the score an episode must reach ...
    fraction: float | None = None  # ... and the share of episodes that must reach it
    env: str | None = None
    env_kwargs: dict | None = None
    alpha: float = DEFAULTS["alpha"]
    max_episodes: int = DEFAULTS["max_episodes"]
    batch: int = DEFAULTS["batch"]
    growth: float = DEFAULTS["growth"]  # each batch is this many times the one before (1: all the same)
    seed: int = DEFAULTS["seed"]
    return_range: tuple[float, float] | None = None
    max_steps: int | None = None
    slow: bool = False
    # random actions with this probability; None: the policy's eval_epsilon (policy.json), else greedy
    epsilon: float | None = None
    # Atari only: "sticky" (the default) or "atari100k" (agents.atari.PROTOCOLS)
    protocol: str | None = None
    config_path: Path | None = None  # the toml file the entry came from (baselines live beside it)

    def __post_init__(self):
        where = f"policy check {self.name!r}"
        if self.criterion not in CRITERIA:
            raise ConfigError(f"{where}: criterion must be one of {', '.join(CRITERIA)}, got {self.criterion!r}")
        if self.criterion == "min_mean" and not _is_number(self.min_mean):
            raise ConfigError(f"{where}: criterion 'min_mean' needs min_mean = NUMBER (got {self.min_mean!r})")
        if self.criterion == "baseline" and not (_is_number(self.delta) and self.delta >= 0):
            raise ConfigError(f"{where}: criterion 'baseline' needs delta = NUMBER >= 0, the drop from the "
                              f"baseline's mean that fails (got {self.delta!r})")
        if self.criterion == "quantile" and not (_is_number(self.at_least) and _is_number(self.fraction)
                                                 and 0 < self.fraction < 1):
            raise ConfigError(f"{where}: criterion 'quantile' needs at_least = NUMBER and fraction = a number in "
                              f"(0, 1): pass when that share of episodes score >= at_least (got at_least = "
                              f"{self.at_least!r}, fraction = {self.fraction!r})")
        if not (_is_number(self.alpha) and 0 < self.alpha < 0.5):
            raise ConfigError(f"{where}: alpha must be a number in (0, 0.5), got {self.alpha!r}")
        if not (_is_number(self.growth) and self.growth >= 1):
            raise ConfigError(f"{where}: growth must be a number >= 1, got {self.growth!r}")
        for key, least in (("max_episodes", 1), ("batch", 1), ("seed", 0), ("max_steps", 1)):
            value = getattr(self, key)
            if value is None and key == "max_steps":
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise ConfigError(f"{where}: {key} must be an integer >= {least}, got {value!r}")
        if self.return_range is not None:
            rng = self.return_range
            if (not isinstance(rng, (list, tuple)) or len(rng) != 2 or not all(_is_number(v) for v in rng)
                    or not rng[0] < rng[1]):
                raise ConfigError(f"{where}: return_range must be [low, high] with low < high, got {rng!r}")
            self.return_range = (float(rng[0]), float(rng[1]))
        if self.epsilon is not None and not (_is_number(self.epsilon) and 0 <= self.epsilon <= 1):
            raise ConfigError(f"{where}: epsilon must be a probability in [0, 1], got {self.epsilon!r}")
        if self.protocol is not None and self.protocol not in ("sticky", "atari100k"):
            raise ConfigError(f"{where}: protocol must be 'sticky' or 'atari100k' (Atari games), got {self.protocol!r}")
        if self.env_kwargs is not None and not isinstance(self.env_kwargs, dict):
            raise ConfigError(f"{where}: env_kwargs must be a table, got {self.env_kwargs!r}")
        if not callable(self.policy) and not (isinstance(self.policy, (str, os.PathLike)) and str(self.policy)):
            raise ConfigError(f"{where}: path must be a policy folder, got {self.policy!r}")
        if not isinstance(self.slow, bool):  # `slow = "no"` was true (a non-empty string)
            raise ConfigError(f"{where}: slow must be true or false, got {self.slow!r}")
        if callable(self.policy) and not self.env:
            raise ConfigError(f"{where}: a policy callable needs env=ID")

    @property
    def baseline_path(self) -> Path:
        return (self.config_path.parent if self.config_path else Path.cwd()) / BASELINE_FILE

    def policy_folder(self) -> Path | None:
        """The policy's folder (``kcourse:NAME`` resolved to the committed one), or None for a callable."""
        if callable(self.policy):
            return None
        text = str(self.policy)
        if text.startswith(COMMITTED_PREFIX):
            from agents.trained import policy_path  # the name goes through the committed list only

            return policy_path(text[len(COMMITTED_PREFIX):])
        path = Path(text).expanduser()
        if not path.is_absolute() and self.config_path is not None:
            path = self.config_path.parent / path
        return path


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def read_toml(path: Path) -> dict:
    if tomllib is None:
        try:
            import tomli as toml_module
        except ImportError:
            raise ConfigError(f"{path}: reading TOML on Python 3.10 needs `pip install tomli`") from None
    else:
        toml_module = tomllib
    try:
        with open(path, "rb") as f:
            return toml_module.load(f)
    except (OSError, toml_module.TOMLDecodeError) as err:
        raise ConfigError(f"{path}: cannot read it as TOML ({err})") from None


def classify(path: Path) -> str:
    """What a file named ``policies.toml`` is: ``"kcourse"`` (it says ``format = "kcourse-policies/..."``:
    collected, errors and all), ``"lookalike"`` (undeclared, but a table with ``path`` and a check key:
    the plugin warns), or ``"other"`` (another project's file, YAML, ...: ignored)."""
    try:
        data = Path(path).read_bytes()
    except OSError:
        return "other"
    declared = FORMAT.split("/")[0].encode() in data
    try:
        table = read_toml(path)
    except ConfigError:  # not TOML: ours only if it names our format (then the collector reports why)
        return "kcourse" if declared else "other"
    value = table.get(FORMAT_KEY)
    if isinstance(value, str) and value.split("/")[0] == FORMAT.split("/")[0]:
        return "kcourse"
    entries = [v for v in table.values() if isinstance(v, dict)]
    if any("path" in entry and set(CHECK_KEYS) & set(entry) for entry in entries):
        return "lookalike"
    return "other"


def undeclared_message(path: Path) -> str:
    """The one warning line for a ``policies.toml`` that looks like kcourse checks but does not declare itself."""
    return (f"{path} was not collected: its entries look like kcourse policy checks, but the file does not "
            f"declare itself one; add the line format = \"{FORMAT}\" at its top (docs/policy-testing.md)")


def policies_table(path: Path) -> dict | None:
    """The policies table of ``policies.toml`` (the whole file) or ``pyproject.toml``
    (``[tool.kcourse.policies]``; None when it has none)."""
    path = Path(path)
    if path.name == PYPROJECT:
        if b"kcourse" not in path.read_bytes():  # the common case: a pyproject without our table
            return None
        table = read_toml(path).get("tool", {}).get("kcourse", {}).get("policies")
        if table is not None and not isinstance(table, dict):
            raise ConfigError(f"{path}: [tool.kcourse.policies] must be a table")
        return table
    return read_toml(path)


def load_specs(path: Path) -> list[PolicySpec]:
    """The entries of a config file as :class:`PolicySpec` (in file order)."""
    path = Path(path).resolve()
    table = policies_table(path)
    if not table:
        return []
    table = dict(table)
    declared = table.pop(FORMAT_KEY, None)
    if declared != FORMAT and (declared is not None or path.name != PYPROJECT):
        raise ConfigError(f"{path}: expected format = \"{FORMAT}\" (the policies table this kcourse reads), got "
                          f"{'no format key' if declared is None else repr(declared)}")
    defaults = {key: value for key, value in table.items() if not isinstance(value, dict)}
    unknown = sorted(set(defaults) - set(DEFAULTS))
    if unknown:
        raise ConfigError(f"{path}: unknown setting {unknown[0]!r} (settings for every entry: "
                          f"{', '.join(DEFAULTS)}; a policy is a [NAME] table)")
    specs = []
    for name, entry in table.items():
        if not isinstance(entry, dict):
            continue
        unknown = sorted(set(entry) - set(ENTRY_KEYS))
        if unknown:
            raise ConfigError(f"{path}: [{name}]: unknown key {unknown[0]!r} (known: {', '.join(ENTRY_KEYS)})")
        if "path" not in entry:
            raise ConfigError(f"{path}: [{name}]: path = \"POLICY_FOLDER\" is missing")
        values = {**DEFAULTS, **defaults, **entry}
        try:
            specs.append(PolicySpec(name=name, policy=values.pop("path"), config_path=path, **values))
        except ConfigError as err:
            raise ConfigError(f"{path}: {err}") from None
    return specs


# ----------------------------------------------------------------------------------------------
# Baselines: {name: {"mean", "lower", "upper", "episodes", ...}} in policies.baseline.json
# ----------------------------------------------------------------------------------------------


def read_baselines(path: Path, corrupt_ok: bool = False) -> dict:
    """The baseline file's ``{name: record}`` (``{}`` when there is none).

    Args:
        corrupt_ok: return ``{}`` for a file that is not JSON or not a JSON object (``--policies-regen``
            rewrites it) instead of raising.

    Raises:
        ConfigError: one line naming the file: a folder in its place, unreadable, or (unless
            ``corrupt_ok``) not a JSON object.
    """
    path = Path(path)
    if not os.path.lexists(path):
        return {}
    if not path.is_file():
        raise ConfigError(f"{path}: expected the baselines file, found a folder or other non-file; move it away")
    try:
        text = path.read_text()
    except OSError as err:
        raise ConfigError(f"{path}: cannot read the baselines ({err.strerror or err})") from None
    try:
        data = json.loads(text)
    except ValueError as err:
        data = err
    if isinstance(data, dict):
        return data
    if corrupt_ok:
        return {}
    why = f"not JSON: {data}" if isinstance(data, ValueError) else f"expected a JSON object, got {type(data).__name__}"
    raise ConfigError(f"{path}: the baselines file is corrupt ({why}); `pytest --policies-regen` rewrites it")


def recorded_mean(path: Path, name: str) -> float:
    """The recorded mean of entry ``name`` of the baseline file.

    Raises:
        ConfigError: no entry (record one with ``--policies-regen``), or an entry without a finite
            number ``mean``.
    """
    records = read_baselines(path)
    if name not in records:
        raise ConfigError(f"policy check {name!r}: no baseline in {path}; record one with `pytest --policies-regen`")
    record = records[name]
    if not isinstance(record, dict) or not _is_number(record.get("mean")):
        raise ConfigError(f"policy check {name!r}: the baseline entry in {path} has no number `mean` (got "
                          f"{json.dumps(record)[:80]}); rerun `pytest --policies-regen`")
    return float(record["mean"])


def write_baseline(path: Path, name: str, record: dict) -> Path:
    """Add or replace entry ``name`` of the baseline file, keeping the others (atomic replace)."""
    path = Path(path)
    data = read_baselines(path, corrupt_ok=True)  # a corrupt file is rewritten, not a loop of the same error
    data[name] = record
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=2, sort_keys=True, allow_nan=False)
            f.write("\n")
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600: give the file the usual mode
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
