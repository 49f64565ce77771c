"""ilbot.agent (see DESIGN §1)."""
