"""ilbot.agent: the live side of ilbot (DESIGN §1, §3, §7).

Capture adapters (`ilbot.agent.capture`), game-window lookup (`window`), the recorder
(`recorder`), executors, scheduler, runtime and replay. Nothing is imported here on purpose:
importing `ilbot.agent` must work without a display (pynput opens an X connection at import), so
each module imports pynput and mss lazily, where it is used.
"""
