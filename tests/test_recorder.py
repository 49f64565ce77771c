"""The recorder under the test's own Xvfb with real pynput input (injected through XTest)."""

import json
import os
import threading
import time

import numpy as np
import pytest

from ilbot.agent.recorder import Recorder, RecorderHotkeys, hold_stats
from ilbot.bench.record import OWN_DISPLAY_ENV, make_plan, run_trial
from ilbot.cli import main
from ilbot.data.featurespec import spec_from_dict
from ilbot.data.keys import KEY_VOCAB_VERSION, key_id
from ilbot.data.schema import Button, EventType, KeyAction, ScrollY
from ilbot.data.store import open_session
from ilbot.errors import ConfigError

REGION = "100,100,400,300"


@pytest.fixture
def trial_display(own_display, monkeypatch):
    monkeypatch.setenv(OWN_DISPLAY_ENV, own_display)
    return own_display


@pytest.fixture
def xinput(own_display):
    """pynput controllers on the test display; keys go through XTest (KeyCode from a keysym)."""
    from pynput import keyboard, mouse
    from Xlib import XK

    class Input:
        m = mouse.Controller()
        k = keyboard.Controller()
        Button = mouse.Button
        Key = keyboard.Key

        def key(self, name):
            return keyboard.KeyCode.from_vk(XK.string_to_keysym(name))

        def tap(self, key, pause=0.02):
            self.k.press(key)
            self.k.release(key)
            time.sleep(pause)

    return Input()


@pytest.fixture
def game_window(own_display):
    """A real top-level window at REGION, with the keyboard focus (reset after the test)."""
    from xwin_helpers import XWindows

    xw = XWindows()
    win = xw.window(100, 100, 400, 300, "ilbot recorder test game")
    xw.focus(win)
    yield win
    xw.close()


@pytest.fixture
def hp_spec():
    return spec_from_dict({"name": "hp", "slot": [
        {"index": 0, "path": "hp", "transform": "scale", "scale": 0.01},
        {"index": 1, "count": 127, "transform": "zero"}]})


class GameWriter(threading.Thread):
    """Writes tick_<n>.json every `every_s` like a game plugin, until stopped."""

    def __init__(self, folder, every_s=0.05):
        super().__init__(daemon=True)
        self.folder, self.every_s, self.stop_flag, self.n = folder, every_s, threading.Event(), 0

    def run(self):
        while not self.stop_flag.is_set():
            tmp = self.folder / f"tick_{self.n}.json.tmp"
            tmp.write_text(json.dumps({"tick": self.n, "hp": self.n % 100}))
            os.replace(tmp, self.folder / f"tick_{self.n}.json")
            self.n += 1
            time.sleep(self.every_s)


def test_records_2000_events_per_second_exactly(trial_display, tmp_path):
    """1 s at 2,000 events/s from another process into a real Qt window: nothing lost, clicks and
    keys exact, median timing error <= 5 ms (the 5 s run is `ilbot bench record`)."""
    r = run_trial(2000, 1.0, tmp_path / "t.ilbot.sqlite", seed=1)
    print(r)  # the figures, in the log of a failing run
    assert r["lost"] == 0 and r["injected"] == 2000 and r["recorded"] == 2000
    assert r["moves_exact"] and r["clicks_exact"] and r["keys_exact"] and r["scrolls_exact"]
    assert r["clicks"] > 5 and r["keys"] > 10 and r["scrolls"] > 5
    # (the injector's achieved rate depends on the machine's load: `ilbot bench record` reports it)
    assert r["median_timing_error_ms"] <= 5.0
    # the window really received them (its key count includes the stop's shift nudge, if any)
    win = r["window_received"]
    assert win["press"] == win["release"] == r["clicks"] and win["wheel"] == r["scrolls"]
    assert win["key_press"] >= r["keys"] // 2


@pytest.mark.slow
def test_records_2000_events_per_second_for_5_s(trial_display, tmp_path):
    r = run_trial(2000, 5.0, tmp_path / "t.ilbot.sqlite", seed=2)
    print(r)  # the figures, in the log of a failing run
    assert r["lost"] == 0 and r["clicks_exact"] and r["keys_exact"] and r["moves_exact"]
    assert r["median_timing_error_ms"] <= 5.0


def test_plan_is_seeded_and_balanced():
    a, b = make_plan(2000, 1.0, seed=3), make_plan(2000, 1.0, seed=3)
    assert a == b and len(a) == 2000
    kinds = [p[1] for p in a]
    assert kinds.count("press") == kinds.count("release") and kinds.count("kpress") == kinds.count("krelease")


def test_refuses_a_display_it_did_not_start(own_display, monkeypatch, tmp_path):
    monkeypatch.delenv(OWN_DISPLAY_ENV, raising=False)
    with pytest.raises(RuntimeError, match="refusing to inject"):
        run_trial(10, 0.1, tmp_path / "x.ilbot.sqlite")


def test_hotkeys_pause_ticks_and_meta(own_display, game_window, xinput, tmp_path, hp_spec):
    from ilbot.agent.capture.json_dir import JsonDirAdapter

    game = GameWriter(tmp_path)
    game.start()
    adapter = JsonDirAdapter(tmp_path, hp_spec, tick_ms=50)
    out = tmp_path / "s.ilbot.sqlite"
    rec = Recorder(out, REGION, adapter, settle_ms=50)
    m, k = xinput.m, xinput
    m.position = (150, 160)
    rec.start()
    time.sleep(0.1)
    m.press(xinput.Button.left)
    time.sleep(0.05)
    m.release(xinput.Button.left)
    k.tap(k.key("a"))
    k.tap(xinput.Key.f9)  # pause: the next key is not recorded
    k.tap(k.key("b"))
    k.tap(xinput.Key.f9)  # resume
    m.position = (300, 250)
    time.sleep(0.02)
    k.tap(k.key("c"))
    m.scroll(0, -1)
    time.sleep(0.2)
    k.tap(xinput.Key.f10)  # stop
    assert rec.wait(5.0) == "hotkey"
    counters = rec.stop()
    game.stop_flag.set()
    game.join()

    s = open_session(out)
    ev = list(s.events())
    keys = [(e.key_action, e.key_id) for e in ev if e.type == EventType.KEY]
    assert keys == [(KeyAction.PRESS, key_id("a")), (KeyAction.RELEASE, key_id("a")),
                    (KeyAction.PRESS, key_id("c")), (KeyAction.RELEASE, key_id("c"))]
    clicks = [e for e in ev if e.type == EventType.CLICK]
    assert len(clicks) == 1 and clicks[0].button == Button.LEFT
    assert (clicks[0].x, clicks[0].y) == (50, 60)  # relative to the window at 100,100
    assert 40 <= clicks[0].hold_ms <= 500
    scrolls = [e for e in ev if e.type == EventType.SCROLL]
    assert [(e.scroll_y, e.x, e.y) for e in scrolls] == [(ScrollY.DOWN, 200, 150)]
    assert [(e.x, e.y) for e in ev if e.type == EventType.MOVE][-1] == (200, 150)
    kc = [e for e in ev if e.type == EventType.KEY and e.key_id == key_id("c")]
    assert (kc[0].x, kc[0].y) == (200, 150)  # keys carry the cursor position
    assert all(e.t_ns >= 0 for e in ev) and [e.t_ns for e in ev] == sorted(e.t_ns for e in ev)
    assert counters["hotkeys"] == 6 and counters["paused_dropped"] >= 2

    ticks = list(s.ticks())
    assert len(ticks) >= 5
    assert [t.tick for t in ticks] == sorted({t.tick for t in ticks})
    assert all(t.t_ns >= 0 for t in ticks)
    assert ticks[-1].features[0] == pytest.approx((json.loads(ticks[-1].raw_json)["hp"]) / 100)

    meta = s.meta
    assert meta["source"] == f"json-dir:{tmp_path}"
    assert meta["window"] == {"x": 100, "y": 100, "width": 400, "height": 300}
    assert meta["tick_ms"] == 50.0 and meta["feature_spec"] == "hp" and meta["feature_spec_hash"] == hp_spec.hash
    assert meta["key_vocab_version"] == KEY_VOCAB_VERSION
    assert meta["hold_ms"]["n"] == 1 and 40 <= meta["hold_ms"]["median"] <= 500
    assert meta["recorder"]["counters"]["CLICK"] == 1 and isinstance(meta["start_monotonic_ns"], int)
    s.close()


def test_unpaired_presses_and_releases(own_display, game_window, xinput, tmp_path):
    m = xinput.m
    m.position = (120, 120)
    m.press(xinput.Button.right)  # pressed before the recording
    rec = Recorder(tmp_path / "u.ilbot.sqlite", REGION, settle_ms=30).start()
    try:
        time.sleep(0.05)
        m.release(xinput.Button.right)  # its release: ignored
        m.press(xinput.Button.left)  # never released within the recording: dropped
        time.sleep(0.1)
        counters = rec.stop()
    finally:
        m.release(xinput.Button.left)
    assert counters["orphan_releases"] == 1 and counters["unreleased"] == 1 and counters["CLICK"] == 0
    with open_session(tmp_path / "u.ilbot.sqlite") as s:
        assert not [e for e in s.events() if e.type == EventType.CLICK]
        assert s.meta["hold_ms"] == {} and s.meta["feature_spec"] == "empty"
    assert rec.stop() is counters  # twice is harmless


def test_in_process_key_echo_is_recorded_once(own_display, game_window, xinput, tmp_path):
    """pynput hands keys injected in this process to its listeners twice (echo + XTest)."""
    rec = Recorder(tmp_path / "e.ilbot.sqlite", REGION, settle_ms=30).start()
    xinput.tap(xinput.key("q"))
    xinput.tap(xinput.Key.space)
    time.sleep(0.1)
    c = rec.stop()
    assert c["KEY"] == 4


def test_cli_record_with_a_source_and_duration(own_display, tmp_path, capsys):
    folder = tmp_path / "state"
    folder.mkdir()
    game = GameWriter(folder)
    game.start()
    out = tmp_path / "cli.ilbot.sqlite"
    try:
        rc = main(["record", "--source", f"json-dir:{folder}", "--window", REGION, "--out", str(out),
                   "--duration", "0.4", "--tick-ms", "50", "--notes", "cli test"])
    finally:
        game.stop_flag.set()
        game.join()
    assert rc == 0
    err = capsys.readouterr().err
    assert "stopped (duration)" in err
    with open_session(out) as s:
        assert s.meta["source"] == f"json-dir:{folder}" and s.meta["notes"] == "cli test"
        assert s.meta["feature_spec"] == "empty" and s.n_ticks >= 3
    assert main(["record", "--window", REGION, "--out", str(out), "--duration", "0.1"]) == 2
    assert "already exists" in capsys.readouterr().err


@pytest.mark.parametrize("argv,message", [
    (["--window", "no such window title"], "no visible window"),
    (["--window", REGION, "--stop-key", "hyperspace"], "not a key name"),
    (["--window", REGION, "--source", "http:10.1.1.1"], "refusing non-loopback"),
    (["--window", REGION, "--tick-ms", "0"], "--tick-ms must be a number of milliseconds in 1..3.6e+06, got 0.0"),
    (["--window", REGION, "--tick-ms", "nan"], "--tick-ms must be a number of milliseconds in 1..3.6e+06, got nan"),
    (["--window", REGION, "--tick-ms", "-600"], "--tick-ms must be a number of milliseconds in 1..3.6e+06, got -600.0"),
    (["--window", REGION, "--tick-ms", "1e-300"], "--tick-ms must be a number of milliseconds in 1..3.6e+06, got 1e-300"),
    (["--window", REGION, "--tick-ms", "1e300"], "--tick-ms must be a number of milliseconds in 1..3.6e+06, got 1e+300"),
    (["--window", REGION, "--duration", "nan"], "--duration must be a number of seconds in 0..604800, got nan"),
    (["--window", REGION, "--duration", "1e300"], "--duration must be a number of seconds in 0..604800, got 1e+300"),
    (["--window", REGION, "--stop-key", "f9", "--pause-key", "F9"], "stop and pause hotkeys are both 'f9'"),
    (["--window", REGION, "--source", "json-dir:/nonexistent/state"], "is not a folder"),
])
def test_cli_record_errors(own_display, tmp_path, capsys, argv, message):
    assert main(["record", "--out", str(tmp_path / "x.ilbot.sqlite"), *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "x.ilbot.sqlite").exists()


@pytest.mark.parametrize("out", ["/proc/x.ilbot.sqlite", "/proc/no/such/dir/x.ilbot.sqlite"])
def test_cli_record_into_an_unwritable_place_is_one_line(own_display, capsys, out):
    assert main(["record", "--window", REGION, "--out", out, "--duration", "0.2"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ilbot record: error: /proc/") and "cannot create" in err  # names the path
    assert err.count("\n") == 1 and "Traceback" not in err


def test_hold_stats_and_hotkey_names():
    assert hold_stats([]) == {}
    st = hold_stats([100, 110, 120, 130, 140])
    assert st["median"] == 120 and st["n"] == 5 and st["q10"] < st["median"] < st["q90"]
    assert RecorderHotkeys(stop="F11", pause="Key.pause").stop == "f11"
    with pytest.raises(ConfigError):
        RecorderHotkeys(stop="nonsense")
    with pytest.raises(ConfigError, match="stop and pause hotkeys are both 'pause'"):
        RecorderHotkeys(stop="Key.pause", pause="pause")


def test_bench_record_runs_on_its_own_xvfb(own_display, capsys):
    """`ilbot bench record` starts a private Xvfb (never the caller's display) and prints JSON."""
    assert main(["bench", "record", "--json", "--rate", "1000", "--seconds", "0.5"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["lost"] == 0 and r["injected"] == 500 and r["events_per_s"] > 0
    assert os.environ["DISPLAY"] == own_display  # restored


def test_middle_click_horizontal_scroll_progress_and_context_manager(own_display, game_window, xinput, tmp_path):
    m = xinput.m
    m.position = (200, 200)
    reports = []
    with Recorder(tmp_path / "m.ilbot.sqlite", REGION, settle_ms=30) as rec:
        m.click(xinput.Button.middle)
        m.scroll(1, 0)  # horizontal: not in the schema
        assert rec.wait(0.25, progress=lambda r: reports.append(dict(r.counters)), every_s=0.1) == "duration"
    assert rec.counters["CLICK"] == 1 and rec.counters["hscroll"] >= 1 and rec.counters["SCROLL"] == 0
    assert reports and reports[-1]["CLICK"] == 1
    with open_session(tmp_path / "m.ilbot.sqlite") as s:
        (click,) = [e for e in s.events() if e.type == EventType.CLICK]
        assert click.button == Button.MIDDLE and (click.x, click.y) == (100, 100)


def test_cli_record_screen_source(own_display, tmp_path):
    out = tmp_path / "scr.ilbot.sqlite"
    assert main(["record", "--source", "screen", "--window", REGION, "--out", str(out), "--duration", "0.3",
                 "--tick-ms", "100"]) == 0
    with open_session(out) as s:
        assert s.meta["source"] == "screen:100,100,400,300" and s.meta["feature_spec"] == "screen"
        assert s.n_ticks >= 2


def test_no_display_is_a_user_error_and_writes_nothing(tmp_path):
    """pynput cannot load without an X display: a one-line error, no store left behind."""
    import subprocess
    import sys

    code = ("import sys\nfrom ilbot.agent.recorder import Recorder\nfrom ilbot.errors import UserError\n"
            "from ilbot.agent.window import WindowGeometry\n"
            "try:\n    Recorder(sys.argv[1], WindowGeometry(0, 0, 10, 10)).start()\n"
            "except UserError as e:\n    print(e)\n")
    env = {k: v for k, v in os.environ.items() if k != "DISPLAY"}
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "n.ilbot.sqlite")], env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.stdout.startswith("recording needs an X display"), out.stderr
    assert not (tmp_path / "n.ilbot.sqlite").exists()


# -- a store that cannot be written -----------------------------------------------------------------
def _record_until_it_stops(own_display, tmp_path, shell_script, out):
    """Run `ilbot record` (--all-input, no stop key, no duration) through `shell_script`, move the
    pointer until the process ends by itself; (rc, stderr, seconds it ran after its first line)."""
    import subprocess
    import sys

    from xwin_helpers import XWindows

    from pathlib import Path

    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    cmd = f"{sys.executable} -m ilbot.cli record --window {REGION} --out {out} --all-input"
    proc = subprocess.Popen(["sh", "-c", shell_script.replace("{cmd}", cmd)], env=env, stderr=subprocess.PIPE,
                            text=True)
    first = proc.stderr.readline()
    if proc.poll() == 77 or not first:
        proc.wait(30)
        pytest.skip(f"this machine cannot set up the full disk ({first.strip() or 'no output'})")
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
    rest = proc.stderr.read()
    return proc.wait(30), first + rest, time.monotonic() - started


def test_recording_onto_a_full_disk_stops_with_one_line_and_keeps_what_was_committed(own_display, tmp_path):
    """A real full disk: a 192 KiB tmpfs in a private mount namespace (`unshare`, where the
    machine allows one). The recorder stops by itself, says so in one line, exits non-zero, and
    the store holds exactly the events it says it kept."""
    import shutil

    if shutil.which("unshare") is None:
        pytest.skip("no unshare: no private tmpfs to fill")
    mnt, kept = tmp_path / "small", tmp_path / "kept"
    mnt.mkdir()
    kept.mkdir()
    out = mnt / "s.ilbot.sqlite"
    script = (f"unshare --user --map-root-user --mount sh -c '"
              f"mount -t tmpfs -o size=192k tmpfs {mnt} 2>/dev/null || {{ echo no tmpfs >&2; exit 77; }}; "
              f"{{cmd}}; rc=$?; cp {mnt}/s.ilbot.sqlite* {kept}/; exit $rc'")
    rc, err, ran_s = _record_until_it_stops(own_display, tmp_path, script, out)
    print(err, f"ran {ran_s:.1f} s")  # in the log of a failing run
    lines = err.strip().splitlines()
    assert rc == 2, err
    assert "Traceback" not in err and len(lines) == 3, err  # "recording ...", the privacy line, the stop
    assert lines[-1].startswith(f"ilbot record: error: recording stopped: disk full writing {out}; ")
    n = int(lines[-1].split("; ")[1].split()[0])
    assert lines[-1].endswith(f"; {n} events kept") and n > 100
    assert ran_s < 50  # it stopped by itself, long before the 60 s the pointer kept moving
    with open_session(kept / "s.ilbot.sqlite") as s:
        assert s.n_events == n  # every committed event is there, no more


def test_recording_past_a_file_size_limit_stops_with_one_line(own_display, tmp_path):
    """The portable variant: RLIMIT_FSIZE makes the writes fail (SQLite: disk I/O error)."""
    out = tmp_path / "s.ilbot.sqlite"
    script = ("python3 -c 'import resource, signal, os, sys; signal.signal(signal.SIGXFSZ, signal.SIG_IGN); "
              "resource.setrlimit(resource.RLIMIT_FSIZE, (160000, 160000)); "
              "a = sys.argv[1:]; os.execv(a[0], a)' {cmd}")
    rc, err, ran_s = _record_until_it_stops(own_display, tmp_path, script, out)
    print(err, f"ran {ran_s:.1f} s")  # in the log of a failing run
    lines = err.strip().splitlines()
    assert rc == 2 and "Traceback" not in err and len(lines) == 3, err
    assert lines[-1].startswith(f"ilbot record: error: recording stopped: cannot write {out} (")
    n = int(lines[-1].rsplit("; ", 1)[1].split()[0])
    assert lines[-1].endswith(f"; {n} events kept") and n > 100 and ran_s < 50
    with open_session(out) as s:
        assert s.n_events == n


# -- bad game state never stops the tick thread -------------------------------------------------------
def test_tick_thread_survives_hostile_state_files(own_display, tmp_path, hp_spec):
    from ilbot.agent.capture.json_dir import JsonDirAdapter

    state = tmp_path / "state"
    state.mkdir()
    adapter = JsonDirAdapter(state, hp_spec, tick_ms=50, settle_ms=0)
    rec = Recorder(tmp_path / "h.ilbot.sqlite", REGION, adapter, all_input=True, settle_ms=30).start()
    hostile = [b"[" * 100_000, '{"tick": 5}'.encode("utf-16"), b'{"tick": 9223372036854775808}',
               b'{"tick": 6, "hp": ' + b"9" * 400 + b"}", b'{"tick": 7, "s": "\\udc00"}', b'{"tick": -1}']
    try:
        n = 0
        for i, bad in enumerate(hostile):
            for data in (json.dumps({"tick": n, "hp": n}).encode(), bad):
                tmp = state / f"t{n}.tmp"
                tmp.write_bytes(data)
                os.replace(tmp, state / f"tick_{n}.json")
                n += 1
                time.sleep(0.08)
        os.mkfifo(state / f"tick_{n}.json")
        time.sleep(0.08)
        # written beside and renamed, as the others: a file caught half-written is one more malformed read
        (state / "last.tmp").write_text(json.dumps({"tick": n + 1, "hp": 1}))
        os.replace(state / "last.tmp", state / f"tick_{n + 1}.json")
        time.sleep(0.2)
        assert rec._threads[1].is_alive()  # the tick thread
    finally:
        c = rec.stop()
    assert adapter.counters["malformed"] == len(hostile) + 1
    with open_session(tmp_path / "h.ilbot.sqlite") as s:
        ticks = [t.tick for t in s.ticks()]
    assert ticks == list(range(0, 2 * len(hostile), 2)) + [2 * len(hostile) + 1]
    assert c["ticks"] == len(ticks) and c["tick_errors"] == 0


def test_tick_thread_survives_an_adapter_that_raises_or_returns_unstorable_state(own_display, tmp_path):
    from ilbot.agent.capture.base import Capture, CaptureAdapter

    class Faulty(CaptureAdapter):
        """A real adapter subclass whose polls raise, or return what the store cannot keep."""

        def __init__(self):
            super().__init__(None)
            self.n = 0

        def _poll(self):
            self.n += 1
            if self.n == 1:
                raise RuntimeError("adapter bug")
            feats = np.zeros(128, np.float32)
            return {2: Capture(2**63, 0, "{}", feats), 3: Capture(1, 0, '{"s": "\udc00"}', feats),
                    4: Capture(4, 0, "{}", feats)}.get(self.n)

    rec = Recorder(tmp_path / "f.ilbot.sqlite", REGION, Faulty(), all_input=True, poll_ms=5, settle_ms=30).start()
    time.sleep(0.3)
    c = rec.stop()
    assert c["tick_errors"] == 1 and c["bad_ticks"] == 2 and c["ticks"] == 1 and rec.failure is None
    with open_session(tmp_path / "f.ilbot.sqlite") as s:
        assert [t.tick for t in s.ticks()] == [4]
