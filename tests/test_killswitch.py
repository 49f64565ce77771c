"""Kill switch and release guards: the hotkey stops a live scheduler and everything is released
on the X server; atexit and signal guards release on exit, SIGTERM, SIGINT and crashes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from ilbot.data.action import PlannedAction
from ilbot.data.keys import key_id
from ilbot.data.schema import EventType, KeyAction
from ilbot.errors import ConfigError
from ilbot.safety import KillSwitch, install_release_guards, install_suspend_guard, parse_hotkey

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("raw, name", [("f12", "f12"), ("F12", "f12"), ("Key.f12", "f12"), ("q", "q"),
                                       ("Escape", "esc"), ("pause", "pause")])
def test_parse_hotkey(raw, name):
    assert parse_hotkey(raw) == name


@pytest.mark.parametrize("bad", ["", "  ", "hyperdrive", None])
def test_parse_hotkey_rejects(bad):
    with pytest.raises(ConfigError, match="not a key name"):
        parse_hotkey(bad)
    with pytest.raises(ConfigError):
        KillSwitch(bad)


def xdotool_key(name: str) -> None:
    subprocess.run(["xdotool", "key", name], check=True, timeout=10)


def wait_for(cond, timeout=3.0) -> bool:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.002)
    return True


def test_hotkey_from_another_process_triggers_once_on_the_listener_thread(own_display):
    from pynput.keyboard import Key, KeyCode

    from ilbot.safety.killswitch import pressed_name

    assert pressed_name(Key.f12) == "f12" and pressed_name(KeyCode.from_char("Q")) == "q"
    assert pressed_name(KeyCode.from_vk(12345)) == "UNK"
    calls = []
    ks = KillSwitch("f12", on_trigger=lambda: calls.append(threading.current_thread()))
    with ks:
        assert ks.running
        xdotool_key("F11")
        xdotool_key("a")
        time.sleep(0.1)
        assert calls == [] and not ks.triggered.is_set()
        xdotool_key("F12")
        assert ks.wait(3.0) and wait_for(lambda: ks.done_ns is not None)
        xdotool_key("F12")
        time.sleep(0.1)
        assert calls == [ks._listener] and ks.trigger_ns <= ks.done_ns  # once, on the listener thread
        ks.reset()
        assert not ks.triggered.is_set()
        xdotool_key("F12")
        assert ks.wait(3.0) and wait_for(lambda: len(calls) == 2)
        listener = ks._listener
    assert not listener.is_alive() and not ks.running  # stop() did not hang on the listener's join
    ks.stop()  # idempotent


def test_stop_from_inside_the_callback(own_display):
    box = {}
    ks = KillSwitch("f9", on_trigger=lambda: box.setdefault("listener", ks._listener) and ks.stop())
    ks.start()
    xdotool_key("F9")
    assert ks.wait(3.0) and wait_for(lambda: ks.done_ns is not None)
    assert ks.error is None and not ks.running
    box["listener"].join(2.0)
    assert not box["listener"].is_alive()


def test_failing_callback_keeps_the_listener(own_display):
    def boom():
        raise RuntimeError("callback failed")

    with KillSwitch("pause", on_trigger=boom) as ks:
        xdotool_key("Pause")
        assert ks.wait(3.0) and wait_for(lambda: ks.done_ns is not None)
        assert isinstance(ks.error, RuntimeError) and ks.running


def held_plan():
    plan = [PlannedAction(EventType.KEY, 40.0 * i, 10, 10, key_action=KeyAction.PRESS, key_id=key_id(k))
            for i, k in enumerate(("a", "shift", "x"))]
    plan.append(PlannedAction(EventType.CLICK, 130.0, 50, 50, button=1, hold_ms=500.0))
    plan += [PlannedAction(EventType.MOVE, 200.0 + 20 * i, 60 + i, 60) for i in range(20)]
    return plan


@pytest.mark.parametrize("inject", ["xdotool", "pynput"])
def test_hotkey_stops_a_live_scheduler_and_releases_on_the_server(own_display, inject):
    """The kill switch's whole job: F12 → scheduler stopped, nothing pending, nothing held on X.
    `pynput`: the hotkey comes from a controller in this very process, which pynput also reports
    synchronously on the injecting thread; that path must neither deadlock nor double-stop."""
    from pynput import keyboard

    from ilbot.agent.executors import PynputExecutor
    from ilbot.agent.scheduler import Scheduler
    from ilbot.safety import SafetyConfig, SafetyPipeline
    from ilbot.safety.xstate import XInputState

    ex = PynputExecutor()
    sched = Scheduler(ex, SafetyPipeline(SafetyConfig(), (400, 300)), origin=(100, 100))
    with XInputState() as xs, KillSwitch("f12", on_trigger=sched.stop) as ks:
        sched.submit(held_plan(), time.monotonic_ns())
        assert wait_for(lambda: len(xs.keys_down()) == 3 and xs.buttons_down() == {1})
        t0 = time.monotonic_ns()
        if inject == "xdotool":
            xdotool_key("F12")
        else:
            kb = keyboard.Controller()
            kb.press(keyboard.Key.f12)
            kb.release(keyboard.Key.f12)
        assert ks.wait(3.0) and wait_for(lambda: sched.stopped_ns is not None)
        assert sched.stopped and sched.pending == 0 and sched.counters["dropped"] > 0
        assert xs.keys_down() == set() and xs.buttons_down() == set()
        assert ex.held_keys == {} and ex.held_buttons == {}
        print(f"kill switch ({inject}): {(sched.stopped_ns - t0) / 1e6:.1f} ms from hotkey to stopped and released")
    ex.close()


def test_bench_killswitch_on_the_test_display(own_display):
    from ilbot.bench import killswitch

    result = killswitch.run(SimpleNamespace(trials=3, hotkey="f12", display=own_display))
    assert result["trials"] == 3 and result["all_released"] is True and result["stop_ms_stat"] == "max"
    assert 0 < result["stop_median_ms"] <= result["stop_ms"]
    with pytest.raises(Exception, match="at least 1"):
        killswitch.run(SimpleNamespace(trials=0, hotkey="f12", display=own_display))


def test_bench_killswitch_cli_starts_its_own_xvfb():
    env = {k: v for k, v in os.environ.items() if k != "DISPLAY"}
    out = subprocess.run([sys.executable, "-m", "ilbot.cli", "bench", "killswitch", "--trials", "2", "--json"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert '"all_released": true' in out.stdout and '"stop_ms"' in out.stdout


# -- release guards --------------------------------------------------------------------------------
_inherited_int = signal.getsignal(signal.SIGINT)


def test_guards_in_process_chain_and_uninstall():
    released = []
    chained = []
    before_int, before_term = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    signal.signal(signal.SIGTERM, lambda s, f: chained.append(s))
    signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal (a background job inherits it ignored)
    before_int = signal.default_int_handler
    try:
        uninstall = install_release_guards(lambda: released.append(1))
        handler = signal.getsignal(signal.SIGTERM)
        handler(signal.SIGTERM, None)
        assert released == [1] and chained == [signal.SIGTERM]
        with pytest.raises(KeyboardInterrupt):  # SIGINT's default handler still raises afterwards
            signal.getsignal(signal.SIGINT)(signal.SIGINT, None)
        assert released == [1, 1]
        uninstall()
        assert signal.getsignal(signal.SIGINT) is before_int
        uninstall2 = install_release_guards(lambda: 1 / 0)  # a failing release is logged, not raised
        signal.getsignal(signal.SIGTERM)(signal.SIGTERM, None)
        uninstall2()
    finally:
        signal.signal(signal.SIGTERM, before_term)
        signal.signal(signal.SIGINT, _inherited_int)


def test_guards_only_atexit_off_the_main_thread():
    before = signal.getsignal(signal.SIGTERM)
    box = {}
    t = threading.Thread(target=lambda: box.update(u=install_release_guards(lambda: None)))
    t.start()
    t.join()
    assert signal.getsignal(signal.SIGTERM) is before
    box["u"]()


GUARD_SCRIPT = textwrap.dedent("""
    import os, signal, sys, time
    from ilbot.safety import install_release_guards
    mode, out = sys.argv[1], sys.argv[2]
    # Ctrl+C's default, whatever this was started under: a shell's background job inherits SIGINT
    # ignored, and the guards keep an ignored signal ignored (as the "ignored" case checks)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    if mode == "ignored":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    install_release_guards(lambda: open(out, "a").write("released\\n"))
    if mode == "exit":
        sys.exit(0)
    if mode == "crash":
        raise RuntimeError("crash")
    if mode in ("term", "ignored"):
        os.kill(os.getpid(), signal.SIGTERM)
        print("survived", flush=True)
    if mode == "int":
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(5)
""")


@pytest.mark.parametrize("mode, rc", [("exit", 0), ("crash", 1), ("term", -signal.SIGTERM), ("int", -signal.SIGINT),
                                      ("ignored", 0)])
def test_guards_release_on_exit_crash_and_signals(tmp_path, mode, rc):
    out = tmp_path / "released.txt"
    p = subprocess.run([sys.executable, "-c", GUARD_SCRIPT, mode, str(out)], cwd=ROOT, capture_output=True,
                       text=True, timeout=30)
    assert p.returncode == rc, p.stderr
    lines = out.read_text().splitlines()
    assert lines and set(lines) == {"released"}
    if mode == "ignored":
        assert "survived" in p.stdout  # SIG_IGN stays ignored after the release
    if mode == "int":
        assert "KeyboardInterrupt" in p.stderr


def test_sigterm_releases_real_keys_on_the_server(own_display):
    """A live process holding keys and a button is killed with SIGTERM: the X server ends up clean."""
    from ilbot.safety.xstate import XInputState

    script = textwrap.dedent("""
        import time
        from ilbot.agent.executors import PynputExecutor
        from ilbot.data.action import PlannedAction
        from ilbot.data.keys import key_id
        from ilbot.safety import install_release_guards
        ex = PynputExecutor()
        install_release_guards(ex.release_all)
        for k in ("ctrl", "z"):
            ex.perform(PlannedAction(1, 0, 0, 0, key_action=1, key_id=key_id(k)))
        ex.perform(PlannedAction(0, 0, 30, 30, button=2, hold_ms=60_000))
        print("held", flush=True)
        time.sleep(30)
    """)
    with XInputState() as xs:
        p = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE, text=True)
        try:
            assert p.stdout.readline().strip() == "held"
            assert len(xs.keys_down()) == 2 and xs.buttons_down() == {2}
            p.send_signal(signal.SIGTERM)
            assert p.wait(10) == -signal.SIGTERM
        finally:
            if p.poll() is None:
                p.kill()
            p.stdout.close()
        assert xs.keys_down() == set() and xs.buttons_down() == set()


def proc_state(pid: int) -> str:
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0]


def test_sigtstp_releases_real_keys_before_it_stops(own_display):
    """Ctrl+Z (SIGTSTP) on a live process holding keys and a button: once it is stopped the X
    server has nothing down; after SIGCONT it runs on, reports the continue, and a second Ctrl+Z
    is guarded again (the handler was reinstalled)."""
    from ilbot.safety.xstate import XInputState

    script = textwrap.dedent("""
        import time
        from ilbot.agent.executors import PynputExecutor
        from ilbot.data.action import PlannedAction
        from ilbot.data.keys import key_id
        from ilbot.safety import install_suspend_guard
        ex = PynputExecutor()
        def hold():
            for k in ("shift", "w"):
                ex.perform(PlannedAction(1, 0, 0, 0, key_action=1, key_id=key_id(k)))
            ex.perform(PlannedAction(0, 0, 30, 30, button=1, hold_ms=60_000))
            print("held", flush=True)
        def again():
            print("continued", flush=True)
            hold()
        install_suspend_guard(ex.release_all, on_continue=again)
        hold()
        while True:
            time.sleep(0.05)
    """)
    with XInputState() as xs:
        p = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE, text=True)
        try:
            for _ in range(2):
                assert p.stdout.readline().strip() == "held"
                assert len(xs.keys_down()) == 2 and xs.buttons_down() == {1}
                p.send_signal(signal.SIGTSTP)
                assert wait_for(lambda: proc_state(p.pid) == "T", 5.0)
                xs.display.sync()
                assert xs.keys_down() == set() and xs.buttons_down() == set()  # released before it stopped
                p.send_signal(signal.SIGCONT)
                assert p.stdout.readline().strip() == "continued"
            assert p.stdout.readline().strip() == "held" and len(xs.keys_down()) == 2
            p.send_signal(signal.SIGKILL)
            p.wait(5)
        finally:
            if p.poll() is None:
                p.kill()
            p.stdout.close()
        xs.release_everything()  # SIGKILL left them down (the guardian's case, tested elsewhere)
        assert not xs.anything_held()


def test_suspend_guard_main_thread_only_and_uninstall():
    before = signal.getsignal(signal.SIGTSTP)
    box = {}

    def off_main():
        try:
            install_suspend_guard(lambda: None)
        except ValueError as e:
            box["error"] = str(e)

    t = threading.Thread(target=off_main)
    t.start()
    t.join()
    assert "main thread" in box["error"]
    uninstall = install_suspend_guard(lambda: None)
    assert signal.getsignal(signal.SIGTSTP) is not before
    uninstall()
    assert signal.getsignal(signal.SIGTSTP) == before
