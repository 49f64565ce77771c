"""`ilbot import` against hostile input and faults: absurd numbers, names that climb out of
--out, odd characters, existing files, a full disk and a kill mid-write (real files, real SQLite)."""

from __future__ import annotations

import os
import signal
import sqlite3
import stat
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from ilbot.cli import main
from ilbot.data import open_session
from ilbot.data.importers import run_import
from ilbot.data.store import shown
from ilbot.errors import DataError

BAL_HEADER = "record timestamp,client timestamp,button,state,x,y\n"
KEYS_HEADER = "user,session,keyname,timepress,timerelease\n"
CSV_HEADER = "timestamp,event_type,x_in_window,y_in_window,btn,key,scroll_dx,scroll_dy\n"
HUGE = "1" * 400  # a 400-digit number


def _write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _balabit(tmp_path, rows, user="user3", name="s1"):
    return _write(tmp_path / "in" / user / name, BAL_HEADER + "".join(r + "\n" for r in rows))


def _import(fmt, src, out, *extra):
    return main(["import", fmt, str(src), "--out", str(out), "--no-progress", *extra])


def _one_line_err(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def _stores(folder):
    return sorted(folder.glob("*.ilbot.sqlite"))


def _check_store_consistent(path):
    """The store opens, its rows pass the readers' checks and meta counts are the stored counts."""
    with open_session(path) as s:
        ev = s.event_array()
        counts = s.meta["import_counts"]["events"]
        assert sum(counts.values()) == len(ev) == s.n_events
        types = ev[:, 1].astype(int)
        assert counts == {n: int((types == i).sum()) for i, n in enumerate(("CLICK", "KEY", "SCROLL", "MOVE"))}
        return ev


# -- absurd numbers: rejected per row, counted by reason, never poisoning the other rows ---------------

@pytest.mark.parametrize("bad_t", ["nan", "inf", "-inf", "1e300", "-1e15", HUGE])
def test_balabit_absurd_time_rows_skipped(tmp_path, capsys, bad_t):
    rows = [f"0.0,{i * 0.05:.2f},NoButton,Move,{i},{i}" for i in range(20)]
    rows.insert(7, f"0.3,{bad_t},NoButton,Move,5,5")
    p = _balabit(tmp_path, rows)
    assert _import("balabit", p, tmp_path / "out") == 0
    out = capsys.readouterr().out
    reason = "t not finite" if bad_t in ("nan", "inf", "-inf") else "t out of range"
    assert f"skipped 1 row: {reason} (1); first: {p}:9 client timestamp={shown(bad_t)}" in out.splitlines()
    ev = _check_store_consistent(tmp_path / "out" / "balabit_user3_s1.ilbot.sqlite")
    assert len(ev) == 20 and ev[:, 0].min() == 0 and ev[-1, 0] == pytest.approx(0.95e9)
    assert _import("balabit", p, tmp_path / "strict", "--strict") == 2
    assert _one_line_err(capsys).endswith(f"{p}:9: client timestamp={shown(bad_t)}: {reason}")


def test_balabit_outlier_time_and_huge_coordinates(tmp_path, capsys):
    rows = [f"0.0,{i * 0.05:.2f},NoButton,Move,{i},{i}" for i in range(20)]
    rows[3] = "0.1,1000000000,NoButton,Move,3,3"  # in range, but 31 years from the session
    rows[5] = f"0.1,0.25,NoButton,Move,{HUGE},5"
    rows[6] = "0.1,0.30,NoButton,Move,5,nan"
    rows[8] = "nan,0.40,NoButton,Move,5,5"  # the record clock feeds the wrap repair
    rows[9] = "0.1,0.45,NoButton,Move,-1e7,5"
    p = _balabit(tmp_path, rows)
    assert _import("balabit", p, tmp_path / "out") == 0
    line = [x for x in capsys.readouterr().out.splitlines() if x.startswith("skipped")]
    assert line == [f"skipped 5 rows: x out of range (2), record t not finite (1), y not finite (1), "
                    f"t far from the session (over 7 days from its median time) (1); first: {p}:5 "
                    f"client timestamp='1000000000'"]
    ev = _check_store_consistent(tmp_path / "out" / "balabit_user3_s1.ilbot.sqlite")
    assert len(ev) == 15 and ev[:, 0].max() < 1e9 and np.abs(ev[:, 2:4]).max() < 20


def test_keystrokes_absurd_times(tmp_path, capsys):
    good = "".join(f"7,1,a,{1000 + 100 * i},{1050 + 100 * i}\n" for i in range(10))
    bad = ["7,1,b,nan,5", "7,1,c,10,inf", "7,1,d,1e300,1e300", "7,1,e,-1e15,100", f"7,1,f,{HUGE},{HUGE}",
           "7,1,g,9e12,9e12", "7,1,h,1e12,1e12", "7,1,i,1000,1e12"]  # 9e12 ms: past year 2096; 1e12: 31 years on
    p = _write(tmp_path / "k.csv", KEYS_HEADER + good + "".join(b + "\n" for b in bad))
    assert _import("keystrokes", p, tmp_path / "out") == 0
    line = [x for x in capsys.readouterr().out.splitlines() if x.startswith("skipped")]
    assert line == [f"skipped 8 rows: press t out of range (4), press t not finite (1), release t not finite (1), "
                    f"press t far from the session (over 7 days from its median time) (1), "
                    f"release t far from the session (over 7 days from its median time) (1); "
                    f"first: {p}:12 timepress='nan'"]
    ev = _check_store_consistent(tmp_path / "out" / "keystrokes_user7_session1.ilbot.sqlite")
    assert len(ev) == 20 and ev[:, 0].min() == 0 and ev[:, 0].max() == 950 * 1_000_000


def test_ilbot_csv_absurd_times_and_positions(tmp_path, capsys):
    good = "".join(f"{1000 + 10 * i},move,{i},{i},,,0,0\n" for i in range(10))
    bad = ["nan,move,1,1,,,0,0", "inf,move,1,1,,,0,0", "1e300,move,1,1,,,0,0", "-1e15,move,1,1,,,0,0",
           "1200,move,nan,1,,,0,0", "1200,move,1,inf,,,0,0", f"1200,move,{HUGE},1,,,0,0", "1200,scroll,1,1,,,0,nan",
           "1200,click,2000000,1,left,,0,0"]
    p = _write(tmp_path / "a.csv", CSV_HEADER + good + "".join(b + "\n" for b in bad))
    assert _import("ilbot-csv", p, tmp_path / "out") == 0
    line = [x for x in capsys.readouterr().out.splitlines() if x.startswith("skipped")]
    assert line == [f"skipped 9 rows: t not finite (2), t out of range (2), x out of range (2), x not finite (1), "
                    f"y not finite (1), scroll_dy not finite (1); first: {p}:12 timestamp='nan'"]
    ev = _check_store_consistent(tmp_path / "out" / "ilbotcsv_a.ilbot.sqlite")
    assert len(ev) == 10 and list(ev[:, 0]) == [i * 10_000_000 for i in range(10)]
    assert _import("ilbot-csv", p, tmp_path / "strict", "--strict") == 2
    assert _one_line_err(capsys).endswith(f"{p}:12: timestamp='nan': t not finite")


def test_every_row_bad_imports_nothing_poisoned(tmp_path, capsys):
    p = _write(tmp_path / "a.csv", CSV_HEADER + "nan,move,1,1,,,0,0\ninf,move,1,1,,,0,0\n")
    assert _import("ilbot-csv", p, tmp_path / "out") == 0
    assert "skipped 2 rows: t not finite (2)" in capsys.readouterr().out
    assert _check_store_consistent(tmp_path / "out" / "ilbotcsv_a.ilbot.sqlite").shape == (0, 9)
    k = _write(tmp_path / "k.csv", KEYS_HEADER + "1,1,a,nan,1\n")
    assert _import("keystrokes", k, tmp_path / "out2") == 0
    out = capsys.readouterr().out
    assert f"skipped 1 row: press t not finite (1); first: {k}:2 timepress='nan'" in out
    assert "imported 0 session(s)" in out


# -- odd characters and names from data ------------------------------------------------------------

def test_nul_and_odd_characters_in_user_and_key_fields(tmp_path, capsys):
    rows = ["us\x00er,1,a,0,10", 'u1,"se\nss",b,0,10', "u1,2,\x00\x1b[31mred,0,10", "u1,2,\u00e9\u200b,20,30",
            "u1,2,a,40,50"]
    p = _write(tmp_path / "k.csv", KEYS_HEADER + "".join(r + "\n" for r in rows))
    assert _import("keystrokes", p, tmp_path / "out") == 0
    out = capsys.readouterr().out
    names = [s.name for s in _stores(tmp_path / "out")]
    assert names == ["keystrokes_useru1_session2.ilbot.sqlite", "keystrokes_useru1_sessionse_ss.ilbot.sqlite",
                     "keystrokes_userus_er_session1.ilbot.sqlite"]
    assert "skipped" not in out
    for s in _stores(tmp_path / "out"):
        _check_store_consistent(s)
    unk = [x for x in out.splitlines() if x.startswith("unknown keys")]
    assert unk == ["unknown keys (mapped to UNK): \\x00\\x1b[31mred 1, \u00e9\\u200b 1"]
    with open_session(tmp_path / "out" / names[2]) as s:
        assert s.meta["user"] == "us\x00er"  # kept in meta (JSON), only the file name is reduced


def test_user_field_cannot_climb_out_of_out(tmp_path, capsys):
    victim = tmp_path / "victim"
    victim.mkdir()
    out = tmp_path / "a" / "b" / "c" / "out"
    p = _write(tmp_path / "k.csv", KEYS_HEADER + "../../../../victim/x,0,a,0,10\n")
    assert _import("keystrokes", p, out) == 0
    assert list(victim.iterdir()) == []
    assert [s.name for s in _stores(out)] == ["keystrokes_uservictim_x_session0.ilbot.sqlite"]
    assert {q.parent for q in tmp_path.rglob("*.ilbot.sqlite")} == {out}
    for user in ("../..", "/", "\x00", "\U0001F600"):
        p.write_text(KEYS_HEADER + f"{user},0,a,0,10\n")
        assert _import("keystrokes", p, tmp_path / "o2") == 2
        err = _one_line_err(capsys)
        assert f"{p}:2: user=" in err and "leaves no usable store name" in err
    assert not (tmp_path / "o2").exists() or not list((tmp_path / "o2").iterdir())


def test_names_that_collide_after_sanitising_are_refused(tmp_path, capsys):
    p = _write(tmp_path / "k.csv", KEYS_HEADER + "a/b,0,a,0,10\na_b,0,a,0,10\n")
    assert _import("keystrokes", p, tmp_path / "out") == 2
    err = _one_line_err(capsys)
    assert "keystrokes_usera_b_session0" in err and "separate folders" in err


# -- existing files: never appended to, replaced only when ilbot's own ------------------------------

def _keys_file(tmp_path, n, name="k.csv"):
    return _write(tmp_path / name, KEYS_HEADER + "".join(f"9,0,a,{100 * i},{100 * i + 50}\n" for i in range(n)))


def test_second_import_is_refused_not_appended(tmp_path, capsys):
    out = tmp_path / "out"
    assert _import("keystrokes", _keys_file(tmp_path, 50), out) == 0
    store = out / "keystrokes_user9_session0.ilbot.sqlite"
    before = store.read_bytes()
    capsys.readouterr()
    assert _import("keystrokes", _keys_file(tmp_path, 5, "other.csv"), out) == 2
    err = _one_line_err(capsys)
    assert str(store) in err and "--overwrite" in err
    assert store.read_bytes() == before
    with open_session(store) as s:
        assert s.n_events == 100 and s.meta["source_file"].endswith("k.csv")
    assert _import("keystrokes", tmp_path / "other.csv", out, "--overwrite") == 0
    assert len(_check_store_consistent(store)) == 10


def test_overwrite_refuses_files_that_are_not_stores(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    target = out / "keystrokes_user9_session0.ilbot.sqlite"
    foreign = sqlite3.connect(target)  # an SQLite file, but not ilbot's
    foreign.execute("CREATE TABLE t (a)")
    foreign.commit()
    foreign.close()
    before = target.read_bytes()
    assert _import("keystrokes", _keys_file(tmp_path, 5), out, "--overwrite") == 2
    assert "not a file ilbot wrote" in _one_line_err(capsys)
    assert target.read_bytes() == before
    target.unlink()
    target.symlink_to(tmp_path / "k.csv")
    assert _import("keystrokes", tmp_path / "k.csv", out, "--overwrite") == 2
    assert "symbolic link" in _one_line_err(capsys)
    assert (tmp_path / "k.csv").read_text().startswith(KEYS_HEADER)


def test_permissions_user_only(tmp_path):
    out = tmp_path / "new" / "out"
    run_import("keystrokes", [_keys_file(tmp_path, 5)], out, progress=False)
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(out.parent).st_mode) == 0o700
    for f in out.iterdir():
        assert stat.S_IMODE(os.stat(f).st_mode) == 0o600, f
    old = os.umask(0)  # a permissive umask changes nothing
    try:
        run_import("keystrokes", [_keys_file(tmp_path, 5)], tmp_path / "o2", progress=False)
    finally:
        os.umask(old)
    assert {stat.S_IMODE(os.stat(f).st_mode) for f in (tmp_path / "o2").iterdir()} == {0o600}


# -- faults: a full disk, a kill mid-write ------------------------------------------------------------

_LIMITED = textwrap.dedent("""
    import resource, signal, sys
    from ilbot.cli import main
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # over the limit a write fails (EFBIG) instead
    limit = int(sys.argv[1])
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    sys.exit(main(sys.argv[2:]))
""")


def test_size_limited_overwrite_keeps_previous_store(tmp_path):
    out = tmp_path / "out"
    assert _import("keystrokes", _keys_file(tmp_path, 100), out) == 0
    store = out / "keystrokes_user9_session0.ilbot.sqlite"
    before = store.read_bytes()
    big = _keys_file(tmp_path, 20_000, "big.csv")
    r = subprocess.run([sys.executable, "-c", _LIMITED, "65536", "import", "keystrokes", str(big), "--out", str(out),
                        "--overwrite", "--no-progress"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2, r.stderr
    err = r.stderr.strip().splitlines()
    assert len(err) == 1 and str(store) in err[0] and "nothing was replaced" in err[0]
    assert store.read_bytes() == before
    assert [f.name for f in out.iterdir()] == [store.name]  # no temp file left behind
    assert len(_check_store_consistent(store)) == 200


@pytest.fixture
def small_disk(tmp_path):
    """A 2 MiB tmpfs (needs the right to mount; skipped elsewhere)."""
    d = tmp_path / "disk"
    d.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(d)], capture_output=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.decode().strip()}")
    try:
        yield d
    finally:
        subprocess.run(["umount", str(d)], check=False)


def test_full_disk_overwrite_keeps_previous_store(tmp_path, capsys, small_disk):
    out = small_disk / "out"
    assert _import("keystrokes", _keys_file(tmp_path, 1000), out) == 0
    store = out / "keystrokes_user9_session0.ilbot.sqlite"
    before = store.read_bytes()
    st = os.statvfs(small_disk)
    (small_disk / "filler").write_bytes(b"\0" * max(0, st.f_bavail * st.f_frsize - 3 * 4096))  # all but 3 pages
    capsys.readouterr()
    assert _import("keystrokes", _keys_file(tmp_path, 30_000, "big.csv"), out, "--overwrite") == 2
    err = _one_line_err(capsys)
    assert str(store) in err and ("full" in err or "No space" in err)
    assert store.read_bytes() == before
    assert sorted(f.name for f in out.iterdir()) == [store.name]
    assert len(_check_store_consistent(store)) == 2000


_KILLED = textwrap.dedent("""
    import sys
    from ilbot.cli import main
    sys.exit(main(["import", "keystrokes", sys.argv[1], "--out", sys.argv[2], "--overwrite", "--no-progress"]))
""")


def test_kill_mid_import_keeps_previous_store(tmp_path):
    out = tmp_path / "out"
    assert _import("keystrokes", _keys_file(tmp_path, 100), out) == 0
    store = out / "keystrokes_user9_session0.ilbot.sqlite"
    before = store.read_bytes()
    big = _keys_file(tmp_path, 400_000, "big.csv")
    proc = subprocess.Popen([sys.executable, "-c", _KILLED, str(big), str(out)])
    deadline = time.monotonic() + 60
    killed_mid_write = False
    while time.monotonic() < deadline and proc.poll() is None:
        tmp = [f for f in out.iterdir() if ".tmp-" in f.name]
        if tmp and tmp[0].stat().st_size > 0:  # SQLite is writing the new store beside the old one
            os.kill(proc.pid, signal.SIGKILL)
            killed_mid_write = True
            break
        time.sleep(0.001)
    proc.wait()
    assert killed_mid_write, "the import finished before it could be killed"
    assert store.read_bytes() == before
    assert _stores(out) == [store]  # a leftover temp file is not a store a folder import would pick up
    assert len(_check_store_consistent(store)) == 200
    assert main(["build", str(out), "--out", str(tmp_path / "ds"), "--no-progress"]) == 0


def test_write_failure_never_leaves_a_half_store(tmp_path, monkeypatch):
    """A failure after some rows were written (here: bad rows slipped past the readers) leaves no
    file at the target at all."""
    from ilbot.data.importers import common
    from ilbot.data.importers.common import ImportedSession
    rows = np.zeros((5, 9))
    rows[:, 1] = 3
    rows[3, 1] = 99  # an unknown type: write_store refuses before writing
    sess = ImportedSession("x", rows, {}, {}, None)
    with pytest.raises(DataError, match="type=99.0 is not an event type"):
        common.write_session(sess, tmp_path)
    assert list(tmp_path.iterdir()) == []


# -- the fast and the csv-module paths read the same -------------------------------------------------

def test_quoted_and_plain_files_read_the_same(tmp_path):
    plain = "".join(f"5,2,{k},{100 * i},{100 * i + 40}\n" for i, k in enumerate("abcdefgh"))
    quoted = "".join(f'"5","2","{k}",{100 * i},"{100 * i + 40}"\n' for i, k in enumerate("abcdefgh"))
    run_import("keystrokes", [_write(tmp_path / "p" / "k.csv", KEYS_HEADER + plain)], tmp_path / "o1", progress=False)
    run_import("keystrokes", [_write(tmp_path / "q" / "k.csv", KEYS_HEADER + quoted)], tmp_path / "o2",
               progress=False)
    a, b = (open_session(next((tmp_path / o).iterdir())).event_array() for o in ("o1", "o2"))
    assert a.shape == (16, 9) and np.array_equal(a, b)


def _store_with_leftover_wal(folder, name):
    """An ilbot store whose last commits are still in its -wal (as a killed recorder leaves it)."""
    from ilbot.data import Event, SessionWriter
    src = folder / "src"
    with SessionWriter(src / name, {"source": "recorder"}) as w:
        w.add_events([Event.make(i * 1000, 1, 1) for i in range(100)])
    c = sqlite3.connect(src / name)
    c.execute("PRAGMA wal_autocheckpoint=0")
    c.executemany("INSERT INTO events (t_ns, type, x, y, button, key_action, key_id, scroll_y, hold_ms) "
                  "VALUES (?, 3, 1, 1, 0, 0, 0, 0, 0)", [(10**6 + i,) for i in range(5000)])
    c.commit()
    out = folder / "out"
    out.mkdir()
    for suffix in ("", "-wal"):  # copied while the writer still has it open
        (out / (name + suffix)).write_bytes((src / (name + suffix)).read_bytes())
    c.close()
    assert (out / (name + "-wal")).stat().st_size > 0
    return out / name


def test_overwrite_of_a_store_with_a_leftover_wal(tmp_path):
    store = _store_with_leftover_wal(tmp_path, "keystrokes_user9_session0.ilbot.sqlite")
    assert _import("keystrokes", _keys_file(tmp_path, 10), store.parent, "--overwrite") == 0
    assert sorted(f.name for f in store.parent.iterdir()) == [store.name]  # the -wal was folded, then replaced
    assert len(_check_store_consistent(store)) == 20


def test_strict_failure_keeps_previous_store(tmp_path, capsys):
    out = tmp_path / "out"
    assert _import("keystrokes", _keys_file(tmp_path, 30), out) == 0
    store = out / "keystrokes_user9_session0.ilbot.sqlite"
    before = store.read_bytes()
    bad = _write(tmp_path / "bad" / "k.csv", KEYS_HEADER + "9,0,a,0,10\n9,0,b,nan,20\n")
    capsys.readouterr()
    assert _import("keystrokes", bad, out, "--overwrite", "--strict") == 2
    assert _one_line_err(capsys).endswith(f"{bad}:3: timepress='nan': press t not finite")
    assert store.read_bytes() == before and sorted(out.iterdir()) == [store]


def test_balabit_release_earlier_than_its_press_drops_the_click(tmp_path, capsys):
    rows = ["0.0,0.0,NoButton,Move,1,1", "0.0,5.0,Left,Pressed,2,2", "0.0,4.0,Left,Released,2,2",  # 1 s back
            "0.0,6.0,Left,Pressed,3,3", "0.0,6.1,Left,Released,3,3"]
    p = _balabit(tmp_path, rows)
    res = run_import("balabit", [p], tmp_path / "out", progress=False)
    c = res[0]["counts"]
    assert c["clicks"] == 1 and c["release_before_press"] == 1 and c["events"] == {"CLICK": 1, "KEY": 0,
                                                                                   "SCROLL": 0, "MOVE": 1}
    ev = _check_store_consistent(tmp_path / "out" / "balabit_user3_s1.ilbot.sqlite")
    assert ev[1, 8] == pytest.approx(100.0)
