"""tribe_dev."""
