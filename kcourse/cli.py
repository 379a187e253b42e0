"""``kcourse``: one command line for every exercise.

    kcourse list                       every exercise with the course's reference result
    kcourse doctor                     check the dependency stack (PASS/FAIL lines)
    kcourse run NAME [options]         run one exercise; options come from its config dataclass
    kcourse run NAME --resume DIR      continue a checkpointed run (dqn, tfa-dqn)
    kcourse run all [--quick]          run every exercise and write report.md / report.html
    kcourse eval POLICY [options]      evaluate a saved policy
    kcourse data download|synthetic    MovieLens folders

User errors (unknown exercise, bad ``--config`` key, bad values, missing files, unwritable paths)
print one line ``kcourse: error: ...`` and exit with code 2. This module imports no TensorFlow:
each command's handler is named as a ``"module:function"`` string and imported when it runs.
"""
from __future__ import annotations

import argparse
import sys

from kcourse import exercises, quiet
from kcourse.runner import UsageError
from keras_impl import config as cfglib
from keras_impl import names, process

EXIT_USAGE = 2
USER_ERRORS = (UsageError, ValueError, OSError)  # OSError: FileNotFoundError, PermissionError...


def _fail(message: str) -> int:
    print(f"kcourse: error: {message}", file=sys.stderr)
    return EXIT_USAGE


class _Parser(argparse.ArgumentParser):
    """argparse that reports errors in one line (no usage dump) with exit code 2."""

    def error(self, message):  # noqa: D102
        self.exit(EXIT_USAGE, f"kcourse: error: {message} (see `{self.prog} --help`)\n")


def cmd_list(args) -> int:
    width = max(len(ex.name) for ex in exercises.EXERCISES)
    for ex in exercises.EXERCISES:
        missing = ex.missing_requirements()
        extra = f"  [needs {', '.join(ex.requires)}]" if missing else ""
        print(f"{ex.name:<{width}}  {ex.summary}  | reference: {ex.reference}{extra}")
    return 0


def merge_typed(flags: dict, overrides: dict) -> dict:
    """What the user typed: the ``--field`` flags and the ``--config KEY=VALUE`` overrides together.

    A field given both ways must get the same value: ``--env breakout --config env=cartpole`` trained
    CartPole over the typed ``--env``.

    Raises:
        ConfigError: one line naming both.
    """
    typed = dict(flags)
    for key, value in overrides.items():
        if key in typed and typed[key] != value:
            raise cfglib.ConfigError(f"--{key.replace('_', '-')} {typed[key]} and --config {key}={value} give `{key}` "
                                     f"two values; give it once")
        typed[key] = value
    return typed


def cmd_run(args, extra: list[str]) -> int:
    from kcourse import runner

    if args.name == "all":
        if extra or args.resume or args.config:
            return _fail("`run all` takes only --quick, --seed, --out, --only, --timeout")
        return runner.run_all(quick=args.quick, seed=args.seed, out=args.out, only=args.only, timeout=args.timeout)
    ex = exercises.get(args.name)
    cls = ex.config_class()
    sub = _Parser(prog=f"kcourse run {ex.name}", description=f"{ex.summary}. Reference: {ex.reference}")
    cfglib.add_config_arguments(sub, cls, skip=("seed",))
    flags = vars(sub.parse_args(extra))
    if args.seed is not None:
        flags["seed"] = args.seed
    typed = merge_typed(flags, cfglib.parse_overrides(cls, args.config or []))
    cfg = runner.resolve_config(ex, typed, quick=args.quick, resume=args.resume)
    runner.run_exercise(ex.name, cfg, out=args.out, resume=args.resume, run_dir=args.run_dir)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="kcourse", description="Keras/TensorFlow port of the deep-learning course.")
    subs = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    subs.add_parser("list", help="every exercise, one line each, with the course's reference result")
    subs.add_parser("doctor", help="check TF, Keras, tf-keras, tf-agents, TFP, Gymnasium, ale-py, GPU")
    run = subs.add_parser("run", help="run an exercise (`kcourse run NAME --help` for its options) or `all`",
                          add_help=False)
    run.add_argument("name", help="exercise name (see `kcourse list`) or `all`")
    run.add_argument("--quick", action="store_true", help="tiny budget: finishes in about a minute on a CPU")
    run.add_argument("--seed", type=int, default=None,
                     help="random seed (default: the config's). A training exercise refuses a seed whose training "
                          "envs (seed + a small offset) would reach the selection seeds (10,000+); `run breakout` "
                          "trains nothing: its seed picks the games, any value")
    run.add_argument("--out", default="runs", help="parent folder of run directories (default: runs)")
    run.add_argument("--resume", default=None, metavar="DIR", help="continue the checkpointed run in DIR")
    run.add_argument("--config", action="append", metavar="KEY=VALUE", help="override a config field (repeatable)")
    run.add_argument("--run-dir", default=None, help=argparse.SUPPRESS)
    run.add_argument("--only", default=None, help="with `all`: comma-separated exercise names")
    run.add_argument("--timeout", type=float, default=900, help="with `all`: seconds per exercise")
    from kcourse import commands  # argument definitions only: cheap

    commands.add_commands(subs)
    parser.run_parser = run  # `kcourse run --help`, `kcourse run all --help` print its help
    return parser


def _wants_run_help(argv: list[str]) -> bool:
    """``kcourse run --help`` or ``kcourse run all --help`` (``run NAME --help`` is the exercise's own help)."""
    if argv[:1] != ["run"] or not {"-h", "--help"} & set(argv):
        return False
    positional = [a for a in argv[1:] if not a.startswith("-")]
    return not positional or positional[0] == "all"


# Commands that import TF-Agents: they get TF_USE_LEGACY_KERAS=1 (tf.keras = Keras 2) before TensorFlow loads.
TF_AGENTS_COMMANDS = {("run", "tfa-dqn"), ("doctor", None)}


def configure_process(args, console: bool) -> None:
    """The process-wide settings, in one place (:mod:`keras_impl.process`), before TensorFlow loads.

    ``console``: ``main`` runs as the ``kcourse`` command (not called from Python), so its stderr
    is filtered of TensorFlow's start-up lines (:mod:`kcourse.quiet`).
    """
    process.quiet_tensorflow()
    process.install_noise_filters()
    if (args.command, getattr(args, "name", None)) in TF_AGENTS_COMMANDS:
        process.use_legacy_keras()
    if console:
        quiet.filter_stderr()


def main(argv: list[str] | None = None) -> int:
    """``kcourse ARGV``: the exit code (2: a user error, one line; 130: Ctrl-C, one line)."""
    try:
        return _main(argv)
    except KeyboardInterrupt:  # also when it comes before or after a command's own handling
        print("kcourse: interrupted", file=sys.stderr)
        return 130


def _main(argv: list[str] | None) -> int:
    console = argv is None
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if _wants_run_help(argv):
        parser.run_parser.print_help()
        return 0
    args, extra = parser.parse_known_args(argv)
    configure_process(args, console)
    try:
        if args.command == "run":
            return cmd_run(args, extra)
        if extra:
            return _fail(f"unrecognized arguments: {' '.join(extra)}")
        if args.command == "list":
            return cmd_list(args)
        if args.command == "doctor":
            from kcourse import doctor

            return doctor.main()
        return int(names.resolve(args.handler, field="command handler")(args) or 0)
    except USER_ERRORS as err:
        return _fail(str(err))


if __name__ == "__main__":
    sys.exit(main())
