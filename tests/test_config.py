import argparse
import dataclasses
from typing import Optional

import pytest

from keras_impl.config import ConfigError, add_config_arguments, apply_overrides, arg, parse_value


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
