"""The layers point down: ``kcourse`` (command line) -> ``agents`` -> ``keras_impl``, with no circle.

Every ``import`` statement of the three packages (module level and inside functions alike) is read
with ``ast``; an import of a package's module counts as an arrow to that module. The test fails on
an arrow from ``keras_impl`` to ``agents`` or ``kcourse``, from ``agents`` to ``kcourse``, or on any
circle between modules.
"""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("kcourse", "agents", "keras_impl")
RANK = {"kcourse": 2, "agents": 1, "keras_impl": 0}  # an arrow may only point to a lower or equal rank


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            parts = list(path.relative_to(REPO).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


def _target(name: str, modules: dict[str, Path]) -> str | None:
    """The project module an imported dotted name refers to (its longest known prefix)."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in modules:
            return candidate
    return None


def import_graph() -> dict[str, set[str]]:
    """``{module: modules it imports}`` over the project's packages."""
    modules = _modules()
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for module, path in modules.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative import
                    base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
                names = [f"{base}.{alias.name}" for alias in node.names] or [base]
            for name in names:
                target = _target(name, modules)
                if target and target != module:
                    graph[module].add(target)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def test_no_import_circle():
    assert _cycles(import_graph()) == []


def test_layers_point_down():
    upward = [f"{a} -> {b}" for a, targets in import_graph().items() for b in targets
              if RANK[b.split(".")[0]] > RANK[a.split(".")[0]]]
    assert upward == []


def test_the_checker_sees_a_circle_and_an_upward_arrow():
    graph = {"keras_impl.a": {"agents.b"}, "agents.b": {"keras_impl.a"}}
    assert _cycles(graph) == [["agents.b", "keras_impl.a"]]
    assert RANK["agents"] > RANK["keras_impl"]


@pytest.mark.parametrize("command", [["list"], ["--help"], ["run", "--help"], ["run", "dqn", "--help"],
                                     ["run", "tfa-dqn", "--help"], ["run", "recommender", "--help"],
                                     ["predict", "--help"], ["recommend", "--help"]])
def test_list_and_help_import_no_tensorflow(command):
    script = ("import sys\nfrom kcourse import cli\n"
              "try:\n    cli.main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
              "assert 'tensorflow' not in sys.modules, 'TensorFlow was imported'\nprint('ok')\n")
    proc = subprocess.run([sys.executable, "-c", script, *command], capture_output=True, text=True, timeout=120,
                          cwd=REPO)
    assert proc.returncode == 0 and proc.stdout.strip().endswith("ok"), proc.stderr[-2000:]
