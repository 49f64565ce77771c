"""Dataset windows: rows equal the shared encoding functions, look-ahead, idle ticks, thinning,
splits, stats, lazy arrays and bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ilbot.cli import main
from ilbot.data import open_dataset
from ilbot.data.build import build_dataset
from ilbot.data.encoding import history_rows, target_rows
from ilbot.data.schema import A, F, T, Event
from ilbot.data.store import SessionWriter
from ilbot.data.thinning import thin_events, thin_times
from ilbot.errors import DataError, UserError

MS = 1_000_000


def _session(path, events, meta=None, ticks=None):
    base = {"source": "test", "window": {"x": 0, "y": 0, "width": 800, "height": 600}, "feature_spec": "empty",
            "feature_spec_hash": "h0"}
    with SessionWriter(path, base | (meta or {})) as w:
        w.add_events(events)
        for tk in ticks or []:
            w.add_tick(*tk)
    return path


def _random_events(rng, n, t_max_ms, burst=False):
    t = np.sort(rng.integers(0, t_max_ms * MS, n))
    evs = []
    if burst:  # a crowded tick: 150 key presses 1 ms apart (never thinned)
        evs = [Event.make(3000 * MS + i * MS, 5, 5, key_action=1, key_id=7) for i in range(150)]
    for ti in t:
        kind = rng.integers(0, 10)
        x, y = float(rng.integers(0, 800)), float(rng.integers(0, 600))
        if kind == 0:
            evs.append(Event.make(ti, x, y, button=int(rng.integers(1, 4)), hold_ms=float(rng.integers(50, 200))))
        elif kind == 1:
            evs.append(Event.make(ti, x, y, key_action=int(rng.integers(1, 3)), key_id=int(rng.integers(0, 50))))
        elif kind == 2:
            evs.append(Event.make(ti, x, y, scroll_y=int(rng.integers(1, 3))))
        else:
            evs.append(Event.make(ti, x, y))
    return sorted(evs, key=lambda e: e.t_ns)


def _reference_windows(events, tick_ns, window_size, thin_ms=15.0):
    """Windows built the slow way, with the shared encoding functions."""
    t = np.array([e.t_ns for e in events], np.int64)
    typ = np.array([int(e.type) for e in events])
    keep, _ = thin_events(t, typ, thin_ms)
    evs = [e for e, k in zip(events, keep) if k]
    n_ticks = evs[-1].t_ns // tick_ns + 1
    by_tick = [[] for _ in range(n_ticks)]
    for e in evs:
        by_tick[e.t_ns // tick_ns].append(e)
    out = []
    for t_ in range(n_ticks):
        later = [e for tt in range(t_ + 1, n_ticks) for e in by_tick[tt]]
        if not later:
            continue
        tg, tm, over = target_rows(by_tick[t_], later[0], t_ * tick_ns, window_size)
        hs, hm = [], []
        for k in range(t_ - T, t_):
            if k < 0:
                hs.append(np.zeros((A, 8), np.float32))
                hm.append(np.zeros(A, bool))
            else:
                r, m = history_rows(by_tick[k], k * tick_ns, window_size)
                hs.append(r)
                hm.append(m)
        out.append((np.stack(hs), np.stack(hm), tg, tm, over))
    return out


def test_windows_equal_shared_encoding(tmp_path):
    rng = np.random.default_rng(1)
    events = _random_events(rng, 400, 20_000, burst=True)
    p = _session(tmp_path / "s.ilbot.sqlite", events)
    build_dataset([p], tmp_path / "ds", progress=False)
    ds = open_dataset(tmp_path / "ds")
    ref = _reference_windows(events, 600 * MS, (800, 600))
    assert len(ds) == len(ref)
    b = ds.batch(np.arange(len(ds)))
    for i, (hs, hm, tg, tm, _) in enumerate(ref):
        np.testing.assert_array_equal(b["history"][i], hs)
        np.testing.assert_array_equal(b["history_mask"][i], hm)
        np.testing.assert_array_equal(b["targets"][i], tg)
        np.testing.assert_array_equal(b["target_mask"][i], tm)
    assert b["gamestate"].shape == (len(ds), T, F)
    np.testing.assert_array_equal(b["window_size"], np.tile([800, 600], (len(ds), 1)))
    assert ds.stats["overflow"] == sum(r[4] for r in ref) >= 150 - (A - 1)  # the crowded tick overflowed
    assert ds.stats["history_overflow"] == ds.stats["overflow"] - 1 and ds.stats["overflow_windows"] == 1


def test_shapes_lookahead_and_idle_ticks(tmp_path):
    # events at 0.1 s and 5.0 s: ticks 1..7 are idle, tick 8 holds the last event → no window.
    events = [Event.make(100 * MS, 10, 20), Event.make(200 * MS, 30, 40, button=1, hold_ms=90),
              Event.make(5000 * MS, 50, 60)]
    p = _session(tmp_path / "s.ilbot.sqlite", events)
    stats = build_dataset([p], tmp_path / "ds", progress=False)
    ds = open_dataset(tmp_path / "ds")
    assert len(ds) == 8  # ticks 0..7; tick 8 has no next event
    assert ds["history"].shape == (8, T, A, 8)
    assert ds["history_mask"].shape == (8, T, A)
    assert ds["targets"].shape == (8, A, 7)
    assert ds["target_mask"].shape == (8, A)
    assert ds["gamestate"].shape == (8, T, F)
    assert ds["window_size"].shape == (8, 2)
    tm = ds["target_mask"][:]
    # every window ends with exactly one look-ahead slot: a contiguous valid prefix
    n_valid = tm.sum(1)
    assert all(tm[i, :n_valid[i]].all() and not tm[i, n_valid[i]:].any() for i in range(8))
    assert list(n_valid) == [3, 1, 1, 1, 1, 1, 1, 1]
    tg = ds["targets"][0]
    assert tg[0, 0] == pytest.approx(100.0) and tg[1, 0] == pytest.approx(100.0)  # dt from window start, prev
    assert tg[2, 0] == pytest.approx(4800.0)  # look-ahead crosses the window's end
    assert ds["targets"][1][0, 0] == pytest.approx(4400.0)  # idle tick 1: look-ahead from its start
    assert stats["idle_windows"] == 7
    assert stats["event_counts"] == {"CLICK": 1, "KEY": 0, "SCROLL": 0, "MOVE": 2}
    assert stats["hold_ms"]["median"] == pytest.approx(90.0)
    # history of window 1 is tick 0's two events at the end of the T axis
    h = ds["history"][1]
    assert ds["history_mask"][1][-1].sum() == 2 and not ds["history_mask"][1][:-1].any()
    assert h[-1, 1, 3] == 0  # type CLICK
    # lazy indexing forms agree
    np.testing.assert_array_equal(ds["targets"][[0, 2]][1], ds["targets"][2])
    np.testing.assert_array_equal(ds["targets"][-1], ds["targets"][7])
    np.testing.assert_array_equal(np.asarray(ds["target_mask"]), tm)
    assert ds["targets"][np.arange(8) < 2].shape == (2, A, 7)
    assert ds["targets"][0, 0].shape == (7,)
    with pytest.raises(IndexError):
        ds["targets"][8]
    with pytest.raises(KeyError):
        ds["nope"]
    assert "history" in ds and ds.key_vocab[0] == "UNK" and ds.spec_hash == "h0"


def test_lookahead_clip_and_thinning_counts(tmp_path):
    events = [Event.make(i * 5 * MS, i, 0) for i in range(10)]  # 5 ms apart: every third kept at 15 ms
    events += [Event.make(60_000 * MS, 1, 1)]
    p = _session(tmp_path / "s.ilbot.sqlite", events)
    stats = build_dataset([p], tmp_path / "ds", progress=False)
    assert stats["thinned"]["MOVE"] == 6  # kept: 0, 15, 30, 45 ms
    assert stats["event_counts_raw"]["MOVE"] == 11 and stats["event_counts"]["MOVE"] == 5
    ds = open_dataset(tmp_path / "ds")
    assert ds["targets"][0][4, 0] == pytest.approx(10_000.0)  # clipped at the horizon
    assert stats["lookahead_clipped_frac"] == pytest.approx(84 / 100)  # ticks 84..99 are < 10 s before it


def test_thin_times_matches_greedy_rule():
    rng = np.random.default_rng(0)
    for n in (0, 1, 2, 7, 50, 500):
        for _ in range(20):
            t = np.sort(rng.integers(0, n * 10 + 1, n))
            gap = int(rng.integers(1, 30))
            want, last = np.zeros(n, bool), None
            for i, x in enumerate(t):
                if last is None or x - last >= gap:
                    want[i], last = True, x
            np.testing.assert_array_equal(thin_times(t, gap), want)
    assert thin_times(np.array([0, 1, 2]), 0).all()


def test_recorded_ticks_and_features(tmp_path):
    feats = [np.full(F, k, np.float32) for k in range(4)]
    ticks = [(k, 1000 * MS + k * 500 * MS, {"k": k}, feats[k]) for k in range(4)]
    events = [Event.make(500 * MS, 1, 1), Event.make(1100 * MS, 2, 2), Event.make(2200 * MS, 3, 3),
              Event.make(2600 * MS, 4, 4)]
    p = _session(tmp_path / "s.ilbot.sqlite", events, ticks=ticks)
    stats = build_dataset([p], tmp_path / "ds", progress=False)
    assert stats["dropped_outside_ticks"] == 1  # the event before the first recorded tick
    ds = open_dataset(tmp_path / "ds")
    assert len(ds) == 3  # ticks 0, 1, 2 (tick 3 holds the last event)
    gs = ds["gamestate"][2]
    mean, std = np.array(stats["feature_mean"]), np.array(stats["feature_std"])
    np.testing.assert_allclose(gs[-1], (2 - mean) / std, rtol=1e-5)
    np.testing.assert_array_equal(gs[:-3], 0.0)  # padding before the session's first tick
    assert ds["targets"][0][0, 0] == pytest.approx(100.0)  # dt from the recorded tick start


def _user_sessions(tmp_path, users=(1, 2, 3, 4, 5)):
    paths = []
    for u in users:
        rng = np.random.default_rng(u)
        paths.append(_session(tmp_path / f"u{u}.ilbot.sqlite", _random_events(rng, 50, 5000), {"user": u}))
    return paths


def test_splits_by_user_and_session(tmp_path):
    paths = _user_sessions(tmp_path)
    st = build_dataset(paths, tmp_path / "ds", split_by="user", holdout=(2, 4), progress=False)
    tr, va = open_dataset(tmp_path / "ds", "train"), open_dataset(tmp_path / "ds", "val")
    assert set(va["user"]) == {2, 4} and set(tr["user"]) == {1, 3, 5}
    assert len(tr) + len(va) == len(open_dataset(tmp_path / "ds"))
    assert open_dataset(tmp_path / "ds", "holdout").split == "val"
    with pytest.raises(DataError, match="no split 'test'"):  # "test" is never quietly "val"
        open_dataset(tmp_path / "ds", "test")
    assert st["splits"]["val"]["sessions"] == 2 and st["computed_on"] == "train"
    build_dataset(paths, tmp_path / "ds2", split_by="session", holdout_frac=0.4, seed=0, progress=False)
    a = open_dataset(tmp_path / "ds2", "val")
    build_dataset(paths, tmp_path / "ds2", split_by="session", holdout_frac=0.4, seed=0, progress=False, overwrite=True)
    b = open_dataset(tmp_path / "ds2", "val")
    assert set(a["session"]) == set(b["session"]) and len(set(a["session"])) == 2
    build_dataset(paths, tmp_path / "ds3", split_by="session", holdout=("u3",), progress=False)
    assert set(open_dataset(tmp_path / "ds3", "val")["user"]) == {3}
    with pytest.raises(DataError, match="no split"):
        open_dataset(tmp_path / "ds3", "dev")
    with pytest.raises(DataError, match="user"):
        build_dataset(paths, tmp_path / "ds4", split_by="user", holdout=(9,), progress=False)
    with pytest.raises(DataError, match="every session"):
        build_dataset(paths, tmp_path / "ds4", split_by="user", holdout=(1, 2, 3, 4, 5), progress=False)


def test_build_and_stats_cli(tmp_path, capsys):
    paths = _user_sessions(tmp_path, (1, 2, 3))
    rc = main(["build", *map(str, paths), "--out", str(tmp_path / "ds"), "--split-by", "user", "--holdout", "3",
               "--no-progress"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "windows" in out and "overflow" in out
    assert main(["stats", str(tmp_path / "ds")]) == 0
    out = capsys.readouterr().out
    for word in ("CLICK", "MOVE", "q50", "events per tick", "overflow"):
        assert word in out
    stats = json.loads((tmp_path / "ds" / "stats.json").read_text())
    assert len(stats["feature_mean"]) == F and len(stats["events_per_tick_hist"]) == A + 1


def test_bad_inputs_one_line(tmp_path, capsys):
    garbage = tmp_path / "g.ilbot.sqlite"
    garbage.write_bytes(b"this is not sqlite at all" * 100)
    assert main(["build", str(garbage), "--out", str(tmp_path / "ds")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(garbage) in err
    assert main(["stats", str(tmp_path / "nope")]) == 2
    assert "nope" in capsys.readouterr().err
    (tmp_path / "notds").mkdir()
    (tmp_path / "notds" / "meta.json").write_text("{broken")
    with pytest.raises(DataError, match="meta.json"):
        open_dataset(tmp_path / "notds")
    other = tmp_path / "full"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    p = _user_sessions(tmp_path, (1,))
    with pytest.raises(UserError, match="not empty"):
        build_dataset(p, other, progress=False, overwrite=True)
    assert (other / "keep.txt").exists()
    q = _session(tmp_path / "h1.ilbot.sqlite", _random_events(np.random.default_rng(3), 20, 3000),
                 {"feature_spec_hash": "other"})
    with pytest.raises(DataError, match="different feature specs"):
        build_dataset(p + [q], tmp_path / "ds5", progress=False)
    bare = tmp_path / "bare.ilbot.sqlite"  # no spec in its meta and no ticks: the empty spec
    with SessionWriter(bare, {}) as w:
        w.add_events([Event.make(0, 1, 1), Event.make(700 * MS, 2, 2)])
    build_dataset([bare], tmp_path / "ds7", progress=False)
    from ilbot.data import load_spec
    assert open_dataset(tmp_path / "ds7").spec_hash == load_spec("empty").hash
    empty = _session(tmp_path / "e.ilbot.sqlite", [Event.make(0, 1, 1)])
    with pytest.raises(DataError, match="no window"):
        build_dataset([empty], tmp_path / "ds6", progress=False)


def test_progress_bar_on_a_terminal_and_in_logs():
    import io

    from ilbot.data.progress import Progress

    class Tty(io.StringIO):
        def isatty(self):
            return True

    tty, log = Tty(), io.StringIO()
    with Progress(3, "work", stream=tty) as p:
        for _ in range(3):
            p.update(1, "step")
    assert "\r" in tty.getvalue() and "3/3" in tty.getvalue() and tty.getvalue().endswith("\n")
    with Progress(20, "work", stream=log) as p:
        for _ in range(20):
            p.update()
    lines = log.getvalue().splitlines()
    assert 2 <= len(lines) <= 11 and lines[-1].startswith("work: 20/20")
    quiet = io.StringIO()
    with Progress(2, "work", stream=quiet, enabled=False) as p:
        p.update(2)
    assert quiet.getvalue() == ""
