"""``kcourse run``: resolve the config once, make (or reuse) the run folder, run, write ``result.json``.

The flow of one run (``docs/architecture.md``):

1. :func:`resolve_config` -- ``defaults < presets < the resumed run's config.json < typed``
   (:func:`keras_impl.config.resolve`), validated before anything is written;
2. :func:`run_exercise` -- a new ``runs/{name}__{seed}__{time}/`` (``config.json``, ``train/``,
   ``eval/``, ``checkpoints/``), or the resumed folder left untouched until its checkpoint has
   loaded (the trainer rewrites its ``config.json`` then); seeding; the exercise's ``run``;
   ``result.json``. A run that fails before writing anything (a ``--env`` DQN cannot act in)
   removes the folder it made (``keras_impl.runtime.remove_unused_run_dir``);
3. :func:`run_all` -- every exercise in its own process, then ``report.md`` / ``report.html``.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Mapping

from kcourse import exercises
from kcourse.quiet import NOISE
from keras_impl import config as cfglib
from keras_impl import files


class UsageError(Exception):
    """A user error reported as one line with exit code 2."""


def resolve_config(ex: exercises.Exercise, typed: Mapping[str, Any], quick: bool = False,
                   resume: str | None = None):
    """The exercise's config: ``defaults < presets (--quick, --env ...) < resumed run < typed``.

    Raises:
        UsageError: ``--resume`` on an exercise that cannot resume, or on a folder that is not a run.
        ValueError: a bad key or value (the message names it), or an unreadable ``config.json``.
    """
    resumed = None
    if resume:
        if not ex.resumable:
            able = ", ".join(e.name for e in exercises.EXERCISES if e.resumable)
            raise UsageError(f"exercise {ex.name!r} does not resume runs (--resume works for {able})")
        folder = Path(resume)
        if not folder.is_dir():
            raise UsageError(f"--resume {resume}: no such run folder")
        if not (folder / "config.json").is_file():
            raise UsageError(f"--resume {resume}: not a kcourse run folder (no config.json); start a new run "
                             f"without --resume")
        other = _run_exercise_name(folder)
        if other is not None and other != ex.name:
            raise UsageError(f"--resume {resume}: a run of {other!r}, not {ex.name!r} (resume it with "
                             f"`kcourse run {other} --resume {resume}`)")
        resumed = files.read_json(folder / "config.json", "the run's config")
        if not isinstance(resumed, dict):
            raise ValueError(f"the run's config {folder / 'config.json'} is corrupt: expected a JSON object")
        try:  # a value of the wrong type or out of range: the file is at fault, and named
            cfglib.check_values(ex.config_class(), resumed)
        except ValueError as err:
            raise ValueError(f"the run's config {folder / 'config.json'} is corrupt: {err}") from None
    return cfglib.resolve(ex.config_class(), typed, quick=quick, resumed=resumed)


def _run_exercise_name(folder: Path) -> str | None:
    """The exercise a run folder belongs to: its ``result.json``'s, else its name's ``{exercise}__`` prefix."""
    try:
        name = json.loads((folder / "result.json").read_text()).get("exercise")
    except (OSError, ValueError, AttributeError):
        name = None
    base = folder.resolve().name
    if name is None and "__" in base:  # runs/{exercise}__{seed}__{time}
        name = base.split("__", 1)[0]
    return name if name in exercises.BY_NAME else None


def run_exercise(name: str, cfg, out: str = "runs", resume: str | None = None, run_dir: str | None = None,
                 quiet: bool = False) -> tuple[Path, dict]:
    """Create the run folder (or take the resumed one), seed, run the exercise, write ``result.json``.

    Returns:
        ``(run_dir, result)``.
    """
    from keras_impl import runtime  # TensorFlow: only once an exercise really runs

    ex = exercises.get(name)
    missing = ex.missing_requirements()
    if missing:
        raise UsageError(f"exercise {name!r} needs {', '.join(missing)}; install the extra "
                         f"(e.g. pip install 'kcourse[atari]' or 'kcourse[box2d]')")
    run = ex.run_function()
    runtime.enable_memory_growth()
    runtime.seed_everything(cfg.seed, deterministic=bool(getattr(cfg, "deterministic", False)))
    made: list[Path] = []  # folders this run created: removed again if it fails before writing anything
    if resume:
        path = Path(resume)
    elif run_dir:  # `run all` names the folder it will read
        path = Path(run_dir)
        made = _missing_folders(path)
        try:
            path.mkdir(parents=True)
        except OSError as err:
            raise OSError(f"cannot create the run folder {path}: {err.strerror or err}") from None
        for sub in runtime.RUN_SUBFOLDERS:
            (path / sub).mkdir()
        files.atomic_write_json(path / "config.json", cfg)
    else:
        made = _missing_folders(Path(out))
        path = runtime.make_run_dir(name, cfg.seed, cfg, root=out)
        made.insert(0, path)
    if not quiet:
        print(f"[kcourse] {runtime.device_summary()}", flush=True)
        print(f"[kcourse] run {name} -> {path}", flush=True)
    timer = runtime.Timer()
    try:
        result = dict((run(cfg, path, resume=bool(resume)) if ex.resumable else run(cfg, path)) or {})
    except BaseException:
        # A run that fails before writing anything (a bad --env, a recommender for other data) leaves no
        # config.json-only folder behind; one with logs or checkpoints is kept.
        if made and runtime.remove_unused_run_dir(made[0]):
            for folder in made[1:]:  # the --out folders this run created, if now empty
                try:
                    folder.rmdir()
                except OSError:
                    break
        raise
    result.setdefault("headline", "")
    result.setdefault("metrics", {})
    result.setdefault("artifacts", [])
    result.update(exercise=name, status="ok", seconds=round(timer.seconds, 2), run_dir=str(path),
                  device=runtime.device_summary(), code=files.code_version())
    files.atomic_write_json(path / "result.json", result)
    if not quiet:
        print(f"[kcourse] {name}: {result['headline']} ({result['seconds']:.1f}s)", flush=True)
    return path, result




def _run_quietly(cmd: list[str], timeout: float) -> int | None:
    """Run one exercise's process; its stdout passes through, its stderr without :data:`NOISE`.

    Returns the exit code, or None when it ran past ``timeout`` seconds (then it is killed).
    """
    with subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True) as proc:
        def relay():
            for line in proc.stderr:
                if not NOISE.match(line):
                    sys.stderr.write(line)

        thread = threading.Thread(target=relay, daemon=True)
        thread.start()
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = None
        except KeyboardInterrupt:  # Ctrl-C: the exercise (in our process group) got it too; let it save and stop
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)  # in case only this process was interrupted
            try:
                proc.wait(timeout=60)
            except (subprocess.TimeoutExpired, KeyboardInterrupt):
                proc.kill()
            thread.join(timeout=5)
            raise
        thread.join(timeout=5)
    return code


def _missing_folders(path: Path) -> list[Path]:
    """``path`` and those of its parents that do not exist yet, deepest first."""
    return [p for p in (path, *path.parents) if not os.path.lexists(p)]


def run_all(quick: bool, seed: int | None, out: str, only: str | None = None, timeout: float = 900) -> int:
    """Run every exercise in its own process (clean TensorFlow state each) and write the report."""
    from kcourse import report

    names = [ex.name for ex in exercises.EXERCISES]
    if only is not None:
        wanted = [n.strip() for n in only.split(",") if n.strip()]
        if not wanted:  # `--only ""` ran all 12, `--only " , "` none
            raise UsageError(f"--only {only!r} names no exercise: give comma-separated names from {', '.join(names)}")
        unknown = [n for n in wanted if n not in exercises.BY_NAME]
        if unknown:
            raise UsageError(f"--only: unknown exercise(s) {', '.join(unknown)}; available: {', '.join(names)}")
        names = wanted
    out_dir = Path(out)
    files.writable_path(out_dir / "report.md", "report (--out)")  # before the first exercise runs
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    start = time.perf_counter()
    try:
        _run_each(names, rows, quick, seed, out_dir, timeout, start)
    except KeyboardInterrupt:  # the finished exercises are reported, the rest marked interrupted
        done = {row["exercise"] for row in rows}
        rows += [{"exercise": n, "summary": exercises.get(n).summary, "reference": exercises.get(n).reference,
                  "section": exercises.get(n).section, "target": exercises.get(n).target, "status": "interrupted",
                  "headline": "interrupted (Ctrl-C)", "seconds": 0.0} for n in names if n not in done]
        paths = report.write_report(rows, out_dir, total_seconds=time.perf_counter() - start, quick=quick)
        print(f"[kcourse] interrupted: partial report {paths[0]} and {paths[1]} "
              f"({len(done)} of {len(names)} exercises finished, the rest marked interrupted)", flush=True)
        return 130
    total = time.perf_counter() - start
    paths = report.write_report(rows, out_dir, total_seconds=total, quick=quick)
    failed = [r["exercise"] for r in rows if r.get("status") == "failed"]
    print(f"[kcourse] report: {paths[0]} and {paths[1]} ({len(rows)} exercises, {len(failed)} failed, {total:.0f}s)",
          flush=True)
    return 1 if failed else 0


def _run_each(names: list[str], rows: list[dict], quick: bool, seed: int | None, out_dir: Path, timeout: float,
              start: float) -> None:
    """Run the exercises ``names`` one after another, appending one report row each to ``rows``."""
    from kcourse import report

    for number, name in enumerate(names, 1):
        ex = exercises.get(name)
        seed_ = ex.config_class()().seed if seed is None else seed
        missing = ex.missing_requirements()
        row = {"exercise": name, "summary": ex.summary, "reference": ex.reference, "section": ex.section,
               "target": ex.target}
        if missing:
            row.update(status="skipped", headline=f"needs {', '.join(missing)}", seconds=0.0)
            rows.append(row)
            print(f"[kcourse] {name}: skipped (needs {', '.join(missing)})", flush=True)
            continue
        run_dir = out_dir / f"{name}__{seed_}__{time.strftime('%Y%m%d-%H%M%S')}"
        cmd = [sys.executable, "-m", "kcourse", "run", name, "--run-dir", str(run_dir), "--seed", str(seed_)]
        cmd += ["--quick"] if quick else []
        print(f"[kcourse] === ({number}/{len(names)}) {name}: {ex.target or ex.summary}", flush=True)
        began = time.perf_counter()
        code = _run_quietly(cmd, timeout)
        result_file = run_dir / "result.json"
        if code == 0 and result_file.is_file():
            row.update(json.loads(result_file.read_text()))
        else:
            why = "timed out" if code is None else f"exit code {code}"
            row.update(status="failed", headline=why, seconds=round(time.perf_counter() - began, 1),
                       run_dir=str(run_dir))
        rows.append(row)
        print(f"[kcourse] {name}: {report.verdict(row)} ({time.perf_counter() - began:.0f}s; "
              f"{time.perf_counter() - start:.0f}s so far)", flush=True)
