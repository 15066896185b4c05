"""``tribe-dev``: API, worker and scheduler in one process on the embedded default.

SQLite and no Redis unless ``DATABASE_URL``/``REDIS_URL`` say otherwise; without Redis the broker
is in memory and the worker runs as threads of this process. Emails go to ``var/outbox/`` unless
``SENDGRID_API_KEY`` is set. Prints a development token and a curl to try.
"""

from __future__ import annotations

import logging
import os
import shlex
import signal
import socketserver
import sys
import threading
import uuid
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import dramatiq
import redis

from tribe_api.app import create_app
from tribe_api.auth import SERVICE_ROLE, mint_token, user_token_issuer
from tribe_shared import db
from tribe_shared.contract import PERIODIC_ACTORS
from tribe_shared.migrate import apply_migrations
from tribe_shared.settings import exit_on_config_error, load_or_exit
from tribe_worker.worker import build_worker

#: How often the in-process scheduler ticks, as periodiq does (each relay tick relays every
#: OUTBOX_POLL_SECONDS within its minute).
RELAY_EVERY_SECONDS = 60.0
WORKER_THREADS = 8

log = logging.getLogger("tribe_dev")


class _ThreadingServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, code="-", size="-"):
        pass  # the API logs each request itself (tribe_api.access), with its route

    def log_message(self, format, *args):
        log.info("%s %s", self.address_string(), format % args)


def _tick(broker: dramatiq.Broker, stop: threading.Event) -> None:
    """The development scheduler: send the periodic ticks as periodiq would, only more often."""
    ticks = [broker.get_actor(actor) for actor in PERIODIC_ACTORS]
    while True:
        for actor in ticks:
            actor.send()
        if stop.wait(RELAY_EVERY_SECONDS):
            return


def main() -> None:
    os.environ.setdefault("APP_ENV", "development")
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    settings = load_or_exit()
    if settings.is_production:
        sys.exit("tribe-dev is for development; production runs the Procfile processes")

    database = db.bind(settings.database_url, pooler=settings.database_pooler)
    with database.connection_context():
        apply_migrations(database)

    with exit_on_config_error():  # e.g. a proxy variable the SendGrid provider cannot use
        worker = build_worker(settings)
    broker = worker.broker
    redis_client = None
    if settings.uses_redis:
        redis_client = redis.Redis.from_url(settings.redis_url, socket_timeout=1)
    else:
        log.warning(
            "DEVELOPMENT MODE: no REDIS_URL, so the broker is in memory and jobs not yet sent "
            "are lost from it on exit (their rows stay pending and are relayed on the next start)"
        )
    consumer = dramatiq.Worker(broker, worker_threads=WORKER_THREADS)
    consumer.start()
    stop = threading.Event()
    threading.Thread(target=_tick, args=(broker, stop), name="scheduler", daemon=True).start()

    app = create_app(settings, broker=broker, redis_client=redis_client)
    server = make_server(
        "127.0.0.1", settings.port, app, server_class=_ThreadingServer, handler_class=_QuietHandler
    )
    print(_welcome(settings), flush=True)

    def shutdown(*_):
        stop.set()
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, shutdown)
    signal.signal(signal.SIGINT, shutdown)
    try:
        server.serve_forever()
    finally:
        consumer.stop()
        log.info("stopped")


def _welcome(settings) -> str:
    """Where it runs, with what, a development token and a curl to try."""
    # The service role's: the main app's, which sends the welcome and system emails (a user may
    # email only their own recipients).
    token = mint_token(
        settings.jwt_secret,
        user_id=uuid.UUID(int=1),
        role=SERVICE_ROLE,
        issuer=user_token_issuer(settings.jwt_issuers),
    )
    base = f"http://127.0.0.1:{settings.port}"
    body = '{"to": "grandma@example.com", "type": "welcome", "templateData": {"name": "Grandma"}}'
    return f"""
Tribe Jobs is running in DEVELOPMENT mode on {base}
  database: {settings.database_url}
  broker:   {settings.redis_url or "in memory (no REDIS_URL)"}
  emails:   {"SendGrid" if settings.sendgrid_api_key else "written to var/outbox/*.eml"}
  API docs: {base}/api/docs
  console:  {base}/admin (sign in with the token below; http://127.0.0.1 takes its Secure cookie)

Development token (the service role, 12 hours):
  export TOKEN={token}

Try it:
  curl -s -X POST {base}/api/notifications/send-email \\
    -H "Authorization: Bearer $TOKEN" -H "Content-Type: application/json" \\
    -d {shlex.quote(body)}
  curl -s {base}/api/jobs/<jobId> -H "Authorization: Bearer $TOKEN"
"""


if __name__ == "__main__":
    main()
