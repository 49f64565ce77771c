"""`ilbot bench killswitch [--json]`: from the kill-switch hotkey to the agent stopped with
everything released, over N trials, on a private X server.

Each trial: a real `PynputExecutor` behind a `Scheduler` holds three keys and a mouse button
(checked on the X server), a plan of moves is pending, then the hotkey is injected through
XTest; the `KillSwitch` listener calls `Scheduler.stop`, which drops the plan, ends the thread and
releases everything. Measured from just before the hotkey press is injected to `stop()` having
released (`stop_ms`), and to the X server reporting every key and button up (`x_released_ms`).
`stop_ms` is the **maximum** over the trials (the figure a user can rely on); the median and p95
are printed beside it. The target is ≤ 100 ms.

The benchmark injects keys, so it never touches the display you work on: it starts its own Xvfb
(`--display` picks another throwaway server, such as a test session's).
"""

from __future__ import annotations

import gc
import os
import statistics
import time

from ..errors import UserError
from .xserver import start_xvfb

HELD_KEYS = ("a", "s", "d")


def add_arguments(parser) -> None:
    parser.add_argument("--trials", type=int, default=20, help="number of trials (default 20)")
    parser.add_argument("--hotkey", default="f12", help="kill-switch hotkey (default f12)")
    parser.add_argument("--display", default=None,
                        help="a throwaway X display to use instead of starting a private Xvfb (input is injected there)")


def _percentile(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


def measure(trials: int, hotkey: str) -> dict:
    """Run the trials on the current DISPLAY."""
    from pynput import keyboard

    from ..agent.executors.pynput_exec import PynputExecutor, pynput_key
    from ..agent.scheduler import Scheduler
    from ..data.action import PlannedAction
    from ..data.keys import key_id
    from ..data.schema import EventType, KeyAction
    from ..safety import KillSwitch, SafetyConfig, SafetyPipeline
    from ..safety.xstate import XInputState

    injector = keyboard.Controller()
    hot = pynput_key(key_id(hotkey))
    executor = PynputExecutor()
    xs = XInputState()
    current = {}
    kill = KillSwitch(hotkey, on_trigger=lambda: current["scheduler"].stop())
    kill.start()
    stop_ms, x_ms, released_ok = [], [], 0
    try:
        for _ in range(trials):
            kill.reset()
            pipeline = SafetyPipeline(SafetyConfig(), (800, 600))
            scheduler = current["scheduler"] = Scheduler(executor, pipeline, origin=(100, 100))
            plan = [PlannedAction(EventType.KEY, 40.0 * i, 50, 50, key_action=KeyAction.PRESS, key_id=key_id(k))
                    for i, k in enumerate(HELD_KEYS)]
            plan.append(PlannedAction(EventType.CLICK, 130.0, 60, 60, button=1, hold_ms=500.0))
            plan += [PlannedAction(EventType.MOVE, 200.0 + 20 * i, 60 + i, 60) for i in range(20)]
            scheduler.submit(plan, time.monotonic_ns())
            deadline = time.monotonic() + 2.0
            while not (len(xs.keys_down()) >= len(HELD_KEYS) and xs.buttons_down()):
                if time.monotonic() > deadline:
                    raise RuntimeError("bench killswitch: the agent's keys never showed as held on the X server")
                time.sleep(0.002)
            t0 = time.monotonic_ns()
            injector.press(hot)
            injector.release(hot)
            if not kill.wait(2.0) or scheduler.stopped_ns is None:
                deadline = time.monotonic() + 2.0
                while scheduler.stopped_ns is None and time.monotonic() < deadline:
                    time.sleep(0.001)
            if scheduler.stopped_ns is None:
                raise RuntimeError("bench killswitch: the hotkey did not stop the scheduler within 2 s")
            stop_ms.append((scheduler.stopped_ns - t0) / 1e6)
            deadline = time.monotonic() + 2.0
            while xs.anything_held() and time.monotonic() < deadline:
                pass
            x_ms.append((time.monotonic_ns() - t0) / 1e6)
            released_ok += not xs.anything_held() and scheduler.pending == 0
            time.sleep(0.02)
    finally:
        kill.stop()
        executor.close()
        xs.close()
    return {"trials": trials, "hotkey": kill.hotkey,
            "stop_ms": round(max(stop_ms), 3), "stop_ms_stat": "max",
            "stop_median_ms": round(statistics.median(stop_ms), 3), "stop_p95_ms": round(_percentile(stop_ms, 0.95), 3),
            "x_released_median_ms": round(statistics.median(x_ms), 3), "x_released_max_ms": round(max(x_ms), 3),
            "all_released": released_ok == trials, "target_ms": 100.0}


def run(args) -> dict:
    trials = int(getattr(args, "trials", 20))
    if trials < 1:
        raise UserError("bench killswitch: --trials must be at least 1")
    display = getattr(args, "display", None)
    proc = None
    if display is None:
        proc, display = start_xvfb(who="bench killswitch")
    saved = os.environ.get("DISPLAY")
    os.environ["DISPLAY"] = display
    try:
        return measure(trials, getattr(args, "hotkey", "f12"))
    finally:
        if saved is None:
            os.environ.pop("DISPLAY", None)
        else:
            os.environ["DISPLAY"] = saved
        if proc is not None:
            gc.collect()  # close pynput's X connections before their server goes away
            proc.terminate()
            proc.wait(5)
