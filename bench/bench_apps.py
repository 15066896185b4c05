"""The three WSGI apps that ``bench/api_accept.py`` runs under gunicorn (``module:factory()``).

* :func:`ours` - the real API, exactly as ``tribe_api.runtime.build_app`` (the production
  ``tribe_api.wsgi:app``) wires it, its broker in the bench's own Redis namespace.
* :func:`bare_ok` - a bare Falcon app whose POST only answers 202 with a small JSON.
* :func:`bare_insert_send` - a bare Falcon app whose POST does the same single INSERT into
  ``notification_jobs`` (peewee, the same pooled database) and one Dramatiq broker send
  (``dramatiq.Message`` to queue ``emails`` on the same ``RedisBroker``): no auth, no validation.

They read the same environment variables as the API (``DATABASE_URL``, ``REDIS_URL``, ...).
Not part of the product and not imported by the tests.
"""

from __future__ import annotations

import json
import os
import uuid

import dramatiq
import falcon

from tribe_shared import db
from tribe_shared.contract import (
    Actor,
    DeliveryMethod,
    JobKind,
    JobStatus,
    NotificationType,
    Queue,
)
from tribe_shared.models import NotificationJob, utcnow
from tribe_shared.redis_broker import build_broker
from tribe_shared.settings import load_or_exit

BENCH_NAMESPACE_VARIABLE = "TRIBE_BENCH_NAMESPACE"
DEFAULT_BENCH_NAMESPACE = "tribe_bench"


def _namespace() -> str:
    return os.environ.get(BENCH_NAMESPACE_VARIABLE, DEFAULT_BENCH_NAMESPACE)


def _check_namespace(settings) -> None:
    """Never touch a namespace but the bench's (``REDIS_NAMESPACE``, set by api_accept.py)."""
    if settings.redis_namespace != _namespace():
        raise RuntimeError(f"REDIS_NAMESPACE is {settings.redis_namespace!r}, not the bench's")


def _broker(settings):
    """``build_broker`` in the bench's namespace, whichever way this version of it takes one."""
    if hasattr(settings, "redis_namespace"):
        _check_namespace(settings)
        return build_broker(settings)
    return build_broker(settings, namespace=_namespace())


def ours() -> falcon.App:
    """The production app of ``tribe_api.runtime.build_app``, its broker in the bench namespace."""
    from tribe_api import runtime

    settings = load_or_exit()
    if hasattr(settings, "redis_namespace"):
        _check_namespace(settings)
    else:
        # Before REDIS_NAMESPACE existed: give build_app's broker the namespace by hand.
        runtime.build_broker = _broker
    return runtime.build_app()


class _Accepted:
    """POST answers 202 with a small JSON body, nothing else."""

    def on_post(self, req, resp):
        req.bounded_stream.read()
        resp.status = falcon.HTTP_202
        resp.media = {"success": True, "status": "queued", "statusCode": 202}


def bare_ok() -> falcon.App:
    app = falcon.App()
    app.add_route("/api/notifications/send-email", _Accepted())
    return app


class _InsertSend:
    """POST does one INSERT into ``notification_jobs`` and one broker send; no checks at all."""

    def __init__(self, broker: dramatiq.Broker):
        self._broker = broker

    def on_post(self, req, resp):
        body = json.loads(req.bounded_stream.read())
        job_id = uuid.uuid4()
        now = utcnow()
        with db.database.connection_context():
            NotificationJob.insert(
                id=job_id,
                kind=JobKind.EMAIL,
                status=JobStatus.PENDING,
                to_email=body["to"],
                notification_type=NotificationType.IMMEDIATE,
                urgency=body.get("priority", "normal"),
                delivery_method=DeliveryMethod.EMAIL,
                content={
                    "type": body["type"],
                    "subject": body.get("subject"),
                    "templateData": body.get("templateData", {}),
                },
                scheduled_for=now,
                created_at=now,
            ).execute()
        self._broker.enqueue(
            dramatiq.Message(
                queue_name=str(Queue.EMAILS),
                actor_name=str(Actor.SEND_EMAIL),
                args=(str(job_id),),
                kwargs={},
                options={},
            )
        )
        resp.status = falcon.HTTP_202
        resp.media = {"success": True, "jobId": str(job_id), "status": "queued"}


def bare_insert_send() -> falcon.App:
    settings = load_or_exit()
    db.bind(settings.database_url)
    broker = _broker(settings)
    app = falcon.App()
    app.add_route("/api/notifications/send-email", _InsertSend(broker))
    return app
