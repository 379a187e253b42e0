"""``kcourse doctor``: one PASS/FAIL/WARN line per component of the dependency stack.

FAIL (exit code 1) means a required piece is missing or wrong; WARN is for optional extras
(Atari ROMs without ale-py, Box2D) and informational lines (no GPU).
"""
from __future__ import annotations

import importlib
import importlib.metadata as md
import os
import sys
from pathlib import Path

REQUIRED = ("tensorflow", "keras", "tf-keras", "tensorflow-probability", "tf-agents", "gymnasium",
            "tensorboard", "numpy", "pandas")
OPTIONAL = ("ale-py", "box2d", "torch")
# TensorFlow minors the package is checked on: 2.21 (``make venv``) and 2.20 (Colab's preinstalled one).
TF_MINORS = ("2.20", "2.21")
# Version prefixes for the other pinned pieces; tf-keras is checked against TensorFlow's own minor.
EXPECT = {"tensorflow-probability": ("0.25",), "tf-agents": ("0.19",), "keras": ("3",), "gymnasium": ("1",)}


def _version(dist: str) -> str | None:
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return None


def _minor(version: str) -> str:
    """``"2.20.1"`` -> ``"2.20"``."""
    return ".".join(version.split(".")[:2])


def version_check(dist: str, version: str, tf_version: str | None) -> tuple[bool, str]:
    """``(ok, what was expected)`` for an installed distribution's version.

    TensorFlow may be 2.20 or 2.21; tf-keras must have TensorFlow's minor version (tf-keras 2.21
    beside TF 2.20 imports but breaks ``tf.keras``), or one of those minors when TensorFlow is
    missing. Other pieces are compared with :data:`EXPECT`; anything else passes.
    """
    if dist == "tensorflow":
        wants = TF_MINORS
    elif dist == "tf-keras":
        wants = (_minor(tf_version),) if tf_version else TF_MINORS
    else:
        wants = EXPECT.get(dist)
    if wants is None:
        return True, ""
    ok = any(version == w or version.startswith(w + ".") for w in wants)
    expected = " or ".join(w + ".x" for w in wants)
    if dist == "tf-keras" and tf_version:
        expected += f", the minor version of tensorflow {tf_version}"
    return ok, expected


def _package_checks() -> list[tuple[str, str, str]]:
    """Python and every required and optional distribution's version."""
    out: list[tuple[str, str, str]] = []
    out.append(("PASS" if sys.version_info >= (3, 10) else "FAIL", "python", sys.version.split()[0]))
    tf_version = _version("tensorflow")
    for dist in REQUIRED:
        version = _version(dist)
        if version is None:
            hint = " (make venv installs it with --no-deps)" if dist == "tf-agents" else ""
            out.append(("FAIL", dist, f"not installed{hint}"))
            continue
        ok, expected = version_check(dist, version, tf_version)
        out.append(("PASS" if ok else "FAIL", dist, version + ("" if ok else f" (expected {expected})")))
    for dist in OPTIONAL:
        version = _version(dist)
        out.append(("PASS" if version else "WARN", dist, version or "not installed (optional extra)"))
    return out


def _import_checks() -> list[tuple[str, str, str]]:
    """What importing the stack shows: legacy Keras, devices, tf.summary, TF-Agents, the Atari ROMs."""
    out: list[tuple[str, str, str]] = []
    flag = os.environ.get("TF_USE_LEGACY_KERAS")
    try:
        from keras_impl import runtime

        legacy = runtime.tf_keras_is_legacy()
        out.append(("PASS" if legacy else "FAIL", "legacy-keras",
                    f"TF_USE_LEGACY_KERAS={flag}; tf.keras is {'Keras 2 (tf_keras)' if legacy else 'Keras 3'}"))
        gpu_list = runtime.gpus()
        out.append(("PASS", "gpu", f"{len(gpu_list)} GPU(s)" if gpu_list else "none (CPU only; everything still runs)"))
        out.append(("PASS", "devices", runtime.device_summary()))
    except Exception as err:  # TensorFlow itself does not import
        out.append(("FAIL", "tensorflow-import", f"{type(err).__name__}: {err}"))

    try:
        import tensorboard  # noqa: F401
        import tensorflow as tf

        out.append(("PASS", "tf.summary", f"tensorboard {tensorboard.__version__}; tf.summary.scalar available"
                    if hasattr(tf.summary, "scalar") else "tf.summary.scalar missing"))
    except Exception as err:
        out.append(("FAIL", "tf.summary", f"tensorboard not importable: {err}"))

    try:
        importlib.import_module("tf_agents.agents.dqn.dqn_agent")
        out.append(("PASS", "tf-agents-import", "tf_agents.agents.dqn.dqn_agent imports"))
    except Exception as err:
        out.append(("FAIL", "tf-agents-import", f"{type(err).__name__}: {err}"))

    try:
        import ale_py
        import gymnasium as gym

        gym.register_envs(ale_py)
        env = gym.make("BreakoutNoFrameskip-v4")
        env.close()
        out.append(("PASS", "atari-roms", "BreakoutNoFrameskip-v4 loads (ROMs bundled in ale-py)"))
    except ImportError:
        out.append(("WARN", "atari-roms", "ale-py not installed: pip install 'kcourse[atari]'"))
    except Exception as err:
        out.append(("FAIL", "atari-roms", f"{type(err).__name__}: {err}"))

    return out


def _agents_check() -> tuple[str, str, str]:
    """Whether ``import agents`` finds kcourse's package or a foreign one that shadows it."""
    ours = Path(__file__).resolve().parent.parent / "agents"  # kcourse/ and agents/ sit side by side
    try:
        import agents
    except Exception as err:
        return "FAIL", "agents-package", f"{type(err).__name__}: {err}"
    where = Path(getattr(agents, "__file__", "") or "").resolve().parent
    if getattr(agents, "__kcourse__", False):
        return "PASS", "agents-package", f"kcourse's agents at {where}"
    return "FAIL", "agents-package", (f"a foreign `agents` package shadows kcourse's: {where} (expected {ours}); "
                                      f"uninstall it (pip uninstall agents openai-agents) or use a clean venv")


def checks() -> list[tuple[str, str, str]]:
    """(status, name, detail) for every check; status is PASS, FAIL or WARN."""
    return _package_checks() + _import_checks() + [_agents_check()]


def main() -> int:
    results = checks()
    width = max(len(name) for _, name, _ in results)
    for status, name, detail in results:
        print(f"{status:<4}  {name:<{width}}  {detail}")
    failed = sum(1 for status, _, _ in results if status == "FAIL")
    print(f"doctor: {len(results) - failed} ok, {failed} failed")
    return 1 if failed else 0
