"""``pytest-kcourse``: regress learned policies in pytest with anytime-valid sequential tests.

Installed with kcourse and loaded by pytest through the ``pytest11`` entry point. Loading it costs
no TensorFlow import: the plugin (:mod:`pytest_kcourse.plugin`) reads only TOML until a policy
check runs. It sets no process state (environment variables, log levels, warning filters), at
load or when a check runs: that is the ``kcourse`` command line's job, not a plugin's that is
loaded in every pytest run of the environment. How to use it: ``docs/policy-testing.md``.

* :mod:`pytest_kcourse.config` -- the ``[tool.kcourse.policies]`` / ``policies.toml`` entries and
  the baseline file;
* :mod:`pytest_kcourse.check` -- evaluates a policy batch by batch until the test settles, and the
  failure report (imports ``agents``, hence TensorFlow, when a check runs);
* :mod:`agents.policy_stats` -- the statistics (betting confidence sequences).
"""
