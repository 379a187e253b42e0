"""Smoke tests of ``benchmarks/atari_speed.py`` (issue 34): a tiny budget, every printed number there and positive.

The numbers themselves are not checked (they depend on the machine and its load); that each
line is printed, parses, and is positive is.
"""
import importlib.util
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
TINY = ["--seconds", "0.5", "--update-seconds", "0.3", "--warmup-updates", "2", "--learning-starts", "64",
        "--prefill", "200"]
NUMBER = r"([0-9][0-9,]*\.?[0-9]*(?:e[-+]?[0-9]+)?)"
# The lines of one run, each with its number and its load average.
LINES = {
    "learn": r"kcourse learn \(sample \+ shifts \+ update\): {n} updates/s",
    "train_step": r"kcourse train_step alone \(shifts \+ update, fixed batch\): {n} updates/s",
    "loop": r"kcourse full loop, steady state \([0-9]+ agent steps in [0-9.]+ s after 2 warm-up updates\): "
            r"{n} agent steps/s",
    "cpu_per_step": r"kcourse full loop CPU time: {n} CPU-seconds per agent step",
    "loop_over_learn": r"ratio full loop / kcourse learn: {n}",
}
TORCH_LINES = {
    "torch": r"PyTorch bare update \(fixed batch, torch [^,]+, 2 threads\): {n} updates/s",
    "loop_over_torch": r"ratio full loop / PyTorch update: {n}",
}


@pytest.fixture(scope="module")
def atari_speed():
    spec = importlib.util.spec_from_file_location("atari_speed", REPO / "benchmarks" / "atari_speed.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _numbers(text: str, lines: dict) -> dict:
    """``{key: (number, load average)}`` of each expected line in ``text``; fails naming a missing one."""
    found = {}
    for key, pattern in lines.items():
        match = re.search("^" + pattern.format(n=NUMBER) + r" \(load average ([0-9.]+)\)", text, re.MULTILINE)
        assert match, f"no line for {key!r} in:\n{text}"
        found[key] = (float(match.group(1).replace(",", "")), float(match.group(2)))
    return found


def test_atari_speed_prints_every_number_positive(atari_speed, capsys):
    has_torch = importlib.util.find_spec("torch") is not None
    out = atari_speed.main(TINY + ([] if has_torch else ["--no-torch"]))
    text = capsys.readouterr().out
    expected = {**LINES, **(TORCH_LINES if has_torch else {})}
    for key, (number, load_average) in _numbers(text, expected).items():
        assert number > 0, (key, text)
        assert load_average >= 0, (key, text)
        assert out[key] > 0, (key, out)
    # the ratio printed is the ratio of the rates printed (a wrong division would show here)
    assert out["loop_over_learn"] == pytest.approx(out["loop"] / out["learn"])
    if has_torch:
        assert out["loop_over_torch"] == pytest.approx(out["loop"] / out["torch"])
    else:
        assert "PyTorch bare update (fixed batch): n/a updates/s" in text


@pytest.mark.parametrize("args, message", [
    (["--seconds", "0"], "Received an invalid value for argument `--seconds`: expected a number > 0, got 0.0"),
    (["--warmup-updates", "0"], "Received an invalid value for argument `--warmup-updates`: expected an integer >= 1, "
                                "got 0"),
    (["--learning-starts", "8"], "Received an invalid value for argument `--learning-starts`: expected an integer "
                                 ">= 32, got 8"),
])
def test_atari_speed_refuses_bad_budgets_in_one_line(atari_speed, capsys, args, message):
    with pytest.raises(SystemExit) as exit_info:
        atari_speed.main(args)
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == f"atari_speed.py: error: {message}"


@pytest.mark.slow
def test_atari_speed_profile_and_bf16_print_their_tables(atari_speed, capsys):
    out = atari_speed.main(TINY + ["--no-torch", "--profile", "--bf16", "--bf16-batches", "3"])
    text = capsys.readouterr().out
    for label, key in atari_speed.STAGES:  # every stage of the loop has a row and was timed
        assert re.search(rf"^\| {re.escape(label)} \| [0-9.]+ \| [0-9.]+% \|$", text, re.MULTILINE), (label, text)
        assert out["stages"][key] > 0, (key, out["stages"])
    # the forward row names its passes: 2 when the Double-DQN target shares the online pass, else 3
    for part in (re.escape("shifts (2 x random_shift)"), r"forward \([23] passes \+ loss\)", "backward",
                 re.escape("optimizer (Adam)")):
        assert re.search(rf"^\| {part} \| -?[0-9.]+ \|", text, re.MULTILINE), (part, text)
    assert "**whole train_step**" in text and "**agent step**" in text
    bf16 = out["bf16"]
    assert bf16["batches"] == 3
    # bfloat16 keeps 8 significant bits: Q-values of an untrained net differ, but not by their own size
    assert 0 < bf16["max_abs_dq"] < max(1.0, bf16["mean_abs_q"]), bf16
    assert bf16["train_step_float32"] > 0 and bf16["train_step_mixed_bfloat16"] > 0
    assert "kcourse train_step mixed_bfloat16 (fixed batch)" in text

