import argparse
import dataclasses
from typing import Optional

import pytest

from keras_impl.config import (ConfigError, Preset, add_config_arguments, apply_overrides, arg, parse_value, resolve,
                               validate)


@dataclasses.dataclass
class Cfg:
    epochs: int = arg(5, "epochs")
    lr: float = arg(0.1, "learning rate")
    env: str = arg("CartPole-v1", "env id")
    variant: str = arg("dqn", "variant", choices=("dqn", "double"))
    slippery: bool = arg(False, "slippery map")
    resume: Optional[str] = arg(None, "run dir")
    seed: int = arg(0, "seed")


def test_parse_value_uses_the_field_type():
    assert parse_value(Cfg, "epochs", "7") == 7
    assert parse_value(Cfg, "lr", "1e-3") == pytest.approx(0.001)
    assert parse_value(Cfg, "slippery", "true") is True
    assert parse_value(Cfg, "slippery", "0") is False
    assert parse_value(Cfg, "resume", "none") is None
    assert parse_value(Cfg, "resume", "runs/x") == "runs/x"


@pytest.mark.parametrize("key,text,message", [
    ("epochs", "five", "config key 'epochs' expects int, got 'five'"),
    ("variant", "triple", "config key 'variant' must be one of dqn, double; got 'triple'"),
    ("slippery", "maybe", "config key 'slippery' expects bool, got 'maybe'"),
    ("nope", "1", "unknown config key 'nope' for Cfg; valid keys: env, epochs, lr, resume, seed, slippery, variant"),
])
def test_parse_value_errors_name_key_and_value(key, text, message):
    with pytest.raises(ConfigError) as err:
        parse_value(Cfg, key, text)
    assert str(err.value) == message


def test_apply_overrides_from_strings_and_dict():
    cfg = apply_overrides(Cfg(), ["epochs=3", "lr=0.5", "variant=double"])
    assert (cfg.epochs, cfg.lr, cfg.variant) == (3, 0.5, "double")
    cfg = apply_overrides(cfg, {"seed": 4})
    assert cfg.seed == 4 and cfg.epochs == 3
    with pytest.raises(ConfigError, match="--config expects KEY=VALUE, got 'epochs'"):
        apply_overrides(Cfg(), ["epochs"])
    with pytest.raises(ConfigError, match="unknown config key 'bogus'"):
        apply_overrides(Cfg(), {"bogus": 1})


def test_generated_cli_only_reports_typed_flags():
    parser = argparse.ArgumentParser()
    add_config_arguments(parser, Cfg, skip=("seed",))
    assert vars(parser.parse_args([])) == {}
    ns = vars(parser.parse_args(["--epochs", "9", "--slippery", "--variant", "double"]))
    assert ns == {"epochs": 9, "slippery": True, "variant": "double"}
    assert vars(parser.parse_args(["--no-slippery"])) == {"slippery": False}
    with pytest.raises(SystemExit):
        parser.parse_args(["--seed", "1"])  # skipped: the CLI's own --seed handles it


# ----------------------------------------------------------------------------------------------
# Ranges, presets and the one resolution (defaults < presets < resumed run < typed)
# ----------------------------------------------------------------------------------------------


@dataclasses.dataclass
class Ranged:
    lr: float = arg(0.1, "learning rate", gt=0)
    gamma: float = arg(0.9, "discount", ge=0, le=1)
    hidden: tuple[int, ...] = arg((8, 8), "layers", ge=1)
    env: str = arg("a", "env", choices=("a", "b"))
    steps: int = arg(10, "steps", ge=1)
    seed: int = arg(0, "seed", ge=0)


Ranged.PRESETS = (Preset({"steps": 20, "lr": 0.5}, when={"env": "b"}), Preset({"steps": 2}, quick=True))
Ranged.FIXED_ON_RESUME = ("env",)


@pytest.mark.parametrize("field,value,message", [
    ("lr", 0.0, "`lr`: expected > 0, got 0.0"),
    ("lr", float("nan"), "`lr`: expected > 0, got nan"),
    ("gamma", 1.5, "`gamma`: expected >= 0 and <= 1, got 1.5"),
    ("hidden", (8, 0), "`hidden`: expected >= 1, got (8, 0)"),
    ("env", "c", "`env`: expected one of a, b, got 'c'"),
    ("steps", -3, "`steps`: expected >= 1, got -3"),
])
def test_validate_names_the_field_and_the_value(field, value, message):
    with pytest.raises(ValueError) as err:
        validate(Ranged(**{field: value}))
    assert str(err.value) == f"Received an invalid value for argument {message}"


def test_resolve_layers_defaults_presets_resumed_typed():
    assert resolve(Ranged) == Ranged()
    # a preset chosen by a field (here env=b), then --quick on top
    assert resolve(Ranged, {"env": "b"}) == Ranged(env="b", steps=20, lr=0.5)
    assert resolve(Ranged, {"env": "b"}, quick=True) == Ranged(env="b", steps=2, lr=0.5)
    # what the user typed wins even when it equals the default (the old compare-with-defaults bug)
    assert resolve(Ranged, {"env": "b", "steps": 10}).steps == 10
    # a resumed run keeps its config (its env picks the preset) except what is typed again
    saved = dataclasses.asdict(Ranged(env="b", steps=20, lr=0.5, hidden=(4,), seed=3))
    resumed = resolve(Ranged, {"steps": 50}, resumed=saved)
    assert resumed == Ranged(env="b", steps=50, lr=0.5, hidden=(4,), seed=3)
    # the resumed run's value beats the preset, the typed value beats both, even when it is the default
    assert resolve(Ranged, {"lr": 0.1}, resumed=dict(saved, lr=0.3)).lr == 0.1
    assert resolve(Ranged, {}, resumed=dict(saved, lr=0.3)).lr == 0.3


def test_resolve_refuses_changing_a_fixed_field_on_resume_and_unknown_keys():
    saved = dataclasses.asdict(Ranged(env="a"))
    with pytest.raises(ConfigError, match="`env`: 'b', but the run being resumed trained with 'a'"):
        resolve(Ranged, {"env": "b"}, resumed=saved)
    assert resolve(Ranged, {"env": "a"}, resumed=saved).env == "a"  # typing the same value is fine
    with pytest.raises(ConfigError, match="unknown config key 'bogus' for Ranged"):
        resolve(Ranged, {"bogus": 1})
    assert resolve(Ranged, resumed={**saved, "old_field": 1}) == Ranged()  # keys of older versions are ignored


def test_resumed_dqn_run_takes_a_typed_total_even_when_it_equals_the_default(tmp_path):
    # `kcourse run dqn --resume DIR --config total_timesteps=50000` on a run that started with 2,000 steps:
    # 50,000 is DQNConfig's default, and the old merge (compare with the defaults) kept 2,000
    from agents.configs import DQNConfig
    from kcourse import exercises, runner
    from keras_impl import files

    files.atomic_write_json(tmp_path / "config.json", DQNConfig(total_timesteps=2000, variant="double"))
    cfg = runner.resolve_config(exercises.get("dqn"), {"total_timesteps": 50_000}, resume=str(tmp_path))
    assert (cfg.total_timesteps, cfg.variant) == (50_000, "double")
    cfg = runner.resolve_config(exercises.get("dqn"), {}, resume=str(tmp_path))
    assert (cfg.total_timesteps, cfg.variant) == (2000, "double")
