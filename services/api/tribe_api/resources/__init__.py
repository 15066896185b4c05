"""HTTP resources: thin adapters that parse, call a service and shape the response."""
