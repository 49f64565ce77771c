"""ilbot.training (see DESIGN §1)."""
