"""ilbot.safety: the safety layers between the model's plan and the executor, and the kill switch.

Pure Python, no torch (DESIGN §1): the layers work on plain `PlannedAction`s, so they can be
tested and reasoned about alone. `SafetyPipeline` applies them in DESIGN §7's order. What makes
sure nothing stays held, whatever the plan does: `SafetyClock` (forced releases on its own thread
and clock: max hold, stale state, a suspension), `Guardian` (a separate process that releases
everything when the agent's heartbeats stop), `KillSwitch` (a global hotkey),
`install_release_guards` (atexit + signals) and `install_suspend_guard` (Ctrl+Z). pynput is
imported only when a kill switch or the guardian starts (it needs an X display).
"""

from .clock import SafetyClock
from .config import SafetyConfig
from .guards import install_release_guards, install_suspend_guard
from .intervention import Intervention, SafetyLayer
from .killswitch import KillSwitch, parse_hotkey
from .pipeline import SafetyPipeline


def __getattr__(name):
    # lazily, so that `python -m ilbot.safety.guardian` does not find itself imported already
    if name == "Guardian":
        from .guardian import Guardian
        return Guardian
    raise AttributeError(name)


__all__ = ["SafetyConfig", "SafetyPipeline", "SafetyLayer", "Intervention", "KillSwitch", "parse_hotkey",
           "install_release_guards", "install_suspend_guard", "SafetyClock", "Guardian"]
