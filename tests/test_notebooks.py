"""Execute every notebook in ``notebooks/`` top to bottom at QUICK settings (default test tier).

Each notebook runs in a fresh kernel that uses *this* interpreter (the repository's venv): a
kernelspec pointing at ``sys.executable`` is written into a temporary folder, with
``TF_USE_LEGACY_KERAS=1`` and ``KCOURSE_QUICK=1`` in its environment. The working directory is a
temporary folder, so the notebooks write nothing into the repository. A failing cell fails the
test with that cell's source and error; a notebook must also show what its metadata promises
(``kcourse.expects``: an inline image and/or a jshtml animation).

    KCOURSE_NOTEBOOK_OUT=/tmp/executed pytest tests/test_notebooks.py   # also keep the executed notebooks
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
# Seconds per notebook, kernel start included. QUICK notebooks use 2-45 kernel-CPU seconds each
# (docs/notebooks.md); the margin is for a machine shared with other jobs.
NOTEBOOK_TIMEOUT = float(os.environ.get("KCOURSE_NOTEBOOK_TIMEOUT", "600"))
KERNEL_NAME = "kcourse-test"


@pytest.fixture(scope="module")
def kernel_dir(tmp_path_factory) -> Path:
    """A kernelspec running this interpreter with the course's environment variables."""
    root = tmp_path_factory.mktemp("kernels")
    spec_dir = root / KERNEL_NAME
    spec_dir.mkdir()
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "kcourse (test)",
        "language": "python",
        "env": {"TF_USE_LEGACY_KERAS": "1", "KCOURSE_QUICK": "1", "TF_CPP_MIN_LOG_LEVEL": "2",
                "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH", "")]))},
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    return root


def _outputs(nb) -> list[dict]:
    return [out for cell in nb.cells if cell.cell_type == "code" for out in cell.get("outputs", [])]


def _has_image(nb) -> bool:
    return any("image/png" in out.get("data", {}) for out in _outputs(nb))


def _has_animation(nb) -> bool:
    # matplotlib's to_jshtml: a <div class="animation"> with the frames as base64 PNGs.
    return any("class=\"animation\"" in "".join(out.get("data", {}).get("text/html", ""))
               for out in _outputs(nb))


def _execute(path: Path, kernel_dir: Path, workdir: Path):
    """Run the notebook; returns ``(executed notebook, kernel CPU seconds or None)``."""
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    nb = nbformat.read(path, as_version=4)
    km = KernelManager(kernel_name=KERNEL_NAME, kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(kernel_dir)]))
    client = nbclient.NotebookClient(nb, km=km, timeout=int(NOTEBOOK_TIMEOUT), kernel_name=KERNEL_NAME,
                                     resources={"metadata": {"path": str(workdir)}})
    cpu = None
    try:
        client.execute()
    except CellExecutionError as err:  # the message holds the failing cell's source and traceback
        pytest.fail(f"{path.name}: a cell failed\n{err}", pytrace=False)
    except (CellTimeoutError, DeadKernelError) as err:
        pytest.fail(f"{path.name}: {type(err).__name__}: {err}", pytrace=False)
    finally:
        # nbclient leaves a kernel it did not start (km passed in) running: read its CPU time, stop it.
        cpu = _kernel_cpu_seconds(km)
        if km.has_kernel:
            km.shutdown_kernel(now=True)
    return nb, cpu


def _kernel_cpu_seconds(km) -> float | None:
    """CPU seconds (user + system) the kernel process has used; a figure less tied to a shared machine's load."""
    try:
        import psutil

        times = psutil.Process(km.provisioner.pid).cpu_times()
        return times.user + times.system + times.children_user + times.children_system
    except Exception:  # no psutil, or the kernel is gone: the figure is informative only
        return None


def test_failing_cell_fails_the_test_with_its_error(kernel_dir: Path, tmp_path: Path):
    """The machinery itself: the kernel is this interpreter with the course's variables, and a
    raising cell turns into a test failure that quotes the cell and its error."""
    from nbformat.v4 import new_code_cell, new_notebook

    workdir = tmp_path / "work"
    workdir.mkdir()
    nb = new_notebook(cells=[
        new_code_cell(f"import os, sys\nassert sys.executable == {sys.executable!r}, sys.executable\n"
                      "assert os.environ['TF_USE_LEGACY_KERAS'] == '1' and os.environ['KCOURSE_QUICK'] == '1'\n"
                      f"assert os.path.samefile(os.getcwd(), {str(workdir)!r}), os.getcwd()"),
        new_code_cell("raise ValueError('boom from the second cell')"),
    ])
    path = tmp_path / "failing.ipynb"
    nbformat.write(nb, path)
    with pytest.raises(pytest.fail.Exception) as info:
        _execute(path, kernel_dir, workdir)
    message = re.sub(r"\x1b\[[0-9;]*m", "", str(info.value))  # tracebacks come with terminal colours
    assert "raise ValueError('boom from the second cell')" in message  # the cell's source
    assert "ValueError: boom from the second cell" in message  # and its error
    assert "AssertionError" not in message  # the first cell (interpreter, variables) passed


def test_notebooks_exist():
    names = {p.stem for p in NOTEBOOKS}
    for topic in ("01_recommender", "02_hello_rnn_lstm", "03_tabular_rl", "04_policy_gradients", "05_dqn_cartpole",
                  "06_frozenlake", "07_tfa_breakout", "08_movielens_rl"):
        assert topic in names, f"notebooks/{topic}.ipynb is missing"


def test_notebooks_match_generator():
    """The committed notebooks are exactly what scripts/make_notebooks.py writes (and carry no outputs)."""
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "make_notebooks.py"), "--check"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        assert not _outputs(nb), f"{path.name} was committed with outputs"


@pytest.mark.timeout(NOTEBOOK_TIMEOUT + 60)
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_quick(path: Path, kernel_dir: Path, tmp_path: Path):
    nb = nbformat.read(path, as_version=4)
    expects = nb.metadata.get("kcourse", {}).get("expects", [])
    if "07_tfa" in path.stem:
        pytest.importorskip("ale_py", reason="the Breakout notebook needs the atari extra")
        pytest.importorskip("tf_agents", reason="the Breakout notebook needs tf-agents")
    start = time.perf_counter()
    nb, cpu = _execute(path, kernel_dir, tmp_path)
    seconds = time.perf_counter() - start
    print(f"{path.name}: {seconds:.1f}s wall" + ("" if cpu is None else f", {cpu:.1f}s kernel CPU"))
    if os.environ.get("KCOURSE_NOTEBOOK_OUT"):  # keep the executed notebooks, e.g. to look at them
        out_dir = Path(os.environ["KCOURSE_NOTEBOOK_OUT"])
        out_dir.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, out_dir / path.name)
    if "image" in expects:
        assert _has_image(nb), f"{path.name}: no inline plot (image/png output) was rendered"
    if "animation" in expects:
        assert _has_animation(nb), f"{path.name}: no inline animation (jshtml) was rendered"
    assert (tmp_path / "runs" / "notebooks" / path.stem).is_dir(), "the notebook did not run in the temporary folder"
