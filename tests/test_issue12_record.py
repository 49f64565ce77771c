"""Issue 12, recording: `ilbot record --overwrite` writes the new session beside the old one and
renames it in only at a clean stop, so a recording that fails (a full disk, a file-size limit)
leaves the previous store byte for byte and keeps what it committed as `STEM.partial.ilbot.sqlite`;
the game-state documents a source skipped are counted in the meta and said in one line at the
end. Real stores, real pynput input under the test's own Xvfb, real RLIMIT_FSIZE."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from ilbot.cli import main
from ilbot.data import Event, SessionWriter, open_session
from ilbot.data.schema import F
from ilbot.errors import DataError

REGION = "100,100,400,300"
ROOT = Path(__file__).resolve().parents[1]


def _store(path: Path, n: int = 2000) -> bytes:
    with SessionWriter(path, {"source": "old", "window": {"x": 0, "y": 0, "width": 800, "height": 600}}) as w:
        w.add_events([Event.make(i * 1_000_000, i % 800, i % 600) for i in range(n)])
        w.add_tick(0, 0, {"tick": 0}, np.zeros(F, np.float32))
    return path.read_bytes()


def test_overwrite_past_a_file_size_limit_keeps_the_previous_store(own_display, tmp_path):
    from xwin_helpers import XWindows

    out = tmp_path / "s.ilbot.sqlite"
    old = _store(out)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    limit = "import resource, signal, os, sys; signal.signal(signal.SIGXFSZ, signal.SIG_IGN); " \
            "resource.setrlimit(resource.RLIMIT_FSIZE, (160000, 160000)); a = sys.argv[1:]; os.execv(a[0], a)"
    proc = subprocess.Popen([sys.executable, "-c", limit, sys.executable, "-m", "ilbot.cli", "record", "--window",
                             REGION, "--out", str(out), "--all-input", "--overwrite"], env=env,
                            stderr=subprocess.PIPE, text=True)
    first = proc.stderr.readline()
    assert first.startswith("recording "), first
    xw = XWindows()
    started = time.monotonic()
    try:
        i = 0
        while proc.poll() is None and time.monotonic() - started < 60:  # a generous bound: it stops by itself
            xw.move(150 + i % 200, 150 + (i // 200) % 100)
            i += 1
            if i % 20 == 0:
                time.sleep(0.005)
    finally:
        xw.close()
        if proc.poll() is None:
            proc.kill()
    err = first + proc.stderr.read()
    assert proc.wait(30) == 2, err
    lines = err.strip().splitlines()
    assert "Traceback" not in err and len(lines) == 3, err
    partial = tmp_path / "s.partial.ilbot.sqlite"
    assert lines[-1].startswith(f"ilbot record: error: recording stopped: cannot write {out} (")
    assert lines[-1].endswith(f" events kept in {partial} (the previous {out} is unchanged)"), lines[-1]
    n = int(lines[-1].split("; ")[-1].split()[0])
    assert out.read_bytes() == old  # the previous store, byte for byte
    with open_session(out) as s:
        assert s.n_events == 2000 and s.meta["source"] == "old"
    with open_session(partial) as s:
        assert s.n_events == n > 100
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp file left behind


def test_overwrite_replaces_a_store_at_a_clean_stop(own_display, tmp_path, capsys):
    out = tmp_path / "s.ilbot.sqlite"
    _store(out)
    c = sqlite3.connect(out)  # leave a -wal beside it, as a killed writer would
    c.execute("PRAGMA journal_mode=WAL")
    c.execute("INSERT INTO meta VALUES ('x', '1')")
    c.commit()
    assert Path(f"{out}-wal").exists()
    c.close()
    assert main(["record", "--window", REGION, "--out", str(out), "--duration", "0.3", "--overwrite"]) == 0
    with open_session(out) as s:
        assert s.meta["source"] == "none" and "x" not in s.meta
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.ilbot.sqlite"]
    assert oct(out.stat().st_mode & 0o777) == "0o600"


def test_a_store_in_use_is_not_replaced(tmp_path):
    out = tmp_path / "s.ilbot.sqlite"
    _store(out)
    reader = sqlite3.connect(out)
    reader.execute("PRAGMA journal_mode=WAL")
    reader.execute("SELECT COUNT(*) FROM events").fetchone()  # holds the -wal open
    try:
        w = SessionWriter(out, {"source": "new"}, overwrite=True)
        w.add_events([Event.make(i, 1, 1) for i in range(10)])
        with pytest.raises(DataError, match="cannot replace it .* the new session is kept as .*s.partial.ilbot.sqlite"):
            w.close()
    finally:
        reader.close()
    with open_session(out) as s:
        assert s.meta["source"] == "old" and s.n_events == 2000
    with open_session(tmp_path / "s.partial.ilbot.sqlite") as s:
        assert s.n_events == 10 and s.meta["source"] == "new"


def test_a_failed_start_leaves_nothing_it_made(tmp_path):
    out = tmp_path / "s.ilbot.sqlite"
    with pytest.raises(TypeError):
        SessionWriter(out, {"bad": object()})  # the meta cannot be encoded
    assert list(tmp_path.iterdir()) == []
    old = _store(out)
    with pytest.raises(TypeError):
        SessionWriter(out, {"bad": object()}, overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.ilbot.sqlite"] and out.read_bytes() == old


def test_skipped_game_state_is_counted_and_said(own_display, tmp_path, capsys):
    state = tmp_path / "state"
    state.mkdir()
    (state / "tick_1.json").write_bytes('{"tick": 1, "hp": 5}'.encode("utf-16"))  # fresh when the recording starts
    out = tmp_path / "s.ilbot.sqlite"
    assert main(["record", "--source", f"json-dir:{state}", "--window", REGION, "--out", str(out), "--duration",
                 "1.0", "--tick-ms", "1000"]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == (f"game state: 1 malformed game-state document(s) skipped (not_utf8 1); last: "
                       f"{state / 'tick_1.json'}: not UTF-8 (byte 0: b'\\xff\\xfe')"), err
    with open_session(out) as s:
        src = s.meta["recorder"]["source_counters"]
        assert src["malformed"] == 1 and src["malformed.not_utf8"] == 1 and s.n_ticks == 0
    json.dumps(src)
