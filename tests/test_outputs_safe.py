"""Issue 12, outputs: datasets, runs and reports are written atomically, user-only, replaced only
with --overwrite and only when they are ilbot's own; one session is enough to train; CLI numbers
are range-checked. Real SQLite stores, real files, a real (size-limited) tmpfs for disk full where
the machine allows mounting one, real training on tiny data."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import sqlite3
import stat
import subprocess
import uuid
from pathlib import Path

import numpy as np
import pytest

from ilbot.cli import main as cli
from ilbot.data.atomic import MARKER, atomic_dir, atomic_file, is_owned, prepare_output, read_marker
from ilbot.data.dataset import open_dataset
from ilbot.errors import UserError
from ilbot.training.config import load_config
from ilbot.training.loop import train, write_checkpoint
from ilbot.training.synthetic import make_sessions

TINY = ["model={d_model=16, n_heads=2, n_context_layers=1, n_decoder_layers=1, ff_mult=2, dropout=0.0}",
        "data.batch_size=16", "epochs=1", "optim.warmup_steps=2"]
SETS = sum((["--set", s] for s in TINY), [])


def _tree(folder: Path) -> dict[str, str]:
    """Every file under `folder` (hidden ones too) → sha256 of its bytes."""
    out = {}
    for root, _dirs, files in os.walk(folder):
        for f in files:
            p = Path(root) / f
            out[str(p.relative_to(folder))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def _one_line_error(capsys, *words) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    for w in words:
        assert w in err, (w, err)
    return err


def _mode(p: Path) -> int:
    return stat.S_IMODE(os.lstat(p).st_mode)


def _assert_private(folder: Path) -> None:
    assert _mode(folder) == 0o700
    for root, dirs, files in os.walk(folder):
        for d in dirs:
            assert _mode(Path(root) / d) == 0o700, Path(root) / d
        for f in files:
            assert _mode(Path(root) / f) == 0o600, Path(root) / f


@pytest.fixture(scope="module")
def sessions(tmp_path_factory):
    root = tmp_path_factory.mktemp("sess")
    one = make_sessions(root / "one", n_sessions=1, duration_s=60, seed=1)[0]
    two = make_sessions(root / "two", n_sessions=2, duration_s=40, seed=2)
    return one, two


# ---------------------------------------------------------------- build


def test_build_never_touches_a_folder_that_is_not_a_dataset(tmp_path, sessions, capsys):
    one, _ = sessions
    user = tmp_path / "mine"
    (user / "sub").mkdir(parents=True)
    (user / "meta.json").write_text('{"my": "notes"}')
    (user / ".building").write_text("not ilbot's")
    (user / "sub" / "thesis.tex").write_text("years of work")
    before = _tree(user)
    for extra in ([], ["--overwrite"]):
        assert cli(["build", str(one), "--out", str(user), "--no-progress", *extra]) == 2
        _one_line_error(capsys, str(user), "not an ilbot dataset")
        assert _tree(user) == before
    assert sorted(os.listdir(tmp_path)) == ["mine"]  # no temp folder left beside it


def test_existing_dataset_needs_overwrite_and_is_replaced_whole(tmp_path, sessions, capsys):
    one, two = sessions
    ds = tmp_path / "ds"
    assert cli(["build", str(one), "--out", str(ds), "--no-progress"]) == 0
    capsys.readouterr()
    assert read_marker(ds)["kind"] == "dataset"
    _assert_private(ds)
    before = _tree(ds)
    assert cli(["build", *map(str, two), "--out", str(ds), "--no-progress"]) == 2
    _one_line_error(capsys, str(ds), "--overwrite")
    assert _tree(ds) == before
    assert cli(["build", *map(str, two), "--out", str(ds), "--no-progress", "--overwrite"]) == 0
    assert open_dataset(ds).meta["sessions"][0]["name"] == two[0].name and len(open_dataset(ds).meta["sessions"]) == 2
    assert sorted(os.listdir(tmp_path)) == ["ds"]
    _assert_private(ds)


def test_symlinked_out_gets_one_line(tmp_path, sessions, capsys):
    one, _ = sessions
    ds = tmp_path / "ds"
    assert cli(["build", str(one), "--out", str(ds), "--no-progress"]) == 0
    capsys.readouterr()
    before = _tree(ds)
    link = tmp_path / "link"
    link.symlink_to(ds)
    assert cli(["build", str(one), "--out", str(link), "--no-progress", "--overwrite"]) == 2
    _one_line_error(capsys, str(link), "symbolic link", str(ds))
    assert _tree(ds) == before and link.is_symlink()
    dangling = tmp_path / "dangling"
    dangling.symlink_to(tmp_path / "nowhere")
    assert cli(["build", str(one), "--out", str(dangling), "--no-progress"]) == 2
    _one_line_error(capsys, "symbolic link")
    assert not (tmp_path / "nowhere").exists()


def test_unknown_event_type_is_refused_naming_file_and_row(tmp_path, sessions, capsys):
    one, _ = sessions
    bad = tmp_path / "bad.ilbot.sqlite"
    bad.write_bytes(one.read_bytes())
    with contextlib.closing(sqlite3.connect(bad)) as c:
        c.execute("UPDATE events SET type = 99 WHERE seq = 7")
        c.commit()
    assert cli(["build", str(bad), "--out", str(tmp_path / "ds"), "--no-progress"]) == 2
    _one_line_error(capsys, str(bad), "seq=7", "type", "99")
    with contextlib.closing(sqlite3.connect(bad)) as c:
        c.execute("UPDATE events SET type = 3, x = 1e400 WHERE seq = 7")  # +inf
        c.commit()
    assert cli(["build", str(bad), "--out", str(tmp_path / "ds"), "--no-progress"]) == 2
    _one_line_error(capsys, str(bad), "seq=7", "inf")
    assert not (tmp_path / "ds").exists()


@pytest.mark.parametrize("flag,value", [("--tick-ms", "nan"), ("--tick-ms", "0"), ("--tick-ms", "-600"),
                                        ("--tick-ms", "inf"), ("--holdout-frac", "2"), ("--holdout-frac", "0"),
                                        ("--holdout-frac", "1"), ("--holdout-frac", "nan"), ("--thin-ms", "-1")])
def test_build_numbers_are_range_checked(tmp_path, sessions, capsys, flag, value):
    one, _ = sessions
    assert cli(["build", str(one), "--out", str(tmp_path / "ds"), "--no-progress", f"{flag}={value}"]) == 2
    _one_line_error(capsys, flag)
    assert not (tmp_path / "ds").exists()


def test_stats_on_a_file_says_so(tmp_path, capsys):
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    assert cli(["stats", str(notes)]) == 2
    _one_line_error(capsys, f"{notes} is a file, not a dataset folder")
    assert cli(["stats", str(tmp_path / "nope")]) == 2
    _one_line_error(capsys, "no such dataset folder")


# ---------------------------------------------------------------- disk full


def _mount_tmpfs(path: Path, size: str) -> bool:
    if os.geteuid() != 0:
        return False
    path.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", f"ilbot-test-{uuid.uuid4().hex[:6]}",
                        str(path)], capture_output=True)
    return r.returncode == 0


@pytest.fixture
def small_disk(tmp_path, monkeypatch):
    """A 384 KiB file system: a real tmpfs where this process may mount one; elsewhere a folder
    where the dataset writer's own file writes fail with ENOSPC once 384 KiB were written."""
    where = tmp_path / "disk"
    if _mount_tmpfs(where, "384k"):
        yield where, True
        subprocess.run(["umount", "-l", str(where)], check=False)
        return
    where.mkdir(exist_ok=True)
    import ilbot.data.build as build_mod

    real_open, budget = build_mod.open_private, {"left": 384 << 10}

    class Limited:
        def __init__(self, f):
            self._f = f

        def write(self, data):
            budget["left"] -= len(data)
            if budget["left"] < 0:
                raise OSError(errno.ENOSPC, "No space left on device")
            return self._f.write(data)

        def __getattr__(self, name):
            return getattr(self._f, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self._f.close()

    def open_limited(path, mode="w", **kw):
        f = real_open(path, mode, **kw)
        return Limited(f) if str(path).startswith(str(where)) else f

    monkeypatch.setattr(build_mod, "open_private", open_limited)
    yield where, False


def test_build_onto_a_full_disk_leaves_the_previous_dataset_whole(tmp_path, sessions, small_disk, capsys):
    one, _ = sessions
    disk, real = small_disk
    ds = disk / "ds"
    assert cli(["build", str(one), "--out", str(ds), "--no-progress"]) == 0
    capsys.readouterr()
    before = _tree(ds)
    big = make_sessions(tmp_path / "big", n_sessions=3, duration_s=600, seed=5)  # ~560 KiB of windows
    assert cli(["build", *map(str, big), "--out", str(ds), "--no-progress", "--overwrite"]) == 2
    _one_line_error(capsys, str(ds), "disk full")
    assert _tree(ds) == before and open_dataset(ds).meta["sessions"][0]["name"] == one.name
    assert sorted(os.listdir(disk)) == ["ds"]  # the temp folder is gone
    if real:  # and its space is free again: the small dataset still fits beside the one there
        assert cli(["build", str(one), "--out", str(ds), "--no-progress", "--overwrite"]) == 0


# ---------------------------------------------------------------- one session is enough


@pytest.mark.parametrize("split", [["--holdout-frac", "0.5"], ["--split-by", "session", "--holdout-frac", "0.25"]])
def test_one_session_holds_out_its_end_by_time_and_trains(tmp_path, sessions, capsys, split):
    one, _ = sessions
    ds = tmp_path / "ds"
    assert cli(["build", str(one), "--out", str(ds), "--no-progress", *split]) == 0
    out = capsys.readouterr().out
    assert "too few for a session split" in out and "held out" in out
    tr, va = open_dataset(ds, "train"), open_dataset(ds, "val")
    frac = float(split[-1])
    assert len(va) >= 1 and len(tr) >= 1
    assert abs(len(va) / (len(tr) + len(va)) - frac) < 0.1
    meta = open_dataset(ds).meta
    assert [s["part"] for s in meta["sessions"]] == ["head", "tail"] and meta["split_by"] == "time"
    cut = meta["sessions"][1]["t_start_ns"]
    assert meta["sessions"][0]["t_end_ns"] == cut
    a = open_dataset(ds)._a
    win_split = np.asarray(a["window_split"])
    tick_of_val = np.asarray(a["window_first_tick"])[win_split == 1]
    assert (np.asarray(a["window_anchor"])[win_split == 0] < tick_of_val.min()).all()  # train precedes val
    assert set(np.asarray(a["window_session"])[win_split == 0]) == {0}
    assert set(np.asarray(a["window_session"])[win_split == 1]) == {1}
    summary = train(ds, tmp_path / "run", load_config(None, TINY), show_progress=False)
    assert summary["best_val_loss"] is not None and (tmp_path / "run" / "best" / "model.safetensors").is_file()


def test_one_session_with_recorded_ticks_is_cut_at_a_tick(tmp_path):
    from ilbot.data.schema import F, Event
    from ilbot.data.store import SessionWriter

    ms = 1_000_000
    path = tmp_path / "ticks.ilbot.sqlite"
    rng = np.random.default_rng(0)
    with SessionWriter(path, {"source": "test", "window": {"x": 0, "y": 0, "width": 800, "height": 600},
                              "feature_spec": "empty", "feature_spec_hash": "h0"}) as w:
        w.add_events([Event.make(int(t), 10.0, 20.0) for t in np.sort(rng.integers(100 * ms, 30_000 * ms, 400))])
        for k in range(50):  # ticks every 600 ms from 100 ms; feature 0 = the tick number
            w.add_tick(k, 100 * ms + k * 600 * ms, "{}", np.full(F, float(k), np.float32))
    stats = build_dataset_cli(path, tmp_path / "ds", "0.3")
    ds = open_dataset(tmp_path / "ds")
    meta = ds.meta
    cut = meta["sessions"][1]["t_start_ns"]
    b = (cut - 100 * ms) // (600 * ms)
    assert cut == 100 * ms + b * 600 * ms  # a recorded tick's start
    a = ds._a
    split = np.asarray(a["window_split"])
    mean, std = stats["feature_mean"][0], stats["feature_std"][0]
    tick_no = np.asarray(a["features"])[np.asarray(a["tick_feature"]), 0] * std + mean  # [n_ticks] raw feature 0
    val_first = int(np.asarray(a["window_first_tick"])[split == 1][0])
    assert round(float(tick_no[val_first])) == b  # the tail starts at recorded tick b
    anchors = np.asarray(a["window_anchor"])
    assert np.allclose(tick_no[anchors[split == 1]], np.round(tick_no[anchors[split == 1]]))
    assert (tick_no[anchors[split == 0]] < b).all() and (tick_no[anchors[split == 1]] >= b).all()


def build_dataset_cli(session: Path, out: Path, frac: str) -> dict:
    assert cli(["build", str(session), "--out", str(out), "--no-progress", "--holdout-frac", frac]) == 0
    return json.loads((out / "stats.json").read_text())


def test_one_session_with_holdout_naming_it_is_refused(tmp_path, sessions, capsys):
    one, _ = sessions
    name = one.name.removesuffix(".ilbot.sqlite")
    assert cli(["build", str(one), "--out", str(tmp_path / "ds"), "--no-progress", "--split-by", "session",
                "--holdout", name]) == 2
    _one_line_error(capsys, "every session", "--holdout-frac")


# ---------------------------------------------------------------- training runs


@pytest.fixture(scope="module")
def dataset(tmp_path_factory, sessions):
    one, two = sessions
    ds = tmp_path_factory.mktemp("ds") / "ds"
    assert cli(["build", *map(str, two), "--out", str(ds), "--no-progress", "--holdout-frac", "0.5"]) == 0
    return ds


def test_existing_run_needs_resume_or_overwrite(tmp_path, dataset, capsys):
    run = tmp_path / "run"
    assert cli(["train", "--data", str(dataset), "--out", str(run), "--quiet", *SETS]) == 0
    capsys.readouterr()
    assert read_marker(run)["kind"] == "run"
    _assert_private(run)
    before = _tree(run)
    n_lines = len((run / "metrics.jsonl").read_text().splitlines())
    assert cli(["train", "--data", str(dataset), "--out", str(run), "--quiet", *SETS]) == 2
    _one_line_error(capsys, str(run), "--resume", "--overwrite")
    assert _tree(run) == before
    assert cli(["train", "--data", str(dataset), "--out", str(run), "--quiet", "--resume", "--overwrite"]) == 2
    _one_line_error(capsys, "--resume", "--overwrite")
    assert cli(["train", "--data", str(dataset), "--out", str(run), "--quiet", *SETS, "--set", "seed=7",
                "--overwrite"]) == 0
    capsys.readouterr()
    assert json.loads((run / "train_config.json").read_text())["seed"] == 7
    assert len((run / "metrics.jsonl").read_text().splitlines()) == n_lines  # one run's lines, not two
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # the replaced run is gone
    _assert_private(run)


def test_overwrite_never_replaces_a_folder_that_is_not_a_run(tmp_path, dataset, capsys):
    other = tmp_path / "notes"
    other.mkdir()
    (other / "metrics.jsonl").write_text("my own metrics\n")
    (other / "paper.md").write_text("draft")
    before = _tree(other)
    assert cli(["train", "--data", str(dataset), "--out", str(other), "--quiet", *SETS, "--overwrite"]) == 2
    _one_line_error(capsys, str(other), "not an ilbot training run")
    assert cli(["train", "--data", str(dataset), "--out", str(other), "--quiet", "--resume"]) == 2
    _one_line_error(capsys, str(other))
    assert _tree(other) == before
    ds_as_run = dataset  # an ilbot output of another kind
    assert cli(["train", "--data", str(dataset), "--out", str(ds_as_run), "--quiet", *SETS, "--overwrite"]) == 2
    _one_line_error(capsys, "dataset output")
    assert cli(["train", "--data", str(dataset), "--out", str(tmp_path / "none"), "--quiet", "--resume"]) == 2
    _one_line_error(capsys, "holds no training run")


def test_a_failed_overwrite_puts_the_old_run_back(tmp_path, dataset):
    run = tmp_path / "run"
    train(dataset, run, load_config(None, TINY), show_progress=False)
    before = _tree(run)

    def explode():
        raise RuntimeError("power cut")

    with pytest.raises(RuntimeError, match="power cut"):  # after the first step, before any checkpoint
        train(dataset, run, load_config(None, TINY), show_progress=False, overwrite=True, should_stop=explode)
    assert _tree(run) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_a_failed_checkpoint_write_leaves_best_whole(tmp_path, dataset):
    from ilbot.data.dataset import open_dataset as od
    from ilbot.model.checkpoint import load_checkpoint

    run = tmp_path / "run"
    train(dataset, run, load_config(None, TINY), show_progress=False)
    before = _tree(run / "best")
    ck = load_checkpoint(run / "best")
    with pytest.raises(TypeError):  # config.json cannot be written: the checkpoint dies half-way
        write_checkpoint(run, "best", ck.model, od(dataset, "train"), {"bad": object()})
    assert _tree(run / "best") == before
    assert not [p for p in run.iterdir() if p.name.startswith(".best")]
    # a crash between the two renames: best/ is aside; resuming puts it back
    from ilbot.training.rundir import recover
    aside = run / ".best.old-x1"
    os.rename(run / "best", aside)
    recover(run)
    assert _tree(run / "best") == before and not aside.exists()


def test_resume_adopts_a_run_written_before_markers(tmp_path, dataset):
    run = tmp_path / "run"
    train(dataset, run, load_config(None, TINY + ["epochs=2"]), show_progress=False, stop_at_step=2)
    (run / MARKER).unlink()
    assert train(dataset, run, resume=True, show_progress=False)["steps"] > 2
    assert is_owned(run, "run")


# ---------------------------------------------------------------- eval


@pytest.fixture(scope="module")
def trained(tmp_path_factory, dataset):
    run = tmp_path_factory.mktemp("evalrun") / "run"
    train(dataset, run, load_config(None, TINY), show_progress=False)
    return run


def test_eval_split_test_is_refused_not_mapped_to_val(tmp_path, dataset, trained, capsys):
    out = tmp_path / "rep"
    assert cli(["eval", "--model", str(trained), "--data", str(dataset), "--split", "test", "--out", str(out),
                "--quiet"]) == 2
    _one_line_error(capsys, "no split 'test'", "train, val")
    assert not out.exists()


def test_eval_report_is_atomic_private_and_needs_overwrite(tmp_path, dataset, trained, capsys):
    out = tmp_path / "rep"
    args = ["eval", "--model", str(trained), "--data", str(dataset), "--out", str(out), "--quiet",
            "--free-running-ticks", "0", "--max-windows", "40"]
    assert cli(args) == 0
    capsys.readouterr()
    assert is_owned(out, "report") and (out / "report.json").is_file()
    _assert_private(out)
    before = _tree(out)
    assert cli(args) == 2
    _one_line_error(capsys, str(out), "--overwrite")
    assert _tree(out) == before
    assert cli(args[:-1] + ["20", "--overwrite"]) == 0
    assert json.loads((out / "report.json").read_text())["meta"]["n_windows"] == 20
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "a.txt").write_text("mine")
    assert cli(args[:5] + ["--out", str(notes), "--quiet", "--overwrite"]) == 2
    assert (notes / "a.txt").read_text() == "mine" and len(list(notes.iterdir())) == 1
    for bad in (["--batch-size", "0"], ["--temperature", "nan"], ["--max-windows", "-1"]):
        assert cli(args + bad) == 2


# ---------------------------------------------------------------- atomic.py itself


def test_atomic_dir_keeps_the_previous_output_on_any_exception(tmp_path):
    target = tmp_path / "rep"
    with atomic_dir(target, "report", overwrite=False) as tmp:
        assert _mode(tmp) == 0o700 and tmp.parent == tmp_path and tmp.name.startswith(".rep.tmp-")
        (tmp / "a.json").write_text("1")
    before = _tree(target)
    for exc in (KeyboardInterrupt, OSError(errno.ENOSPC, "No space left on device")):
        with pytest.raises((KeyboardInterrupt, UserError)):
            with atomic_dir(target, "report", overwrite=True) as tmp:
                (tmp / "a.json").write_text("2")
                raise exc
        assert _tree(target) == before and sorted(os.listdir(tmp_path)) == ["rep"]
    with pytest.raises(UserError, match="not an ilbot training run"):
        prepare_output(target, "run", overwrite=True)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert prepare_output(empty, "dataset", overwrite=False) == "empty"
    with atomic_dir(empty, "dataset", overwrite=False) as tmp:
        (tmp / "x").write_text("x")
    assert is_owned(empty, "dataset")


def test_atomic_file_replaces_only_what_it_may(tmp_path):
    target = tmp_path / "s.db"
    with atomic_file(target, overwrite=False) as tmp:
        assert _mode(tmp) == 0o600 and tmp.parent == tmp_path
        tmp.write_bytes(b"one")
    assert target.read_bytes() == b"one" and _mode(target) == 0o600
    with pytest.raises(UserError, match="--overwrite"):
        with atomic_file(target, overwrite=False):
            pass
    with pytest.raises(UserError, match="not a file ilbot wrote"):
        with atomic_file(target, overwrite=True, check_owned=lambda p: False):
            pass
    with pytest.raises(KeyboardInterrupt):
        with atomic_file(target, overwrite=True) as tmp:
            tmp.write_bytes(b"half")
            raise KeyboardInterrupt
    assert target.read_bytes() == b"one" and sorted(os.listdir(tmp_path)) == ["s.db"]
    with atomic_file(target, overwrite=True, check_owned=lambda p: p.read_bytes() == b"one") as tmp:
        tmp.write_bytes(b"two")
    assert target.read_bytes() == b"two"
    link = tmp_path / "l.db"
    link.symlink_to(target)
    with pytest.raises(UserError, match="symbolic link"):
        with atomic_file(link, overwrite=True):
            pass
    os.mkfifo(tmp_path / "fifo.db")
    with pytest.raises(UserError, match="not a regular file"):
        with atomic_file(tmp_path / "fifo.db", overwrite=True):
            pass
