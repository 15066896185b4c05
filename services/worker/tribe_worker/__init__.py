"""tribe_worker."""
