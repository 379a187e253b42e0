"""TensorFlow's start-up lines kept off the command line's stderr; everything else passes.

On a CPU-only machine TensorFlow prints, on every start, lines that ``TF_CPP_MIN_LOG_LEVEL`` does not
reach (they are written before its logging is set up): ``oneDNN custom operations are on``,
``Could not find cuda drivers``, ``failed call to cuInit``, and on a CPU without AVX-512 the first uint8
op's ``oneDNN supports DT_UINT8 only on platforms with AVX-512`` (it falls back to Eigen). They are
not errors of the run. The
``kcourse`` command (:func:`filter_stderr`, called once by ``kcourse.cli.main`` when it runs as the
console command) and ``kcourse run all`` (for each exercise's process) drop exactly the lines
:data:`NOISE` matches; real errors, tracebacks and our own messages pass unchanged.

Hand-written, not a library: the filter must sit on the file descriptor (TensorFlow's C++ code
writes to fd 2 directly, past ``sys.stderr``), and no logging library does that.
"""
from __future__ import annotations

import atexit
import os
import re
import signal
import sys
import time

# Lines TensorFlow and SDL print on every start of a CPU-only, headless machine: noise, not errors.
NOISE = re.compile(r"^(WARNING: All log messages before absl::InitializeLog|[IW]0000\s+\S+\s+\d+\s+(port|cudart_stub|"
                   r"cuda_platform|cpu_feature_guard)\.cc|"
                   r"E0000\s+\S+\s+\d+\s+cuda_platform\.cc:\d+\] failed call to cuInit|"
                   r"E0000\s+\S+\s+\d+\s+\S+:\d+\] oneDNN supports DT_\w+ only on platforms with AVX-512|"
                   r"error: XDG_RUNTIME_DIR is invalid or not set|To enable the following instructions: .*rebuild "
                   r"TensorFlow with the appropriate compiler flags)")
_LINE_END = re.compile(rb"[\r\n]")


def is_noise(line: str) -> bool:
    """True for one of TensorFlow's start-up lines (:data:`NOISE`)."""
    return bool(NOISE.match(line))


def _relay(source: int, target: int) -> None:
    """Copy ``source`` to ``target`` until end of file, dropping :data:`NOISE` lines (in the filter process)."""
    pending, broken = b"", False
    while True:
        try:
            data = os.read(source, 1 << 16)
        except InterruptedError:
            continue
        if not data:
            break
        pending += data
        ends = [m.end() for m in _LINE_END.finditer(pending)]
        if not ends:
            continue
        lines, pending = pending[:ends[-1]], pending[ends[-1]:]
        kept = b"".join(line for line in re.split(rb"(?<=[\r\n])", lines)
                        if line and not is_noise(line.decode("utf-8", "replace")))
        if kept and not broken:
            try:
                os.write(target, kept)
            except OSError:  # the reader went away (`kcourse ... 2>&1 | head`): keep draining
                broken = True
    if pending and not broken:
        try:
            os.write(target, pending)
        except OSError:
            pass


def filter_stderr() -> None:
    """Send this process's fd 2 through a small filter process that drops :data:`NOISE` lines.

    The filter is forked before TensorFlow loads (no threads yet) and ends when every writer has
    closed the pipe, so a crash of this process still gets its last lines out. At exit fd 2 is
    restored and the filter is given a few seconds to write what is left. Set
    ``KCOURSE_RAW_STDERR=1`` to see every line.
    """
    if os.name != "posix" or os.environ.get("KCOURSE_RAW_STDERR") == "1" or not hasattr(os, "fork"):
        return
    try:
        saved = os.dup(2)
    except OSError:  # no stderr at all
        return
    read_end, write_end = os.pipe()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # the filter process: no Python clean-up of the parent's state, ever
        try:
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the command's, not the filter's
            os.close(write_end)
            _relay(read_end, saved)
        finally:
            os._exit(0)
    os.close(read_end)
    os.dup2(write_end, 2)
    os.close(write_end)
    atexit.register(_restore, saved, pid)


def _restore(saved: int, pid: int, wait_s: float = 5.0) -> None:
    """Give fd 2 back and let the filter finish (it ends when the last writer closed the pipe)."""
    try:
        sys.stderr.flush()
    except (OSError, ValueError):
        pass
    os.dup2(saved, 2)
    os.close(saved)
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:  # a child process still holding the pipe must not hang the exit
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return
        if done:
            return
        time.sleep(0.01)
