"""``kcourse``: one command line for every exercise.

    kcourse list                       every exercise with the course's reference result
    kcourse doctor                     check the dependency stack (PASS/FAIL lines)
    kcourse run NAME [options]         run one exercise; options come from its config dataclass
    kcourse run all --quick            run every exercise and write report.md / report.html

User errors (unknown exercise, bad ``--config`` key, bad values, missing files) print one line
``kcourse: error: ...`` and exit with code 2.
"""
from __future__ import annotations

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # before anything imports TensorFlow
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from keras_impl import config as cfglib  # noqa: E402
from keras_impl import registry  # noqa: E402

EXIT_USAGE = 2


class UsageError(Exception):
    """A user error reported as one line with exit code 2."""


def _fail(message: str) -> int:
    print(f"kcourse: error: {message}", file=sys.stderr)
    return EXIT_USAGE


class _Parser(argparse.ArgumentParser):
    """argparse that reports errors in one line (no usage dump) with exit code 2."""

    def error(self, message):  # noqa: D102
        self.exit(EXIT_USAGE, f"kcourse: error: {message} (see `{self.prog} --help`)\n")


# ----------------------------------------------------------------------------------------------
# kcourse list
# ----------------------------------------------------------------------------------------------


def cmd_list(args) -> int:
    found = registry.exercises()
    width = max((len(n) for n in found), default=10)
    for name, ex in found.items():
        extra = f"  [needs {', '.join(ex.requires)}]" if ex.missing_requirements() else ""
        print(f"{name:<{width}}  {ex.summary}  | reference: {ex.reference}{extra}")
    return 0


# ----------------------------------------------------------------------------------------------
# kcourse run NAME
# ----------------------------------------------------------------------------------------------


def resolve_config(ex: registry.Exercise, quick: bool, seed: int | None, flags: dict, overrides: list[str]):
    """defaults < quick preset < typed options < ``--config KEY=VALUE`` < ``--seed``."""
    cfg = ex.config()
    if quick:
        cfg = cfglib.apply_overrides(cfg, ex.quick)
    if flags:
        cfg = cfglib.apply_overrides(cfg, flags)
    if overrides:
        cfg = cfglib.apply_overrides(cfg, overrides)
    if seed is not None:
        cfg = dataclasses.replace(cfg, seed=seed)
    return cfg


def run_exercise(name: str, cfg, out: str = "runs", run_dir: str | None = None, quiet: bool = False) -> tuple[Path, dict]:
    """Seed, create the run directory, run the exercise and write ``result.json``.

    Returns:
        ``(run_dir, result)``.
    """
    from keras_impl import runtime

    ex = registry.get(name)
    missing = ex.missing_requirements()
    if missing:
        raise UsageError(
            f"exercise {name!r} needs {', '.join(missing)}; install the extra "
            f"(e.g. pip install 'kcourse[atari]' or 'kcourse[box2d]')"
        )
    runtime.enable_memory_growth()
    runtime.seed_everything(cfg.seed, deterministic=bool(getattr(cfg, "deterministic", False)))
    resume = getattr(cfg, "resume", None)
    if resume:
        path = Path(resume)
        if not path.is_dir():
            raise UsageError(f"--resume {resume!r}: no such run directory")
        runtime.atomic_write_json(path / "config.json", cfg)
    elif run_dir:
        path = Path(run_dir)
        for sub in ("train", "eval", "checkpoints"):
            (path / sub).mkdir(parents=True, exist_ok=True)
        runtime.atomic_write_json(path / "config.json", cfg)
    else:
        path = runtime.make_run_dir(name, cfg.seed, cfg, root=out)
    if not quiet:
        print(f"[kcourse] {runtime.device_summary()}", flush=True)
        print(f"[kcourse] run {name} -> {path}", flush=True)
    timer = runtime.Timer()
    result = ex.run(cfg, path) or {}
    result = dict(result)
    result.setdefault("headline", "")
    result.setdefault("metrics", {})
    result.setdefault("artifacts", [])
    result.update(exercise=name, status="ok", seconds=round(timer.seconds, 2), run_dir=str(path))
    runtime.atomic_write_json(path / "result.json", result)
    if not quiet:
        print(f"[kcourse] {name}: {result['headline']} ({result['seconds']:.1f}s)", flush=True)
    return path, result


def cmd_run(args, extra: list[str]) -> int:
    if args.name == "all":
        if extra:
            return _fail(f"`run all` takes only --quick, --seed, --out, --only, --timeout; got {' '.join(extra)}")
        return run_all(quick=args.quick, seed=args.seed, out=args.out, only=args.only, timeout=args.timeout)
    try:
        ex = registry.get(args.name)
    except ValueError as err:
        return _fail(str(err))
    sub = _Parser(prog=f"kcourse run {ex.name}", description=f"{ex.summary}. Reference: {ex.reference}")
    cfglib.add_config_arguments(sub, ex.config, skip=("seed",))
    try:
        flags = vars(sub.parse_args(extra))
        cfg = resolve_config(ex, args.quick, args.seed, flags, args.config or [])
        run_exercise(ex.name, cfg, out=args.out, run_dir=args.run_dir)
    except (cfglib.ConfigError, UsageError, ValueError, FileNotFoundError, KeyError) as err:
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        return _fail(str(message))
    except KeyboardInterrupt:
        print("kcourse: interrupted", file=sys.stderr)
        return 130
    return 0


def run_all(quick: bool, seed: int | None, out: str, only: str | None = None, timeout: float = 900) -> int:
    """Run every exercise in its own process (clean TF state each) and write the report."""
    from keras_impl import report, runtime

    found = registry.exercises()
    names = list(found)
    if only:
        wanted = [n.strip() for n in only.split(",") if n.strip()]
        unknown = [n for n in wanted if n not in found]
        if unknown:
            return _fail(f"--only: unknown exercise(s) {', '.join(unknown)}; available: {', '.join(found)}")
        names = wanted
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    total = runtime.Timer()
    for name in names:
        ex = found[name]
        seed_ = ex.config().seed if seed is None else seed
        missing = ex.missing_requirements()
        row = {"exercise": name, "summary": ex.summary, "reference": ex.reference, "section": ex.section}
        if missing:
            row.update(status="skipped", headline=f"needs {', '.join(missing)}", seconds=0.0)
            rows.append(row)
            print(f"[kcourse] {name}: skipped (needs {', '.join(missing)})", flush=True)
            continue
        run_dir = out_dir / f"{name}__{seed_}__{time.strftime('%Y%m%d-%H%M%S')}"
        cmd = [sys.executable, "-m", "keras_impl.cli", "run", name, "--out", str(out_dir),
               "--run-dir", str(run_dir), "--seed", str(seed_)] + (["--quick"] if quick else [])
        print(f"[kcourse] === {name}", flush=True)
        timer = runtime.Timer()
        try:
            proc = subprocess.run(cmd, timeout=timeout)
            code = proc.returncode
        except subprocess.TimeoutExpired:
            code = None
        result_file = run_dir / "result.json"
        if code == 0 and result_file.is_file():
            row.update(json.loads(result_file.read_text()))
        else:
            why = "timed out" if code is None else f"exit code {code}"
            row.update(status="failed", headline=why, seconds=round(timer.seconds, 1), run_dir=str(run_dir))
        rows.append(row)
    paths = report.write_report(rows, out_dir, total_seconds=total.seconds)
    failed = [r["exercise"] for r in rows if r.get("status") == "failed"]
    print(f"[kcourse] report: {paths[0]} and {paths[1]} ({len(rows)} exercises, "
          f"{len(failed)} failed, {total.seconds:.0f}s)", flush=True)
    return 1 if failed else 0


# ----------------------------------------------------------------------------------------------
# entry point
# ----------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="kcourse", description="Keras/TensorFlow port of the deep-learning course.")
    subs = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    subs.add_parser("list", help="every exercise, one line each, with the course's reference result")
    subs.add_parser("doctor", help="check TF, Keras, tf-keras, tf-agents, TFP, Gymnasium, ale-py, GPU")
    run = subs.add_parser("run", help="run an exercise (`kcourse run NAME --help` for its options) or `all`",
                          add_help=False)
    run.add_argument("name", help="exercise name (see `kcourse list`) or `all`")
    run.add_argument("--quick", action="store_true", help="tiny budget: finishes in about a minute on a CPU")
    run.add_argument("--seed", type=int, default=None, help="random seed (default: the config's)")
    run.add_argument("--out", default="runs", help="parent folder of run directories (default: runs)")
    run.add_argument("--config", action="append", metavar="KEY=VALUE", help="override a config field (repeatable)")
    run.add_argument("--run-dir", default=None, help=argparse.SUPPRESS)
    run.add_argument("--only", default=None, help="with `all`: comma-separated exercise names")
    run.add_argument("--timeout", type=float, default=900, help="with `all`: seconds per exercise")
    for cmd in registry.commands().values():
        sub = subs.add_parser(cmd.name, help=cmd.help)
        cmd.configure(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if args.command == "run":
        if {"-h", "--help"} & set(extra) and args.name == "all":
            parser.parse_args(["run", "--help"])
        return cmd_run(args, extra)
    if extra:
        return _fail(f"unrecognized arguments: {' '.join(extra)}")
    if args.command == "list":
        return cmd_list(args)
    if args.command == "doctor":
        from keras_impl import doctor

        return doctor.main()
    handler = getattr(args, "handler", None)
    assert handler is not None, f"command {args.command} registered no handler"
    try:
        return int(handler(args) or 0)
    except (cfglib.ConfigError, UsageError, ValueError, FileNotFoundError) as err:
        return _fail(str(err))


if __name__ == "__main__":
    sys.exit(main())
