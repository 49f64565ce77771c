"""Corrections: what the person did while they had taken over from the live agent.

When a live run pauses because the person moved the pointer away (`human_override`), the person
is showing what the agent should have done. The app records their input on the game window (and
the game state) from that moment until they hand back (Resume) or the run ends, into a session
store of its own in the sessions folder, and marks the whole recording as one `correction`
segment (`ilbot.data.store.mark_segment`, DESIGN §7b). `ilbot build --segment-weight correction=W`
then weights those windows in training; the Train tab shows how many corrections a session holds.
"""

from __future__ import annotations

import time
from pathlib import Path

from . import wiring


class CorrectionRecorder:
    """One takeover at a time: `begin(...)` when the person takes over, `end()` when they hand back."""

    def __init__(self, sessions_dir: Path):
        self.sessions_dir = Path(sessions_dir)
        self.recorder = None
        self.path: Path | None = None
        self.recorded: list[Path] = []  # every correction session written so far

    @property
    def active(self) -> bool:
        return self.recorder is not None

    def begin(self, rect: tuple[int, int, int, int], source: str, kill_key: str) -> Path:
        """Start recording the person's input on the game window."""
        if self.recorder is not None:
            return self.path
        self.path = self.sessions_dir / f"correction-{time.strftime('%Y%m%d-%H%M%S')}.ilbot.sqlite"
        self.recorder = wiring.start_recorder(self.path, rect, source, kill_key)
        return self.path

    def end(self) -> str | None:
        """Stop recording and mark it as one correction; a one-line summary, or None if none was going."""
        rec, path = self.recorder, self.path
        if rec is None:
            return None
        self.recorder = None
        summary = wiring.stop_recorder(rec)
        from ..data.store import mark_segment, open_session

        with open_session(path) as s:
            events = list(s.events())
            end_ns = (events[-1].t_ns + 1) if events else 0
        mark_segment(path, "correction", 0, max(end_ns, 1), {"reason": "human_override"})
        self.recorded.append(path)
        return f"correction recorded in {path.name}: {summary}"
