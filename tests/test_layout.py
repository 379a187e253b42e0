"""The layers point down: ``kcourse`` (command line) -> ``agents`` -> ``keras_impl``, with no circle.

Every ``import`` statement of the three packages (module level and inside functions alike) is read
with ``ast``; an import of a package's module counts as an arrow to that module. So does every string
constant of the form ``"package.module:attribute"`` (the names ``keras_impl.names.resolve`` imports:
exercise entries, CLI handlers, policy loaders and env factories). The test fails on an arrow from
``keras_impl`` to ``agents`` or ``kcourse``, from ``agents`` to ``kcourse``, or on any circle between
modules.
"""
from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("kcourse", "agents", "keras_impl")
RANK = {"kcourse": 2, "agents": 1, "keras_impl": 0}  # an arrow may only point to a lower or equal rank
# "package.module:attribute" as keras_impl.names resolves it (repeated here: the test imports no project code)
PATTERN = re.compile(r"^(?:kcourse|agents|keras_impl)(?:\.[A-Za-z_]\w*)*:[A-Za-z_]\w*$")


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


def _arrows(source: str, module: str, package: str, modules) -> set[str]:
    """The project modules that ``source`` (the text of ``module``) imports or names as ``"module:attr"``."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        names = []
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and PATTERN.match(node.value):
            names = [node.value.partition(":")[0]]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative import
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            names = [f"{base}.{alias.name}" for alias in node.names] or [base]
        for name in names:
            target = _target(name, modules)
            if target and target != module:
                found.add(target)
    return found


def import_graph() -> dict[str, set[str]]:
    """``{module: modules it imports}`` over the project's packages."""
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        graph[module] = _arrows(path.read_text(), module, package, modules)
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


def test_the_checker_follows_module_function_strings():
    modules = {"keras_impl.low": None, "agents.mid": None, "kcourse.cli": None}
    # a lower layer naming an upper one in a "module:function" string is an upward arrow
    assert _arrows('HANDLER = "kcourse.cli:main"', "keras_impl.low", "keras_impl", modules) == {"kcourse.cli"}
    assert _arrows('X = {"k": "agents.mid:f"}', "keras_impl.low", "keras_impl", modules) == {"agents.mid"}
    # two modules naming each other are a circle
    graph = {m: _arrows(src, m, m.rpartition(".")[0], modules)
             for m, src in (("agents.mid", 'A = "keras_impl.low:f"'), ("keras_impl.low", 'B = "agents.mid:g"'))}
    assert _cycles(graph) == [["agents.mid", "keras_impl.low"]]
    # plain text with a colon is not a name
    assert _arrows('MSG = "error: kcourse.cli failed"; C = "tab:blue"', "agents.mid", "agents", modules) == set()


def test_every_module_function_string_is_found_by_the_resolver():
    """Each "kcourse/agents/keras_impl.x:attr" string in the packages names something that exists."""
    from keras_impl import names

    strings = sorted({node.value for path in _modules().values()
                      for node in ast.walk(ast.parse(path.read_text())) if isinstance(node, ast.Constant)
                      and isinstance(node.value, str) and PATTERN.match(node.value)
                      and node.value.split(".")[0] in PACKAGES})
    assert "agents.tfa.pipeline:run" in strings and "kcourse.eval_command:main" in strings
    missing = []
    for target in strings:
        if target.startswith("agents.tfa"):  # needs TF-Agents (tests/test_tfa_pipeline.py); one is an old name
            continue
        try:
            names.resolve(target)
        except ValueError as err:
            missing.append(str(err))
    assert missing == [], missing


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
