"""Emails as both services see them: rendering from templates (the worker sends what it renders,
the API previews it), the digest's content, and the unsubscribe links emails carry."""
