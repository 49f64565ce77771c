"""ilbot.safety (see DESIGN §1)."""
