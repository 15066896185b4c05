"""tribe_api."""
