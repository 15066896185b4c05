"""The console's routes: each page's resource at its path under ``/admin``."""

from __future__ import annotations

import falcon

from tribe_api.console.bulk import ActionPage, BulkPage
from tribe_api.console.common import Console
from tribe_api.console.dead_letters import DeadLettersPage
from tribe_api.console.digests import DigestPreviewPage, DigestsPage
from tribe_api.console.jobs import JobActionForm, JobPage, JobsPage
from tribe_api.console.overview import OverviewPage
from tribe_api.console.sign_in import SignInPage, SignOutForm
from tribe_api.console.suppressions import SuppressionsPage


def add_console(app: falcon.App, console: Console, route) -> None:
    """The console's routes on ``app`` (``route``: the app's route adder)."""
    route(app, "/admin", OverviewPage(console))
    route(app, "/admin/sign-in", SignInPage(console))
    route(app, "/admin/sign-out", SignOutForm(console))
    route(app, "/admin/jobs", JobsPage(console))
    route(app, "/admin/jobs/{job_id:uuid}", JobPage(console))
    route(app, "/admin/jobs/{job_id:uuid}/retry", JobActionForm(console, "retry"))
    route(app, "/admin/jobs/{job_id:uuid}/cancel", JobActionForm(console, "cancel"))
    route(app, "/admin/bulk", BulkPage(console))
    route(app, "/admin/actions/{action_id:uuid}", ActionPage(console))
    route(app, "/admin/dead-letters", DeadLettersPage(console))
    route(app, "/admin/digests", DigestsPage(console))
    route(app, "/admin/digests/{schedule_id:uuid}", DigestPreviewPage(console))
    route(app, "/admin/suppressions", SuppressionsPage(console))
