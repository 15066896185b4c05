"""Emails: rendering from templates and the providers that deliver them."""
