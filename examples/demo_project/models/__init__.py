"""Models of the demo project."""
