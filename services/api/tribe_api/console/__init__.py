"""The operator console at ``/admin`` (issue #16): server-rendered pages over the jobs, the
broker, the digests and the suppression list, with the actions to repair them.

``session.py`` signs operators in and out (a short-lived signed cookie, a CSRF token per
session); ``reads.py`` holds what the pages read beyond the API's own queries; ``pages.py`` the
resources; the templates are under ``tribe_api/pages/templates/console/``.
"""
