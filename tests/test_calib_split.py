"""The `calib` split of `ilbot build --calib-frac F`: sessions held out of training and of
validation for `ilbot eval calibrate --split calib` (ilbot.data.build). Real session stores, the
real builder, a tiny real training run."""

from __future__ import annotations

import json
import math
from collections import Counter

import numpy as np
import pytest

from ilbot.cli import main as cli
from ilbot.data import open_dataset
from ilbot.data.build import _spread_pick, build_dataset
from ilbot.data.schema import F, Event
from ilbot.data.store import SessionWriter
from ilbot.errors import ConfigError, DataError
from ilbot.model.checkpoint import load_checkpoint
from ilbot.training.config import load_config
from ilbot.training.loop import open_split, train
from ilbot.training.synthetic import make_sessions

MS = 1_000_000
TICK_NS = 600 * MS
TINY = ["model={d_model=16, n_heads=2, n_context_layers=1, n_decoder_layers=1, ff_mult=2, dropout=0.0}",
        "data.batch_size=16", "epochs=1", "data.epoch_windows=96", "optim.warmup_steps=2"]


def _store(path, seed: int, user: int, value: float, n_ticks: int = 12):
    """A session store with `n_ticks` recorded 600 ms ticks whose features are all `value`, and
    two to four MOVE/CLICK events in every tick."""
    rng = np.random.default_rng(seed)
    meta = {"source": "test", "user": user, "window": {"x": 0, "y": 0, "width": 800, "height": 600},
            "feature_spec": "empty", "feature_spec_hash": "h0"}
    events = []
    for k in range(n_ticks):
        for off in np.sort(rng.integers(1, 590, int(rng.integers(2, 5)))):
            x, y = float(rng.integers(0, 800)), float(rng.integers(0, 600))
            t = k * TICK_NS + int(off) * MS
            events.append(Event.make(t, x, y, button=1, hold_ms=90.0) if rng.random() < 0.2 else Event.make(t, x, y))
    with SessionWriter(path, meta) as w:
        w.add_events(events)
        for k in range(n_ticks):
            w.add_tick(k, k * TICK_NS, {"k": k}, np.full(F, value, np.float32))
    return path


def _stores(tmp_path, users: list[int]) -> list:
    """One store per entry of `users` (its user id); session i has feature value i + 1."""
    folder = tmp_path / "sessions"
    folder.mkdir(exist_ok=True)
    return [_store(folder / f"s{i:02d}.ilbot.sqlite", i, u, float(i + 1)) for i, u in enumerate(users)]


def _meta(ds_path) -> dict:
    return json.loads((ds_path / "meta.json").read_text())


def _sessions_by_split(ds_path) -> dict[str, set[int]]:
    out: dict[str, set[int]] = {}
    for s in _meta(ds_path)["sessions"]:
        out.setdefault(s["split"], set()).add(s["index"])
    return out


def test_session_split_holds_out_a_calib_share_of_the_training_sessions(tmp_path):
    paths = _stores(tmp_path, [1] * 10)
    st = build_dataset(paths, tmp_path / "ds", split_by="session", holdout_frac=0.2, calib_frac=0.25, seed=3,
                       progress=False)
    ds = tmp_path / "ds"
    meta = _meta(ds)
    assert meta["split_names"] == ["train", "val", "calib"] and meta["config"]["calib_frac"] == 0.25
    by = _sessions_by_split(ds)
    # 2 of 10 held out as val, then round(0.25 × 8) = 2 of the remaining 8 as calib
    assert (len(by["train"]), len(by["val"]), len(by["calib"])) == (6, 2, 2)
    tr, va, ca = (open_dataset(ds, s) for s in ("train", "val", "calib"))
    win = {name: set(d["session"].tolist()) for name, d in (("train", tr), ("val", va), ("calib", ca))}
    assert win == by  # every window of a session is in its session's split
    assert not (win["train"] & win["val"]) and not (win["train"] & win["calib"]) and not (win["val"] & win["calib"])
    assert len(tr) + len(va) + len(ca) == len(open_dataset(ds)) == meta["n_windows"]
    assert set(np.asarray(np.load(ds / "window_split.npy")).tolist()) == {0, 1, 2}
    assert st["splits"]["calib"]["sessions"] == 2 and st["splits"]["calib"]["n_windows"] == len(ca)
    # the val pick is the one a build without calib makes (its own random stream), and reproducible
    build_dataset(paths, tmp_path / "plain", split_by="session", holdout_frac=0.2, seed=3, progress=False)
    assert _sessions_by_split(tmp_path / "plain")["val"] == by["val"]
    build_dataset(paths, tmp_path / "again", split_by="session", holdout_frac=0.2, calib_frac=0.25, seed=3,
                  progress=False)
    assert _sessions_by_split(tmp_path / "again") == by
    # a tiny share still holds out one session
    build_dataset(paths, tmp_path / "one", split_by="session", holdout=("s00", "s01"), calib_frac=0.01,
                  progress=False)
    one = _sessions_by_split(tmp_path / "one")
    assert one["val"] == {0, 1} and len(one["calib"]) == 1 and len(one["train"]) == 7


def test_spread_pick_spreads_a_share_over_users_and_keeps_each_one_known():
    rng = np.random.default_rng(0)
    for trial in range(300):
        n_users = int(rng.integers(1, 7))
        users = [u for u in range(n_users) for _ in range(int(rng.integers(1, 9)))]
        users = [users[i] for i in rng.permutation(len(users))]
        if rng.random() < 0.2:
            users[0] = None  # an unknown user counts as one user of its own
        m = len(users)
        candidates = np.sort(rng.choice(m, size=int(rng.integers(1, m + 1)), replace=False))
        k = int(rng.integers(0, len(candidates) + 1))
        got = _spread_pick(candidates, users, k, np.random.default_rng(trial))
        assert len(got) == len(set(got.tolist())) == k and set(got.tolist()) <= set(candidates.tolist())
        n_u = Counter(str(users[i]) for i in candidates)
        took = Counter(str(users[i]) for i in got)
        spare = sum(n - 1 for n in n_u.values())
        if k <= spare:  # every user keeps a candidate that is not picked
            assert all(took[u] < n for u, n in n_u.items())
        else:  # only then do users leave wholly, after every user is down to one
            assert all(took[u] >= n - 1 for u, n in n_u.items())
        quota = {u: k * n / len(candidates) for u, n in n_u.items()}
        if all(math.ceil(q) <= n - 1 for u, q in quota.items() for n in [n_u[u]]):  # no cap binds: proportional
            assert all(math.floor(q) <= took[u] <= math.ceil(q) for u, q in quota.items())
    # one user: a plain seeded draw (the picks single-user datasets had before the spread)
    cand = np.arange(3, 13)
    assert _spread_pick(cand, [7] * 13, 4, np.random.default_rng(5)).tolist() == \
        cand[np.random.default_rng(5).permutation(10)[:4]].tolist()


def test_session_and_calib_shares_are_spread_over_users(tmp_path):
    # a random 40 % of these sessions could take all of user 3's; spread, each user gives its share
    users = [1] * 5 + [2] * 5 + [3] * 2 + [4] * 3
    paths = _stores(tmp_path, users)
    for seed in range(3):
        build_dataset(paths, tmp_path / f"ds{seed}", split_by="session", holdout_frac=0.4, calib_frac=0.2,
                      seed=seed, progress=False)
        sessions = _meta(tmp_path / f"ds{seed}")["sessions"]
        per = {(s["user"], s["split"]): 0 for s in sessions}
        for s in sessions:
            per[s["user"], s["split"]] += 1
        assert sum(s["split"] == "val" for s in sessions) == 6  # round(0.4 × 15)
        assert per[1, "val"] == per[2, "val"] == 2 and per[3, "val"] == 1 and per[4, "val"] == 1
        assert all(per.get((u, "train"), 0) >= 1 for u in set(users))  # every user keeps a training session
        assert sum(s["split"] == "calib" for s in sessions) == 2  # round(0.2 × 9), from two users
        assert len({s["user"] for s in sessions if s["split"] == "calib"}) == 2
        stats = json.loads((tmp_path / f"ds{seed}" / "stats.json").read_text())  # what `ilbot build` prints
        for split in ("train", "val", "calib"):
            assert stats["splits"][split]["sessions_by_user"] == {
                str(u): n for (u, sp), n in sorted(per.items()) if sp == split}


def test_user_split_keeps_held_out_users_in_val_and_takes_calib_from_training_users(tmp_path):
    users = [1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4]
    paths = _stores(tmp_path, users)
    build_dataset(paths, tmp_path / "ds", split_by="user", holdout=(2,), calib_frac=0.34, seed=0, progress=False)
    by = _sessions_by_split(tmp_path / "ds")
    assert by["val"] == {3, 4, 5}  # every session of user 2, and only those
    assert len(by["calib"]) == 3 and len(by["train"]) == 6  # round(0.34 × 9)
    ca, va, tr = (open_dataset(tmp_path / "ds", s) for s in ("calib", "val", "train"))
    assert set(va["user"].tolist()) == {2}
    assert 2 not in set(ca["user"].tolist()) and set(ca["user"].tolist()) <= {1, 3, 4}
    assert 2 not in set(tr["user"].tolist())


def test_user_split_by_share_holds_out_whole_users_at_random(tmp_path, capsys):
    # the scripts' user split on data whose user ids are not known in advance
    users = [1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8]
    paths = _stores(tmp_path, users)
    val_users = {}
    for seed in (0, 1, 2):
        build_dataset(paths, tmp_path / f"ds{seed}", split_by="user", holdout_frac=0.25, calib_frac=0.1, seed=seed,
                      progress=False)
        meta = _meta(tmp_path / f"ds{seed}")
        held = {s["user"] for s in meta["sessions"] if s["split"] == "val"}
        assert len(held) == 2  # round(0.25 × 8 users)
        for s in meta["sessions"]:  # a held-out user has every session in val, the others none
            assert (s["split"] == "val") == (s["user"] in held)
        val_users[seed] = held
    assert len({frozenset(v) for v in val_users.values()}) > 1  # the seed draws the users
    build_dataset(paths, tmp_path / "again", split_by="user", holdout_frac=0.25, calib_frac=0.1, seed=0,
                  progress=False)
    assert {s["user"] for s in _meta(tmp_path / "again")["sessions"] if s["split"] == "val"} == val_users[0]
    # a named user comes on top of the drawn ones; a tiny share still takes one user, a large one never all
    build_dataset(paths, tmp_path / "named", split_by="user", holdout=(8,), holdout_frac=0.01, progress=False)
    held = {s["user"] for s in _meta(tmp_path / "named")["sessions"] if s["split"] == "val"}
    assert 8 in held and len(held) in (1, 2)
    build_dataset(paths, tmp_path / "most", split_by="user", holdout_frac=0.99, progress=False)
    assert len({s["user"] for s in _meta(tmp_path / "most")["sessions"] if s["split"] == "train"}) == 1
    # the CLI takes the share with --split-by user
    assert cli(["build", *map(str, paths), "--out", str(tmp_path / "cli"), "--no-progress", "--split-by", "user",
                "--holdout-frac", "0.25", "--seed", "1"]) == 0
    capsys.readouterr()
    assert {s["user"] for s in _meta(tmp_path / "cli")["sessions"] if s["split"] == "val"} == val_users[1]
    assert cli(["build", *map(str, paths), "--out", str(tmp_path / "none"), "--no-progress", "--split-by", "user"]) == 2
    assert "--holdout-frac" in capsys.readouterr().err and not (tmp_path / "none").exists()


def test_stats_and_training_see_only_the_train_split(tmp_path):
    paths = _stores(tmp_path, [1] * 8)
    st = build_dataset(paths, tmp_path / "ds", split_by="session", holdout_frac=0.25, calib_frac=0.5, seed=1,
                       progress=False)
    meta = _meta(tmp_path / "ds")
    value = {s["index"]: float(s["index"] + 1) for s in meta["sessions"]}  # sorted paths: s00 … s07
    n_ticks = {s["index"]: s["n_ticks"] for s in meta["sessions"]}
    train_ix = [s["index"] for s in meta["sessions"] if s["split"] == "train"]
    calib_ix = [s["index"] for s in meta["sessions"] if s["split"] == "calib"]
    assert len(train_ix) == 3 and len(calib_ix) == 3
    want = sum(value[i] * n_ticks[i] for i in train_ix) / sum(n_ticks[i] for i in train_ix)
    with_calib = (sum(value[i] * n_ticks[i] for i in train_ix + calib_ix)
                  / sum(n_ticks[i] for i in train_ix + calib_ix))
    assert st["feature_mean"][0] == pytest.approx(want, rel=1e-6)
    assert st["feature_mean"][0] != pytest.approx(with_calib, rel=1e-3)
    assert st["computed_on"] == "train"
    assert st["n_windows"] == st["splits"]["train"]["n_windows"] < st["all"]["n_windows"]
    assert st["event_counts"] == st["splits"]["train"]["event_counts"]
    # `ilbot train` opens its splits by name: "train" and "val", never calib windows
    cfg = load_config(None, [])
    assert (cfg.data.train_split, cfg.data.val_split) == ("train", "val")
    tr = open_split(tmp_path / "ds", cfg.data.train_split, "data.train_split")
    va = open_split(tmp_path / "ds", cfg.data.val_split, "data.val_split")
    assert set(tr["session"].tolist()) == set(train_ix)
    assert not (set(va["session"].tolist()) & set(calib_ix))


def test_default_builds_are_unchanged(tmp_path):
    paths = _stores(tmp_path, [1, 1, 2, 2, 3])
    build_dataset(paths, tmp_path / "split", split_by="session", holdout_frac=0.4, seed=0, progress=False)
    build_dataset(paths, tmp_path / "whole", progress=False)
    for name, want in (("split", ["train", "val"]), ("whole", ["train"])):
        meta = _meta(tmp_path / name)
        assert meta["split_names"] == want
        assert {s["split"] for s in meta["sessions"]} == set(want)
        assert np.load(tmp_path / name / "window_split.npy").max() == len(want) - 1
        stats = json.loads((tmp_path / name / "stats.json").read_text())
        assert list(stats["splits"]) == want
        with pytest.raises(DataError, match=r"no split 'calib' \(splits: " + ", ".join(want)):
            open_dataset(tmp_path / name, "calib")


def test_bad_calib_frac_is_one_line(tmp_path, capsys):
    paths = [str(p) for p in _stores(tmp_path, [1, 1, 2, 2, 3])]
    out = tmp_path / "ds"
    bad = [(["--holdout-frac", "0.2", "--calib-frac", v], "--calib-frac") for v in ("0", "1", "-0.1", "1.5", "nan", "inf")]
    bad += [(["--calib-frac", "0.2"], "needs a split"),  # no val split to hold it out beside
            (["--split-by", "session", "--holdout", "s00,s01,s02", "--calib-frac", "0.9"], "leaves none to train on"),
            (["--split-by", "user", "--holdout", "1,2", "--calib-frac", "0.1"], "leaves none to train on")]
    for args, words in bad:
        assert cli(["build", *paths, "--out", str(out), "--no-progress", *args]) == 2, args
        cap = capsys.readouterr()
        assert cap.err.startswith("ilbot build: error:") and cap.err.count("\n") == 1, (args, cap.err)
        assert words in cap.err and "Traceback" not in cap.err, (args, cap.err)
        assert not out.exists(), args
    # one session is cut by time into train and val only: no calib part
    assert cli(["build", paths[0], "--out", str(out), "--no-progress", "--holdout-frac", "0.3",
                "--calib-frac", "0.2"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--calib-frac" in err and "one session" in err and not out.exists()
    # the API refuses the same without a split
    with pytest.raises(ConfigError, match="calib_frac"):
        build_dataset(paths, out, calib_frac=0.2, progress=False)
    with pytest.raises(DataError, match="needs a val split"):
        build_dataset(paths, out, split_by="user", calib_frac=0.2, progress=False)
    with pytest.raises(ConfigError, match="calib_frac"):
        build_dataset(paths, out, split_by="session", holdout_frac=0.2, calib_frac=1.0, progress=False)


def test_build_cli_prints_the_calib_split(tmp_path, capsys):
    paths = [str(p) for p in _stores(tmp_path, [1] * 6)]
    assert cli(["build", *paths, "--out", str(tmp_path / "ds"), "--no-progress", "--holdout-frac", "0.2",
                "--calib-frac", "0.2", "--seed", "4"]) == 0
    out = capsys.readouterr().out
    assert "[train]" in out and "[val]" in out and "[calib]" in out and "note: no validation split" not in out
    assert cli(["stats", str(tmp_path / "ds")]) == 0
    assert "splits train, val, calib" in capsys.readouterr().out


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A tiny model trained on the train split of a dataset with val and calib splits."""
    root = tmp_path_factory.mktemp("calibsplit")
    paths = make_sessions(root / "sessions", n_sessions=6, duration_s=60)
    build_dataset(paths, root / "ds", split_by="session", holdout_frac=0.2, calib_frac=0.2, seed=0, progress=False)
    build_dataset(paths, root / "ds_plain", split_by="session", holdout_frac=0.2, seed=0, progress=False)
    train(root / "ds", root / "run", load_config(None, TINY), show_progress=False)
    return root


def test_calibrate_and_eval_on_the_calib_split(run, tmp_path, capsys):
    ds, ck = run / "ds", run / "run" / "last"
    assert _meta(ds)["split_names"] == ["train", "val", "calib"]
    n_calib = len(open_dataset(ds, "calib"))
    assert n_calib > 0
    out = tmp_path / "cal"
    assert cli(["eval", "calibrate", "--model", str(ck), "--data", str(ds), "--split", "calib", "--out", str(out),
                "--quiet"]) == 0
    assert "calibration written to" in capsys.readouterr().out
    fit = load_checkpoint(out).calibration.fit
    assert fit["split"] == "calib" and fit["windows"] == fit["windows_in_split"] == n_calib
    report = tmp_path / "report"
    assert cli(["eval", "--model", str(out), "--data", str(ds), "--split", "calib", "--out", str(report),
                "--free-running-ticks", "0", "--max-windows", "40", "--baseline-windows", "200", "--quiet"]) == 0
    capsys.readouterr()
    doc = json.loads((report / "report.json").read_text())
    assert doc["meta"]["split"] == "calib" and doc["meta"]["windows_in_split"] == n_calib
    assert doc["meta"]["calibration"]["fit"]["split"] == "calib"
    # without --split, calibrate takes calib where the dataset has it, else val
    for data, want in ((ds, "calib"), (run / "ds_plain", "val")):
        dest = tmp_path / f"default_{want}"
        assert cli(["eval", "calibrate", "--model", str(ck), "--data", str(data), "--out", str(dest), "--quiet"]) == 0
        assert load_checkpoint(dest).calibration.fit["split"] == want
    capsys.readouterr()


def test_calib_split_on_a_dataset_without_one_is_one_line(run, tmp_path, capsys):
    plain, ck = run / "ds_plain", run / "run" / "last"
    assert cli(["eval", "calibrate", "--model", str(ck), "--data", str(plain), "--split", "calib", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(plain) in err and "splits: train, val" in err and "--calib-frac" in err
    assert cli(["eval", "--model", str(ck), "--data", str(plain), "--split", "calib",
                "--out", str(tmp_path / "r"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(plain) in err and "splits: train, val" in err
    assert load_checkpoint(ck).calibration is None  # nothing was written
