"""ilbot.gui (see DESIGN §1)."""
