"""Training config: TOML + --set overrides into dataclasses; bad keys and values name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from ilbot.cli import main as cli
from ilbot.errors import ConfigError
from ilbot.training.config import TrainConfig, config_from_dict, load_config, parse_override

ROOT = Path(__file__).resolve().parents[1]


def test_defaults_file_and_overrides_layer_in_order(tmp_path):
    f = tmp_path / "c.toml"
    f.write_text('seed = 5\nepochs = 3\n[optim]\nlr = 1e-3\n[data]\nbatch_size = 8\n[model]\nd_model = 32\n')
    cfg = load_config(f, ["optim.lr=2e-4", "loss.class_weights={MOVE = 1.0, CLICK = 3}", "model.n_heads=2",
                          "device=cpu", "bf16=false", "optim.warmup_steps=7"])
    assert (cfg.seed, cfg.epochs, cfg.data.batch_size) == (5, 3, 8)
    assert cfg.optim.lr == pytest.approx(2e-4) and cfg.optim.warmup_steps == 7
    assert cfg.loss.class_weights == {"MOVE": 1.0, "CLICK": 3}
    assert cfg.model == {"d_model": 32, "n_heads": 2}
    assert cfg.device == "cpu" and cfg.bf16 is False
    assert isinstance(load_config(None, ["optim.lr=1"]).optim.lr, float)  # int → float
    assert config_from_dict(cfg.to_dict()) == cfg
    assert TrainConfig() == load_config()


def test_override_values_are_toml_or_bare_strings():
    assert parse_override("a.b=1e-3") == ("a.b", 1e-3)
    assert parse_override("x=true") == ("x", True)
    assert parse_override("x=auto") == ("x", "auto")
    assert parse_override('x="a=b"') == ("x", "a=b")


@pytest.mark.parametrize("item, key", [
    ("optim.lrr=1", "optim.lrr"),
    ("optimiser.lr=1", "optimiser"),
    ("data.batch_size=abc", "data.batch_size"),
    ("data.batch_size=1.5", "data.batch_size"),
    ("epochs=0", "epochs"),
    ("bf16=1", "bf16"),
    ("optim.lr=-1", "optim.lr"),
    ("data.idle_keep=0", "data.idle_keep"),
    ("loss.class_weights={JUMP = 2}", "loss.class_weights"),
    ("loss.class_weights=inverse", "loss.class_weights"),
    ("device=tpu", "device"),
    ("optim=3", "optim"),
    ("model=3", "model"),
    ("seed", "seed"),
    ("device=[1]", "device"),
])
def test_bad_override_names_the_key(item, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_config(None, [item])


def test_bad_file_names_the_file_and_key(tmp_path):
    f = tmp_path / "bad.toml"
    f.write_text("[data]\nbatch_sise = 4\n")
    with pytest.raises(ConfigError, match=r"bad\.toml.*data\.batch_sise"):
        load_config(f)
    f.write_text("epochs = [")
    with pytest.raises(ConfigError, match="bad.toml"):
        load_config(f)
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.toml")


def test_cli_bad_config_is_one_line_exit_2(tmp_path, capsys):
    data = tmp_path / "ds"
    data.mkdir()
    assert cli(["train", "--data", str(data), "--out", str(tmp_path / "r"), "--set", "optim.lrr=1"]) == 2
    err = capsys.readouterr().err.strip()
    assert "optim.lrr" in err and len(err.splitlines()) == 1
    assert cli(["train", "--data", str(tmp_path / "nope"), "--out", str(tmp_path / "r")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_unknown_model_key_is_named(tmp_path):
    from ilbot.training.synthetic import make_dataset
    from ilbot.training.loop import train

    ds = make_dataset(tmp_path, n_sessions=2, duration_s=20, holdout_frac=0.5)
    with pytest.raises(ConfigError, match="model.d_modell"):
        train(ds, tmp_path / "r", load_config(None, ["model.d_modell=3"]), show_progress=False)
    with pytest.raises(ConfigError, match="model"):
        train(ds, tmp_path / "r", load_config(None, ["model.d_model=30", "model.n_heads=4"]), show_progress=False)


@pytest.mark.parametrize("name", ["balabit", "keystrokes", "tiny"])
def test_shipped_configs_load(name):
    cfg = load_config(ROOT / "configs" / f"{name}.toml")
    assert cfg.data.batch_size >= 1
