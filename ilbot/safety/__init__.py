"""ilbot.safety: the safety layers between the model's plan and the executor, and the kill switch.

Pure Python, no torch (DESIGN §1): the layers work on plain `PlannedAction`s, so they can be
tested and reasoned about alone. `SafetyPipeline` applies them in DESIGN §7's order; `KillSwitch`
(a global hotkey) and `install_release_guards` (atexit + signals) make sure nothing stays held.
pynput is imported only when a kill switch starts (it needs an X display).
"""

from .config import SafetyConfig
from .guards import install_release_guards
from .intervention import Intervention, SafetyLayer
from .killswitch import KillSwitch, parse_hotkey
from .pipeline import SafetyPipeline

__all__ = ["SafetyConfig", "SafetyPipeline", "SafetyLayer", "Intervention", "KillSwitch", "parse_hotkey",
           "install_release_guards"]
