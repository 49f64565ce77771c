"""Issue 12, checkpoints: config.json fields are checked (types, ranges, lengths) before anything is
built, and the weights must be a regular file of a plausible size; every refusal is one line
naming the folder's file and the field. Hostile weights (a link to /dev/zero, a FIFO) are refused
without reading them, so they cannot hang a load (checked in a subprocess with a generous bound)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ilbot.cli import main as cli
from ilbot.data.keys import KEY_VOCAB
from ilbot.errors import CheckpointError
from ilbot.model import ModelConfig, UnifiedEventModel, load_checkpoint, save_checkpoint

CFG = ModelConfig(d_model=32, n_heads=2, n_context_layers=1, n_decoder_layers=1)
STATS = {"feature_mean": [0.0] * 128, "feature_std": [1.0] * 128,
         "hold_ms": {"median": 110.0, "q10": 80.0, "q90": 150.0, "n": 9}, "tick_ms": 600.0}


@pytest.fixture
def ck(tmp_path):
    return save_checkpoint(tmp_path / "ck", UnifiedEventModel(CFG), spec_hash="h", key_vocab=KEY_VOCAB, stats=STATS)


def _edit(d: Path, **changes) -> None:
    meta = json.loads((d / "config.json").read_text())
    for key, value in changes.items():
        node = meta
        *path, last = key.split("__")
        for p in path:
            node = node[p]
        node[last] = value
    (d / "config.json").write_text(json.dumps(meta))


def _refused(d: Path, *words) -> str:
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(d)
    msg = str(e.value)
    assert "\n" not in msg and str(d) in msg, msg
    for w in words:
        assert w in msg, (w, msg)
    return msg


@pytest.mark.parametrize("field,value,words", [
    ("stats__feature_mean", [0.0] * 5, ("stats.feature_mean", "n_features=128", "5 values")),
    ("stats__feature_std", [1.0] * 127 + [-1.0], ("stats.feature_std[127]", ">= 0")),
    ("stats__feature_mean", [0.0] * 127 + ["x"], ("stats.feature_mean[127]",)),
    ("stats__hold_ms", "abc", ("stats.hold_ms", "abc")),
    ("stats__hold_ms__median", "abc", ("stats.hold_ms.median", "abc")),
    ("stats__tick_ms", -600, ("stats.tick_ms", "-600")),
    ("model_config__d_model", 32768, ("model_config.d_model", "32768")),
    ("model_config__n_heads", 3, ("n_heads=3", "d_model=32")),
    ("model_config__n_context_layers", 10 ** 6, ("model_config.n_context_layers",)),
    ("model_config__dropout", "0.1", ("model_config.dropout",)),
    ("model_config__xy_residual", "yes", ("model_config.xy_residual",)),
    ("format_version", True, ("format_version", "True")),
    ("code_version", 5, ("code_version",)),
    ("spec_hash", None, ("spec_hash",)),
    ("weights_sha256", "abc", ("weights_sha256",)),
    ("extra", [], ("extra",)),
])
def test_bad_config_fields_are_one_line_naming_the_field(ck, field, value, words):
    _edit(ck, **{field: value})
    _refused(ck / "config.json", *words)


def test_weights_of_an_implausible_size_are_refused_before_hashing(ck):
    w = ck / "model.safetensors"
    w.write_bytes(w.read_bytes()[:100])
    _refused(ck, "model.safetensors", "implausible")


def _load_in_subprocess(d: Path) -> subprocess.CompletedProcess:
    code = ("import sys\nfrom ilbot.model.checkpoint import load_checkpoint\nfrom ilbot.errors import UserError\n"
            "try:\n    load_checkpoint(sys.argv[1])\nexcept UserError as e:\n    print(e)\n    sys.exit(2)\n")
    return subprocess.run([sys.executable, "-c", code, str(d)], capture_output=True, text=True, timeout=120)


def test_weights_linked_to_dev_zero_or_a_fifo_are_refused_without_reading(ck):
    w = ck / "model.safetensors"
    w.unlink()
    w.symlink_to("/dev/zero")
    r = _load_in_subprocess(ck)
    assert r.returncode == 2 and "model.safetensors" in r.stdout and "not a regular file" in r.stdout, r
    w.unlink()
    os.mkfifo(w)
    r = _load_in_subprocess(ck)
    assert r.returncode == 2 and "not a regular file" in r.stdout, r
    w.unlink()
    (ck / "config.json").unlink()
    os.mkfifo(ck / "config.json")
    r = _load_in_subprocess(ck)
    assert r.returncode == 2 and "config.json" in r.stdout and "not a regular file" in r.stdout, r


def test_a_file_given_as_model_is_named(tmp_path, ck, capsys):
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes")
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(notes)
    assert str(e.value).startswith(f"{notes} is a file") and str(notes.parent) + ":" not in str(e.value)
    assert load_checkpoint(ck / "config.json").path == ck  # a checkpoint's own files still point at it
    jd = tmp_path / "jd"
    jd.mkdir()
    assert cli(["play", "--model", str(notes), "--source", f"json-dir:{jd}", "--ticks", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(notes) in err


def test_a_good_checkpoint_still_loads(ck):
    c = load_checkpoint(ck)
    assert c.stats["hold_ms"]["median"] == 110.0 and c.config == CFG
