"""ilbot.eval (see DESIGN §1)."""
