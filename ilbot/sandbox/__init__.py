"""ilbot.sandbox: the practice game and its scripted demonstrator (DESIGN §8; docs/sandbox.md).

The game talks to the agent only through the json-dir (and optional HTTP) state a real game
client's plugin would publish. `STATE_DIR` is where `ilbot sandbox` publishes by default, and
where the `sandbox` capture source reads: $ILBOT_SANDBOX_STATE, else <tmp>/ilbot-sandbox/state.
"""

import os
import tempfile
from pathlib import Path

STATE_DIR = Path(os.environ.get("ILBOT_SANDBOX_STATE") or Path(tempfile.gettempdir()) / "ilbot-sandbox" / "state")
