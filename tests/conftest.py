"""Shared test set-up: legacy Keras for TF-Agents before TensorFlow loads; quiet TF logs.

``TF_USE_LEGACY_KERAS=1`` for the whole test process must stay: pytest runs the TF-Agents tests and
the Keras 3 tests in one process, and TensorFlow binds ``tf.keras`` once, on its first use. Without
it, a test that touches ``tf.keras`` first (``runtime.device_summary`` does) would bind Keras 3 and
the TF-Agents tests after it would fail, depending on the order. The hand-written models use
``import keras`` (Keras 3) and are not affected. The library itself sets nothing at import: tests of
that run in fresh subprocesses without these variables (``tests/test_sweep.py``).
"""
import http.server
import io
import os
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MPLBACKEND", "Agg")

import pytest  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


def run_cli(*args, env=None, timeout=600, cwd=None):
    """Run the real `kcourse` CLI in a subprocess: (returncode, stdout, stderr)."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    proc = subprocess.run([sys.executable, "-m", "kcourse", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, env=full_env, cwd=cwd or REPO)
    return proc.returncode, proc.stdout, proc.stderr


@pytest.fixture
def cli():
    return run_cli


@pytest.fixture
def server(tmp_path):
    """A local HTTP server on 127.0.0.1 serving ``tmp_path/www``: ``(root folder, base URL)``."""
    root = tmp_path / "www"
    root.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(root), **kwargs)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def _zip_of(folder: Path, name: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in folder.iterdir():
            archive.write(path, f"{name}/{path.name}")
    return buffer.getvalue()


@pytest.fixture
def zip_of():
    """``zip_of(folder, name) -> bytes``: the folder's files zipped under ``name/``, as GroupLens ships them."""
    return _zip_of
