"""The pytest hooks: policy entries as test items, the ``policy_check`` fixture and marker, baselines.

* every entry of a ``policies.toml`` that declares ``format = "kcourse-policies/1"`` (or of
  ``[tool.kcourse.policies]`` in ``pyproject.toml``) in the collected paths is a test item,
  ``policies.toml::NAME``, marked ``policy_check`` (and ``slow`` when the entry says
  ``slow = true``; the plugin registers ``slow`` when the project does not); another project's
  ``policies.toml`` is left alone, and an undeclared one whose entries look like kcourse checks
  gets one warning line naming the file and the fix;
* the ``policy_check`` fixture runs the same check inside an ordinary test; the ``policy_check``
  marker's keyword arguments are its defaults (``@pytest.mark.policy_check(alpha=0.05)``);
* ``pytest --policies-regen`` evaluates every collected policy on its whole budget and records
  mean, interval and episodes in ``policies.baseline.json`` beside the config (what the
  ``baseline`` criterion compares with);
* a terminal summary section lists each check's verdict, episodes and interval.

Nothing here imports TensorFlow: :mod:`pytest_kcourse.check` (which loads policies) is imported
when the first check runs.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from pytest_kcourse.config import (CONFIG_FILE, PYPROJECT, ConfigError, PolicySpec, classify, load_specs,
                                   policies_table, undeclared_message)

MARKER = "policy_check"
RESULTS = pytest.StashKey[list]()


class UndeclaredPoliciesWarning(pytest.PytestWarning):
    """A ``policies.toml`` that looks like kcourse policy checks but does not declare itself one."""


def pytest_addoption(parser):
    group = parser.getgroup("kcourse-policies", "kcourse policy checks")
    group.addoption("--policies-regen", action="store_true", default=False,
                    help="evaluate every policy check on its whole budget and record its mean, interval and "
                         "episodes in policies.baseline.json beside its config (for criterion = \"baseline\")")


def pytest_configure(config):
    config.addinivalue_line("markers", f"{MARKER}(**settings): a kcourse policy check; on an ordinary test, the "
                                       f"defaults of its policy_check fixture (alpha, max_episodes, batch, seed, ...)")
    if not any(line.split(":")[0].split("(")[0].strip() == "slow" for line in config.getini("markers")):
        # entries with `slow = true` are marked slow; a project with --strict-markers need not know the mark
        config.addinivalue_line("markers", "slow: a slow test (kcourse policy checks with slow = true)")
    config.stash[RESULTS] = []


def pytest_collect_file(file_path: Path, parent):
    if file_path.name == CONFIG_FILE:
        kind = classify(file_path)
        if kind == "lookalike":
            warnings.warn(UndeclaredPoliciesWarning(undeclared_message(file_path)), stacklevel=1)
        return PolicyFile.from_parent(parent, path=file_path) if kind == "kcourse" else None
    if file_path.name == PYPROJECT:
        try:
            has_table = policies_table(file_path) is not None
        except ConfigError:
            has_table = True  # let the collector report the error
        if has_table:
            return PolicyFile.from_parent(parent, path=file_path)
    return None


def _one_line_errors(excinfo):
    """The message alone for the errors a user fixes in the config or the policy folder."""
    if excinfo.errisinstance((ConfigError, FileNotFoundError)):
        return str(excinfo.value)
    from pytest_kcourse import check  # already imported when a check raised

    if excinfo.errisinstance(check.PolicyCheckFailed):
        return str(excinfo.value)
    if excinfo.errisinstance(ValueError):  # the policy loaders' one-line errors (corrupt model, bad range)
        return f"{type(excinfo.value).__name__}: {excinfo.value}"
    return None


class PolicyFile(pytest.File):
    """A ``policies.toml`` or a ``pyproject.toml`` with ``[tool.kcourse.policies]``."""

    def collect(self):
        for spec in load_specs(self.path):
            item = PolicyItem.from_parent(self, name=spec.name, spec=spec)
            item.add_marker(MARKER)
            if spec.slow:
                item.add_marker("slow")
            yield item

    def repr_failure(self, excinfo):
        if excinfo.errisinstance(ConfigError):
            return str(excinfo.value)
        return super().repr_failure(excinfo)


class PolicyItem(pytest.Item):
    """One policy check from a config file."""

    def __init__(self, *, spec: PolicySpec, **kwargs):
        super().__init__(**kwargs)
        self.spec = spec

    def runtest(self):
        from pytest_kcourse.check import PolicyCheckFailed, run_check

        result = run_check(self.spec, regen=self.config.getoption("policies_regen"))
        self.config.stash[RESULTS].append(result)
        self.user_properties.append(("policy_check", {"verdict": result.verdict, "episodes": result.episodes,
                                                      "mean": result.mean, "lower": result.lower,
                                                      "upper": result.upper}))
        if result.verdict not in ("pass", "recorded"):
            raise PolicyCheckFailed(result)

    def repr_failure(self, excinfo, style=None):
        return _one_line_errors(excinfo) or super().repr_failure(excinfo, style=style)

    def reportinfo(self):
        return self.path, None, f"policy check {self.name}"


@pytest.fixture
def policy_check(request):
    """``policy_check(policy, min_mean=..., env=None, **settings)``: a sequential policy check in a test.

    ``policy`` is a policy folder or a batched policy callable (``[N, *obs] -> [N]``, then ``env=``
    is required). Settings are :class:`pytest_kcourse.config.PolicySpec`'s fields; the test's
    ``policy_check`` marker gives defaults. Returns the :class:`pytest_kcourse.check.CheckResult`
    of a pass; raises ``PolicyCheckFailed`` (an ``AssertionError``) with the report otherwise.
    """
    marker = request.node.get_closest_marker(MARKER)
    defaults = dict(marker.kwargs) if marker else {}

    def check(policy, **settings):
        __tracebackhide__ = True  # a failure points at the test's line, not into the plugin
        from pytest_kcourse.check import PolicyCheckFailed, run_check

        values = {**defaults, **settings}
        name = values.pop("name", request.node.name)
        if isinstance(policy, Path):
            policy = str(policy)
        spec = PolicySpec(name=name, policy=policy, config_path=Path(request.path), **values)
        result = run_check(spec, regen=request.config.getoption("policies_regen"))
        request.config.stash[RESULTS].append(result)
        if result.verdict not in ("pass", "recorded"):
            raise PolicyCheckFailed(result)
        return result

    return check


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    results = config.stash.get(RESULTS, [])
    if not results:
        return
    from pytest_kcourse.check import summary_line

    terminalreporter.write_sep("-", "kcourse policy checks")
    for result in results:
        terminalreporter.write_line(summary_line(result))
