"""AgentRuntime in live mode under the test's own Xvfb with real pynput: stop releases every key
and button on the X server, the human-override pause, and the kill switch."""

from __future__ import annotations

import shutil
import subprocess
import time

import pytest

from ilbot.data.action import PlannedAction
from ilbot.data.keys import key_id
from ilbot.data.schema import Button, EventType, KeyAction
from ilbot.model import load_checkpoint

from test_runtime_support import ListAdapter, features, tiny_checkpoint

pytestmark = pytest.mark.xvfb


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    return load_checkpoint(tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny"))


def x_held():
    """(keycodes down, mouse buttons down) as the X server sees them."""
    from Xlib import X, display

    d = display.Display()
    try:
        keymap = d.query_keymap()  # 32 bytes: one bit per keycode
        keys = [i * 8 + b for i, byte in enumerate(keymap) for b in range(8) if byte >> b & 1]
        mask = d.screen().root.query_pointer().mask
        buttons = [n for n, m in ((1, X.Button1Mask), (2, X.Button2Mask), (3, X.Button3Mask)) if mask & m]
        return keys, buttons
    finally:
        d.close()


def _live_runtime(ckpt, **kw):
    from ilbot.agent.executors.pynput_exec import PynputExecutor
    from ilbot.agent.runtime import AgentRuntime

    return AgentRuntime(ckpt, ListAdapter(features(50)), PynputExecutor(), live=True, window=(100, 100, 640, 480), **kw)


def _press(key="a"):
    return PlannedAction(EventType.KEY, 0.0, 10, 10, key_action=KeyAction.PRESS, key_id=key_id(key))


def test_stop_releases_everything_on_the_x_server(own_display, ckpt):
    rt = _live_runtime(ckpt)
    rt.executor.perform(_press("a"), rt.origin)
    rt.executor.perform(_press("shift"), rt.origin)
    rt.executor.perform(PlannedAction(EventType.CLICK, 0.0, 50, 50, button=Button.LEFT, hold_ms=5000), rt.origin)
    keys, buttons = x_held()
    assert len(keys) == 2 and buttons == [1]
    rt.stop()
    assert x_held() == ([], [])
    assert rt.counters["state"] == "stopped"


def test_pause_releases_too(own_display, ckpt):
    rt = _live_runtime(ckpt)
    rt.executor.perform(_press("b"), rt.origin)
    assert x_held()[0]
    rt.pause()
    assert x_held() == ([], [])
    rt.stop()


def test_human_moving_the_mouse_pauses_live_mode(own_display, ckpt):
    from pynput.mouse import Controller

    rt = _live_runtime(ckpt, tick_ms=100)
    rt.executor.perform(PlannedAction(EventType.MOVE, 0.0, 200, 150), rt.origin)
    assert Controller().position == (300, 250)
    rt.step()  # the pointer is where the agent put it: no pause
    assert not rt.paused
    rt.scheduler.pause()  # no more agent moves from here on (the executor remembers the last one)
    rt.scheduler.resume()
    assert Controller().position == rt.executor.pointer
    Controller().position = (900, 700)  # the human takes the mouse
    rt.step()
    assert rt.paused and rt.pause_reason == "human_override"
    assert rt.counters["override_pauses"] == 1 and x_held() == ([], [])
    rt.stop()


def test_kill_switch_stops_a_running_agent(own_display, ckpt):
    from pynput.keyboard import Controller, Key

    rt = _live_runtime(ckpt, tick_ms=100)
    rt.executor.perform(_press("c"), rt.origin)
    th = rt.start()
    time.sleep(0.3)
    t0 = time.monotonic_ns()
    kb = Controller()
    kb.press(Key.f12)
    kb.release(Key.f12)
    th.join(3)
    assert not th.is_alive() and rt.stopped
    assert rt.counters["state"] == "stopped" and rt.counters["reason"] == "kill_switch"
    ks = rt.supervision.kill
    for _ in range(200):  # the run loop may end before stop() (on the hotkey's thread) has returned
        if rt.released_ns is not None:
            break
        time.sleep(0.01)
    stop_ms = (rt.released_ns - ks.trigger_ns) / 1e6  # hotkey seen → stopped with everything released
    print(f"kill switch: hotkey to agent stopped and released in {stop_ms:.1f} ms")
    # it stops and lets go (the 100 ms goal is measured by `ilbot bench killswitch`, not here:
    # a loaded machine can stall any thread for a few hundred ms)
    assert stop_ms <= 1000 and (time.monotonic_ns() - t0) / 1e6 < 3000
    keys, buttons = x_held()
    assert buttons == [] and key_id("c") not in keys and len(keys) <= 1  # at most F12 itself, released soon
    time.sleep(0.1)
    assert x_held() == ([], [])


@pytest.mark.skipif(shutil.which("xdotool") is None, reason="xdotool (the 'human' in another process) is absent")
def test_human_input_goes_into_the_history_and_agent_echo_does_not(own_display, ckpt):
    rt = _live_runtime(ckpt, tick_ms=100)
    time.sleep(0.3)  # earlier tests' listeners, stopping, nudge the server with a no-symbol key: let it pass
    rt.human.counters.update(human=0, echo=0)
    rt.context.discard_after(0)
    # the agent's own actions: seen by the listeners, recognised as its echo
    rt.executor.perform(PlannedAction(EventType.MOVE, 0.0, 20, 30), rt.origin)
    rt.executor.perform(_press("e"), rt.origin)
    rt.executor.perform(_press("e").with_(key_action=KeyAction.RELEASE), rt.origin)
    time.sleep(0.2)
    assert rt.human.counters["human"] == 0 and rt.human.counters["echo"] >= 3, (rt.human.counters, rt.context.events())
    # the person (another process: xdotool) types and clicks near the agent's pointer (no override)
    xdo = ["xdotool"]
    subprocess.run(xdo + ["key", "q"], check=True)
    subprocess.run(xdo + ["mousemove", "125", "135", "mousedown", "1"], check=True)
    time.sleep(0.08)
    subprocess.run(xdo + ["mouseup", "1"], check=True)
    time.sleep(0.3)
    human = [e for e in rt.context.events() if e.type != EventType.MOVE]
    assert [(e.type, e.key_id, e.key_action) for e in human if e.type == EventType.KEY] == [
        (EventType.KEY, key_id("q"), KeyAction.PRESS), (EventType.KEY, key_id("q"), KeyAction.RELEASE)]
    click = [e for e in human if e.type == EventType.CLICK]
    assert len(click) == 1 and (click[0].x, click[0].y) == (25, 35) and 30 < click[0].hold_ms < 500
    assert rt.counters["human_events"] >= 3 and not rt.paused, rt.counters["pauses"]
    # the person moves the mouse away: paused at once, by the listener
    subprocess.run(xdo + ["mousemove", "900", "700"], check=True)
    time.sleep(0.3)
    assert rt.paused and rt.pause_reason == "human_override"
    rt.stop()
