"""ilbot.model (see DESIGN §1)."""
