"""``tribe-dev``: the whole system in one process, for development."""
