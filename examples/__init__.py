"""Runnable examples of schedtui with your own model (see README "Use it with your own model")."""
