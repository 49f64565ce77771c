"""The guardian process (dead-man's switch) on the test's own Xvfb, with a real agent-like child
process holding a key and a mouse button through PynputExecutor while its SafetyClock beats the
guardian: SIGSTOP, SIGKILL, F12 while stopped, a hang (beats stop, process alive), the clean
"bye", and a display it cannot open. Held keys and buttons are read on the X server itself."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from ilbot.data.action import PlannedAction
from ilbot.data.keys import key_id
from ilbot.data.schema import EventType, KeyAction
from ilbot.errors import UserError
from ilbot.safety import Guardian, SafetyClock, SafetyConfig

ROOT = Path(__file__).resolve().parents[1]

AGENT = textwrap.dedent("""
    import os, sys, time
    from ilbot.agent.executors import PynputExecutor
    from ilbot.data.action import PlannedAction
    from ilbot.data.keys import key_id
    from ilbot.data.schema import EventType, KeyAction
    from ilbot.safety import Guardian, SafetyClock, SafetyConfig

    g = Guardian.start(os.environ["DISPLAY"], "f12", timeout_ms=300)
    ex = PynputExecutor()
    cfg = SafetyConfig(max_hold_ms=600_000, max_click_hold_ms=600_000)  # only the guardian may release
    clock = SafetyClock(ex, cfg, heartbeat=g.beat,
                        on_suspended=lambda gap: print(f"suspended {gap:.0f}", flush=True))
    ex.perform(PlannedAction(EventType.CLICK, 0, 0, 0, button=1, hold_ms=600_000), (300, 300))
    ex.perform(PlannedAction(EventType.KEY, 0, 0, 0, key_action=KeyAction.PRESS, key_id=key_id("shift")))
    print(f"held {g.pid}", flush=True)
    while True:
        time.sleep(0.05)
""")


def wait_for(cond, timeout=3.0, step=0.005) -> bool:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            return False
        time.sleep(step)
    return True


def gone(pid: int) -> bool:
    """The process has exited (a zombie waiting for a reaper counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def state(pid: int) -> str:
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0]


@pytest.fixture
def xs(own_display):
    from ilbot.safety.xstate import XInputState

    with XInputState() as x:
        yield x


@pytest.fixture
def agent(own_display, xs):
    """A child process holding shift and the left button, its guardian armed; yields (proc, guardian pid)."""
    p = subprocess.Popen([sys.executable, "-c", AGENT], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    line = p.stdout.readline().split()
    assert line[:1] == ["held"], f"agent did not start: {line}"
    guardian_pid = int(line[1])
    assert wait_for(lambda: xs.buttons_down() == {1} and xs.keycode(key_id("shift")) in xs.keys_down())
    yield p, guardian_pid
    if p.poll() is None:
        os.kill(p.pid, signal.SIGCONT)
        p.kill()
    p.wait(5)
    assert wait_for(lambda: gone(guardian_pid), 5.0), "the guardian outlived its agent"
    xs.display.sync()
    if xs.anything_held():  # never leave the session's display dirty for the next test
        xs.release_everything()


def test_sigstop_guardian_releases_everything_within_a_second(agent, xs):
    p, guardian_pid = agent
    time.sleep(0.4)  # beats are flowing: the guardian leaves everything alone
    assert xs.anything_held()
    os.kill(p.pid, signal.SIGSTOP)
    t0 = time.monotonic()
    assert wait_for(lambda: not xs.anything_held(), 1.0), f"still held after 1 s: {xs.keys_down()} {xs.buttons_down()}"
    released_ms = (time.monotonic() - t0) * 1e3
    assert wait_for(lambda: state(p.pid) == "T")
    assert not gone(guardian_pid)
    os.kill(p.pid, signal.SIGCONT)  # the agent's clock sees the gap and reports the suspension
    line = p.stdout.readline().split()
    assert line[0] == "suspended" and float(line[1]) >= 250, line
    print(f"released {released_ms:.0f} ms after SIGSTOP")


def test_sigkill_guardian_releases_and_exits(agent, xs):
    p, guardian_pid = agent
    os.kill(p.pid, signal.SIGKILL)
    t0 = time.monotonic()
    assert wait_for(lambda: not xs.anything_held(), 1.0)
    print(f"released {(time.monotonic() - t0) * 1e3:.0f} ms after SIGKILL")
    assert p.wait(5) == -signal.SIGKILL
    assert wait_for(lambda: gone(guardian_pid), 3.0)


def test_f12_while_stopped_kills_the_frozen_agent(agent, xs):
    p, guardian_pid = agent
    subprocess.run(["xdotool", "key", "F12"], check=True, timeout=10)  # beats flowing: not the guardian's business
    time.sleep(0.3)
    assert p.poll() is None and xs.buttons_down() == {1}
    os.kill(p.pid, signal.SIGSTOP)
    assert wait_for(lambda: not xs.anything_held(), 1.0)
    subprocess.run(["xdotool", "key", "F12"], check=True, timeout=10)
    assert p.wait(3) == -signal.SIGKILL
    assert wait_for(lambda: gone(guardian_pid), 3.0)
    assert not xs.anything_held()


def test_hang_then_beats_again_in_process(own_display, xs):
    """Beats stop while the process runs on (a hang): everything is released, and again while
    beats stay missing; when they come back the guardian stands down."""
    from ilbot.agent.executors import PynputExecutor

    g = Guardian.start(own_display, "f12", timeout_ms=200)
    try:
        with PynputExecutor() as ex:
            cfg = SafetyConfig(max_hold_ms=600_000)
            clock = SafetyClock(ex, cfg, heartbeat=g.beat)
            ex.perform(PlannedAction(EventType.KEY, 0, 0, 0, key_action=KeyAction.PRESS, key_id=key_id("a")))
            time.sleep(0.5)
            assert xs.keycode(key_id("a")) in xs.keys_down()  # beats: left alone
            clock.stop(release=False)  # the "hang": no more beats
            assert wait_for(lambda: not xs.keys_down(), 1.0)
            subprocess.run(["xdotool", "keydown", "b"], check=True, timeout=10)  # pressed during the hang
            assert wait_for(lambda: not xs.keys_down(), 1.0)  # ... released too
            clock2 = SafetyClock(ex, cfg, heartbeat=g.beat)  # beats again
            time.sleep(0.3)
            ex.release_all()
            ex.perform(PlannedAction(EventType.KEY, 0, 0, 0, key_action=KeyAction.PRESS, key_id=key_id("a")))
            time.sleep(0.5)
            assert xs.keycode(key_id("a")) in xs.keys_down() and g.alive
            clock2.stop()
            assert not xs.keys_down()
    finally:
        assert g.close() == 0


def test_not_armed_before_the_first_beat_and_bye_touches_nothing(own_display, xs):
    from ilbot.agent.executors import PynputExecutor

    g = Guardian.start(own_display, "f12", timeout_ms=100)
    with PynputExecutor() as ex:
        ex.perform(PlannedAction(EventType.KEY, 0, 0, 0, key_action=KeyAction.PRESS, key_id=key_id("c")))
        time.sleep(0.4)  # no beat yet: it is not armed
        assert xs.keycode(key_id("c")) in xs.keys_down()
        assert g.beat() and g.close() == 0 and not g.alive
        time.sleep(0.3)
        assert xs.keycode(key_id("c")) in xs.keys_down()  # "bye": it exited without releasing
        assert not g.beat() and g.close() == 0  # idempotent; beats after close are refused
    assert not xs.keys_down()  # the executor's own close released it


def test_cannot_start_is_one_line(own_display):
    with pytest.raises(UserError) as e:
        Guardian.start(":4242", "f12")
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith("guardian: could not start on display :4242")


def test_guardian_imports_no_torch():
    code = ("import sys; import ilbot.safety.guardian as g; "
            "print(sorted(m for m in ('torch', 'PyQt6', 'pynput') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "[]", out.stderr
