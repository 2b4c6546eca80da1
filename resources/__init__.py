"""Icons, the style sheet and the bundled sample dataset (read with importlib.resources)."""
