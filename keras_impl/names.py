"""The one resolver of ``"module:attribute"`` strings (exercise configs and runners, CLI handlers, policy loaders).

A string is checked before anything is imported: it must have the form ``package.module:attribute``,
name a module of kcourse's own packages (``kcourse``, ``agents``, ``keras_impl``) and, when the
caller passes ``allowed``, be one of those exact strings. Names read from a data file
(``policy.json``'s ``env_factory``) always come with ``allowed``: a file cannot make kcourse import
or call anything else. ``tests/test_layout.py`` reads these strings too, so a string naming an
upper layer counts as an import of it.

Example:
    >>> resolve("keras_impl.names:resolve") is resolve
    True
    >>> resolve("shutil:rmtree")
    Traceback (most recent call last):
    ...
    ValueError: name 'shutil:rmtree' is not a function of kcourse (kcourse, agents, keras_impl)
"""
from __future__ import annotations

import importlib
import re
from typing import Any, Collection

OWN_PACKAGES = ("kcourse", "agents", "keras_impl")
PATTERN = re.compile(r"^[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*:[A-Za-z_]\w*$")


def check(target: Any, allowed: Collection[str] | None = None, field: str = "name") -> str:
    """``target`` itself when it may be resolved; nothing is imported.

    Raises:
        ValueError: one line naming ``field`` and the value: not a ``"module:attribute"`` string,
            outside kcourse's packages, or not in ``allowed``.
    """
    if not isinstance(target, str) or not PATTERN.match(target):
        raise ValueError(f"{field} {target!r:.80} is not a 'module:function' name")
    if allowed is not None and target not in allowed:
        raise ValueError(f"{field} {target!r} is not allowed; allowed: {', '.join(sorted(allowed)) or 'none'}")
    if target.split(".", 1)[0].split(":", 1)[0] not in OWN_PACKAGES:
        raise ValueError(f"{field} {target!r} is not a function of kcourse ({', '.join(OWN_PACKAGES)})")
    return target


def resolve(target: Any, allowed: Collection[str] | None = None, field: str = "name") -> Any:
    """The object named by ``"module:attribute"``, imported only after :func:`check` passed.

    Raises:
        ValueError: :func:`check` refused it, or the module or attribute does not exist (an
            ``ImportError`` raised *inside* an existing module, e.g. a missing optional
            dependency, is passed on as it is).
    """
    module, _, attribute = check(target, allowed, field).partition(":")
    try:
        loaded = importlib.import_module(module)
    except ModuleNotFoundError as err:
        if err.name and (module == err.name or module.startswith(err.name + ".")):
            raise ValueError(f"{field} {target!r} cannot be imported (no module {err.name!r})") from None
        raise
    if not hasattr(loaded, attribute):
        raise ValueError(f"{field} {target!r} cannot be imported ({module} has no {attribute!r})")
    return getattr(loaded, attribute)
