"""The documentation's promises that a machine can check.

- Every ``file.py:name`` pointer in ``docs/*.md`` (and ``docs/results/*.md``, README.md) names a file of the
  repository that defines ``name`` (a function, class or assignment; ``Class.method`` inside the class).
  ``package.module:name`` pointers (``agents.atari:make_breakout_env``) resolve the same way.
- No absolute path of a development machine (``/work/...``, ``/tmp/...``, ``/home/...``) appears in the docs,
  the README or the notebooks: what a reader copies must work where they cloned the project.
- docs/porting.md has at least 20 building-block rows, each with a pointer.
- The README stays a front door: <= 120 lines, no table cell over 200 characters, no "load average",
  no dates, no issue numbers, and it shows a policies.toml.

Only the standard library reads the files (``ast``): no TensorFlow is imported.
"""
from __future__ import annotations

import ast
import functools
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = sorted((ROOT / "docs").glob("*.md")) + sorted((ROOT / "docs" / "results").glob("*.md"))
README = ROOT / "README.md"
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
PACKAGES = ("agents", "keras_impl", "kcourse", "pytest_kcourse", "benchmarks", "scripts", "tests")

# `keras_impl/hello.py:build_model`, `agents/dqn.py:DQNAgent.train_step` (inside backticks, or bare in a code span
# holding several), and `agents.atari:make_breakout_env`.
FILE_POINTER = re.compile(r"(?<![\w/.-])((?:%s)/[\w/]*?\w+\.py):([A-Za-z_][\w.]*)" % "|".join(PACKAGES))
MODULE_POINTER = re.compile(r"`((?:%s)(?:\.\w+)+):([A-Za-z_][\w.]*)`" % "|".join(PACKAGES[:4]))
# Paths of the machines the project was developed on; a reader's clone is elsewhere.
MACHINE_PATH = re.compile(r"(?<![\w.~-])/(?:work|tmp|home|root|Users|mnt)/[\w.-]")


@functools.lru_cache(maxsize=None)
def _definitions(path: Path) -> frozenset[str]:
    """Names a module defines: top-level functions, classes and assignments, and ``Class.member``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()

    def targets(node) -> list[str]:
        if isinstance(node, ast.Assign):  # X = ..., and X, Y = ...
            flat = [e for t in node.targets for e in (t.elts if isinstance(t, ast.Tuple) else [t])]
            return [t.id for t in flat if isinstance(t, ast.Name)]
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            return [node.target.id]
        return []

    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
            if isinstance(node, ast.ClassDef):
                for member in node.body:
                    if isinstance(member, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                        names.add(f"{node.name}.{member.name}")
                    names.update(f"{node.name}.{name}" for name in targets(member))
        names.update(targets(node))
        if isinstance(node, ast.ImportFrom):  # a package's __init__ re-exporting a name
            names.update(alias.asname or alias.name for alias in node.names)
    return frozenset(names)


def resolve_pointer(file: str, name: str, root: Path = ROOT) -> str | None:
    """None when ``file`` (relative to ``root``) defines ``name``; else why not, in one line."""
    path = root / file
    if not path.is_file():
        return f"{file}:{name}: no such file"
    if name not in _definitions(path):
        return f"{file}:{name}: {file} defines no {name!r}"
    return None


def module_file(module: str, root: Path = ROOT) -> str:
    """``agents.tfa.networks`` -> ``agents/tfa/networks.py`` (or the package's ``__init__.py``)."""
    base = module.replace(".", "/")
    return f"{base}.py" if (root / f"{base}.py").is_file() else f"{base}/__init__.py"


def pointers(text: str) -> list[tuple[str, str]]:
    """Every ``(file, name)`` pointer in a markdown text (module pointers turned into files)."""
    found = [(m.group(1), m.group(2).rstrip(".")) for m in FILE_POINTER.finditer(text)]
    found += [(module_file(m.group(1)), m.group(2).rstrip(".")) for m in MODULE_POINTER.finditer(text)]
    return found


def _doc_id(path: Path) -> str:
    return str(path.relative_to(ROOT))


def test_resolver_finds_and_refuses(tmp_path: Path):
    # The checker itself: a hand-written module with a function, a class with a method and a constant.
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "mod.py").write_text("X = 1\nA, B = 2, 3\ndef f():\n    pass\nclass C:\n    def m(self):\n        pass\n")
    assert resolve_pointer("pkg/mod.py", "f", tmp_path) is None
    assert resolve_pointer("pkg/mod.py", "C.m", tmp_path) is None
    assert resolve_pointer("pkg/mod.py", "X", tmp_path) is None
    assert resolve_pointer("pkg/mod.py", "B", tmp_path) is None
    assert resolve_pointer("pkg/mod.py", "g", tmp_path) == "pkg/mod.py:g: pkg/mod.py defines no 'g'"
    assert resolve_pointer("pkg/mod.py", "C.n", tmp_path) == "pkg/mod.py:C.n: pkg/mod.py defines no 'C.n'"
    assert resolve_pointer("pkg/gone.py", "f", tmp_path) == "pkg/gone.py:f: no such file"
    assert pointers("see `agents/dqn.py:td_loss` (`agents/dqn.py:DQNAgent.update_target`) and "
                    "`agents.atari:make_breakout_env`; not `kcourse:cartpole-v1-dqn` nor `module:function`") == [
        ("agents/dqn.py", "td_loss"), ("agents/dqn.py", "DQNAgent.update_target"),
        ("agents/atari.py", "make_breakout_env")]
    assert MACHINE_PATH.search("git clone /work/main /tmp/fresh") and not MACHINE_PATH.search("runs/tmp/x ~/data")


@pytest.mark.parametrize("doc", DOCS + [README], ids=_doc_id)
def test_every_pointer_resolves(doc: Path):
    missing = [why for file, name in pointers(doc.read_text(encoding="utf-8"))
               if (why := resolve_pointer(file, name))]
    assert not missing, f"{_doc_id(doc)}: pointers that do not resolve:\n" + "\n".join(missing)


@pytest.mark.parametrize("path", DOCS + [README] + NOTEBOOKS, ids=_doc_id)
def test_no_machine_paths(path: Path):
    lines = [f"{_doc_id(path)}:{i}: {line.strip()[:160]}" for i, line in
             enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if MACHINE_PATH.search(line)]
    assert not lines, "absolute paths of a development machine (use a path relative to the clone):\n" + "\n".join(lines)


def _table_rows(text: str) -> list[list[str]]:
    rows = []
    for line in text.splitlines():
        if line.startswith("|") and not re.match(r"^\|[\s:|-]+\|$", line):
            rows.append([cell.strip() for cell in re.split(r"(?<!\\)\|", line.strip())[1:-1]])
    return rows


def test_porting_has_twenty_blocks_each_with_a_pointer():
    rows = _table_rows((ROOT / "docs" / "porting.md").read_text(encoding="utf-8"))[1:]  # without the header
    assert len(rows) >= 20, f"docs/porting.md has {len(rows)} building-block rows, expected >= 20"
    without = [row[0][:60] for row in rows if not pointers(row[-1])]
    assert not without, f"rows without a file:function pointer in their last column: {without}"
    assert "grep -qE" not in (ROOT / "docs" / "porting.md").read_text(encoding="utf-8")  # the test checks, not a loop


def test_readme_is_a_front_door():
    text = README.read_text(encoding="utf-8")
    lines = text.splitlines()
    assert len(lines) <= 120, f"README.md has {len(lines)} lines, expected <= 120"
    longest = max((cell for row in _table_rows(text) for cell in row), key=len)
    assert len(longest) <= 200, f"README.md's longest table cell has {len(longest)} characters: {longest[:80]}..."
    assert "load average" not in text.lower()
    assert not re.search(r"\bissue \d+", text, re.IGNORECASE), "README.md names an issue number"
    assert not re.search(r"\b20\d\d-\d\d-\d\d\b", text), "README.md has a date"
    assert "policies.toml" in text and "kcourse:" in text
    for link in re.findall(r"\]\(((?!https?:)[^)#]+)", text):  # relative links point at files that exist
        assert (ROOT / link).exists(), f"README.md links to {link}, which does not exist"


@pytest.mark.parametrize("doc", DOCS, ids=_doc_id)
def test_relative_links_resolve(doc: Path):
    text = doc.read_text(encoding="utf-8")
    broken = [link for link in re.findall(r"\]\(((?!https?:|mailto:)[^)#\s]+)", text)
              if not (doc.parent / link).exists()]
    assert not broken, f"{_doc_id(doc)} links to files that do not exist: {broken}"
