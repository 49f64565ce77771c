"""Issue 12, damaged datasets: a dataset folder that was truncated, hand-edited or planted is
refused by every command that reads it (`ilbot stats`, `ilbot train`, `ilbot eval`) in one line
naming the file and what is wrong, exit 2, before anything is trained, evaluated or written; a
FIFO or a device in place of a file never blocks. Real datasets built from real SQLite stores."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ilbot.cli import main as cli
from ilbot.training.synthetic import make_sessions

ROOT = Path(__file__).resolve().parents[1]
SETS = ["--set", "model={d_model=16, n_heads=2, n_context_layers=1, n_decoder_layers=1, ff_mult=2, dropout=0.0}",
        "--set", "data.batch_size=16", "--set", "max_steps=2"]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("dsd")
    stores = make_sessions(root / "s", n_sessions=2, duration_s=30, seed=4)
    ds = root / "ds"
    assert cli(["build", *map(str, stores), "--out", str(ds), "--no-progress", "--holdout-frac", "0.5"]) == 0
    return ds


def _write(name, data: bytes):
    def damage(d: Path):
        (d / name).unlink(missing_ok=True)
        (d / name).write_bytes(data)
    return damage


def _json(name, key, value):
    def damage(d: Path):
        doc = json.loads((d / name).read_text())
        doc[key] = value
        (d / name).write_text(json.dumps(doc))
    return damage


def _array(name, fn):
    def damage(d: Path):
        a = np.load(d / f"{name}.npy")
        np.save(d / f"{name}.npy", fn(a), allow_pickle=True)
    return damage


def _cut(name):
    def damage(d: Path):
        data = (d / name).read_bytes()
        (d / name).write_bytes(data[: len(data) // 2])
    return damage


def _link(name, target):
    def damage(d: Path):
        (d / name).unlink()
        os.symlink(target, d / name)
    return damage


# damage → (function, a word the one-line error holds besides the file's name)
DAMAGE = {
    "meta.json not JSON": (_write("meta.json", b"{oops"), "damaged JSON"),
    "meta.json a list": (_write("meta.json", b"[1]"), "not an ilbot dataset"),
    "meta.json 100000 deep": (_write("meta.json", b"[" * 100_000 + b"]" * 100_000), "nested too deep"),
    "meta.json UTF-16": (_write("meta.json", json.dumps({"a": 1}).encode("utf-16")), "not UTF-8"),
    "meta.json missing": (lambda d: (d / "meta.json").unlink(), "missing"),
    "split_names a number": (_json("meta.json", "split_names", 5), "split_names"),
    "split_names unknown": (_json("meta.json", "split_names", ["train", "test"]), "split_names"),
    "n_windows negative": (_json("meta.json", "n_windows", -1), "n_windows=-1"),
    "n_windows a lie": (_json("meta.json", "n_windows", 10 ** 12), "n_windows"),
    "n_events text": (_json("meta.json", "n_events", "many"), "n_events"),
    "stats.json a list": (_write("stats.json", b"[]"), "expected a JSON object"),
    "stats.json missing": (lambda d: (d / "stats.json").unlink(), "missing"),
    "feature_mean short": (_json("stats.json", "feature_mean", [0.0] * 5), "feature_mean"),
    "feature_std negative": (_json("stats.json", "feature_std", [-1.0] * 128), "feature_std[0]"),
    "stats tick_ms 0": (_json("stats.json", "tick_ms", 0), "tick_ms"),
    "event_counts negative": (_json("stats.json", "event_counts", {"MOVE": -5}), "event_counts"),
    "key_vocab a list": (_write("key_vocab.json", b'["a"]'), "keys"),
    "key_vocab empty": (_json("key_vocab.json", "keys", []), "keys"),
    "events truncated": (_cut("events.npy"), "events.npy"),
    "events pickled": (_array("events", lambda a: np.array([{"a": 1}], dtype=object)), "events.npy"),
    "events int8": (_array("events", lambda a: a.astype(np.int8)), "int8"),
    "events flat": (_array("events", lambda a: a.reshape(-1)), "events.npy"),
    "events NaN": (_array("events", lambda a: np.full_like(a, np.nan)), "NaN"),
    "events type 99": (_array("events", lambda a: np.where(np.arange(8) == 3, 99, a).astype(a.dtype)), "type"),
    "events key_id huge": (_array("events", lambda a: np.where(np.arange(8) == 6, 1e6, a).astype(a.dtype)), "key_id"),
    "events empty": (_array("events", lambda a: a[:0]), "tick_offsets"),
    "tick_offsets reversed": (_array("tick_offsets", lambda a: a[::-1].copy()), "tick_offsets"),
    "tick_feature huge": (_array("tick_feature", lambda a: np.full_like(a, 10 ** 6)), "tick_feature"),
    "features NaN": (_array("features", lambda a: np.full_like(a, np.nan)), "NaN"),
    "features /dev/zero": (_link("features.npy", "/dev/zero"), "not a regular file"),
    "window_anchor huge": (_array("window_anchor", lambda a: np.full_like(a, 10 ** 9)), "window_anchor"),
    "window_anchor negative": (_array("window_anchor", lambda a: np.full_like(a, -5)), "window_anchor"),
    "window_split 7": (_array("window_split", lambda a: np.full_like(a, 7)), "window_split"),
    "window_split short": (_array("window_split", lambda a: a[:3]), "window_split"),
    "window_size 0": (_array("window_size", lambda a: np.zeros_like(a)), "window_size"),
    "lookahead scroll 9": (_array("window_lookahead", lambda a: np.where(np.arange(7) == 6, 9, a).astype(a.dtype)),
                           "scroll_y"),
    "npy text": (_write("window_size.npy", b"hello"), "window_size.npy"),
    "window_weight NaN": (lambda d: np.save(d / "window_weight.npy",
                                            np.full(len(np.load(d / "window_anchor.npy")), np.nan, np.float32)),
                          "window_weight"),
}


@pytest.mark.parametrize("name", list(DAMAGE))
def test_damaged_dataset_is_one_line_in_every_command(name, dataset, tmp_path, capsys):
    damage, word = DAMAGE[name]
    d = tmp_path / "ds"
    shutil.copytree(dataset, d)
    damage(d)
    for argv in (["stats", str(d)], ["stats", "--json", str(d)],
                 ["train", "--data", str(d), "--out", str(tmp_path / "run"), "--quiet", *SETS],
                 ["eval", "--model", str(tmp_path / "no-model"), "--data", str(d), "--out", str(tmp_path / "rep"),
                  "--quiet"]):
        assert cli(argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "Traceback" not in err, err
        assert str(d) in err and word in err, (word, err)
    assert not (tmp_path / "run").exists() and not (tmp_path / "rep").exists()


def test_there_are_many_kinds_of_damage():
    assert len(DAMAGE) >= 35


def test_the_undamaged_dataset_still_reads(dataset, capsys):
    assert cli(["stats", str(dataset)]) == 0
    assert "[train]" in capsys.readouterr().out


def test_stats_with_figures_it_cannot_show_is_one_line(dataset, tmp_path, capsys):
    d = tmp_path / "ds"
    shutil.copytree(dataset, d)
    stats = json.loads((d / "stats.json").read_text())
    del stats["all"]
    stats["splits"]["train"]["hold_ms"] = 5
    (d / "stats.json").write_text(json.dumps(stats))
    assert cli(["stats", str(d)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.strip().splitlines()) == 1 and str(d / "stats.json") in err


@pytest.mark.parametrize("name", ["features.npy", "meta.json", "events.npy"])
def test_a_fifo_in_a_dataset_never_blocks(dataset, tmp_path, name):
    """Checked in a subprocess with a generous bound: a blocking open would hang, not fail."""
    d = tmp_path / "ds"
    shutil.copytree(dataset, d)
    (d / name).unlink()
    os.mkfifo(d / name)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    r = subprocess.run([sys.executable, "-m", "ilbot.cli", "stats", str(d)], capture_output=True, text=True,
                       timeout=120, env=env)
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert f"{d / name}: not a regular file" in r.stderr
