"""The orchestrator's probes: ``/api/health/live`` (the process answers) and
``/api/health/ready`` (the database is reachable and every migration this code expects is
applied). ``GET`` and ``HEAD`` both; ``/api/health`` keeps its own meaning (the whole system).

Liveness never touches the database or Redis: a database outage must not make Kubernetes restart
every API pod (which would not help), only take them out of the Service until it is back.
"""

from __future__ import annotations

import falcon
from spectree import Response

from tribe_api.resources.health import check_database
from tribe_api.schemas.errors import Error
from tribe_api.schemas.health import Live, Ready
from tribe_api.spec import spec
from tribe_shared.db import database
from tribe_shared.migrate import pending_migrations


class LiveResource:
    """``GET|HEAD /api/health/live``: 200 while the process can answer a request."""

    auth_required = False
    uses_database = False

    @spec.validate(resp=Response(HTTP_200=Live, HTTP_413=Error), tags=["health"], security={})
    def on_get(self, req, resp):
        """Liveness: the process answers. Never reads the database or Redis."""
        resp.media = {"status": "alive"}


class ReadyResource:
    """``GET|HEAD /api/health/ready``: 200 when this process can serve requests, else 503."""

    auth_required = False
    uses_database = False

    @spec.validate(
        resp=Response(HTTP_200=Ready, HTTP_413=Error, HTTP_503=Ready), tags=["health"], security={}
    )
    def on_get(self, req, resp):
        """Readiness: the database answers and every migration of this release is applied
        (503 naming what is missing while the release job runs or the database is down)."""
        self._answer(resp)

    def _answer(self, resp) -> None:
        db_health = check_database()
        pending: list[str] = []
        if db_health["connected"]:
            try:
                with database.connection_context():
                    pending = pending_migrations(database)
            except Exception as exc:  # whatever it raised, the database cannot say
                db_health = {"connected": False, "error": f"{type(exc).__name__}: {exc}"}
        ready = db_health["connected"] and not pending
        resp.status = falcon.HTTP_200 if ready else falcon.HTTP_503
        resp.media = {
            "status": "ready" if ready else "not_ready",
            "database": db_health,
            "pending_migrations": pending,
        }
