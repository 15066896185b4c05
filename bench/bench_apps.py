"""The WSGI apps the benches run under gunicorn (``module:factory()``).

* :func:`ours` - the real API, exactly as ``tribe_api.runtime.build_app`` (the production
  ``tribe_api.wsgi:app``) wires it, its broker in the bench's own Redis namespace (both
  ``bench/api_accept.py`` and ``bench/e2e_email.py`` serve it).
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
from common.product import (
    Actor,
    DeliveryMethod,
    JobKind,
    JobStatus,
    NotificationJob,
    NotificationType,
    Queue,
    build_broker,
    db,
    load_or_exit,
    utcnow,
)

BENCH_NAMESPACE_VARIABLE = "TRIBE_BENCH_NAMESPACE"
DEFAULT_BENCH_NAMESPACE = "tribe_bench"


def _check_namespace(settings) -> None:
    """Never touch a namespace but the bench's (``REDIS_NAMESPACE``, set by the bench)."""
    bench_namespace = os.environ.get(BENCH_NAMESPACE_VARIABLE, DEFAULT_BENCH_NAMESPACE)
    if settings.redis_namespace != bench_namespace:
        raise RuntimeError(f"REDIS_NAMESPACE is {settings.redis_namespace!r}, not the bench's")


def ours() -> falcon.App:
    """The production app of ``tribe_api.runtime.build_app``, its broker in the bench namespace."""
    from common.product import build_app

    _check_namespace(load_or_exit())
    return build_app()


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
    _check_namespace(settings)
    db.bind(settings.database_url)
    broker = build_broker(settings)
    app = falcon.App()
    app.add_route("/api/notifications/send-email", _InsertSend(broker))
    return app
