"""The operator console at ``/admin`` (issue #16): server-rendered pages over the jobs, the
broker, the digests and the suppression list, with the actions to repair them.

``session.py`` signs operators in and out (a short-lived signed cookie, a CSRF token per
session); ``reads.py`` holds what the pages read beyond the API's own queries; ``common.py``
what every page shares (the :class:`~tribe_api.console.common.Console`, the ``Page`` base with
its session and CSRF checks and rendering, the job filter of a query or form); one module a
page or concern holds the resources (``sign_in.py``, ``overview.py``, ``jobs.py``, ``bulk.py``,
``dead_letters.py``, ``digests.py``, ``suppressions.py``); ``routes.py`` puts them at their
paths (``add_console``). The templates are under ``tribe_api/pages/templates/console/``.
"""
