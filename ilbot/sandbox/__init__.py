"""ilbot.sandbox (see DESIGN §1)."""
