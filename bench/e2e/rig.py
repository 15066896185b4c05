"""What every phase works with: the store, the fakes (SendGrid, Twilio), the environment of the
processes under test, and the processes started so far (all stopped at the end, whatever
happens)."""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from common import product
from common.processes import Gunicorn, Process

from e2e.api import Api, individual_emails
from e2e.measure import wait_delivered
from e2e.processes import FakeProvider, Workers
from e2e.store import Store

#: The queues the workers consume, as the Procfile's worker line.
WORKER_QUEUES = ("emails_urgent", "emails", "maintenance")
#: The API as production serves it, with its broker in the bench's namespace.
API_APP = "bench_apps:ours()"

#: The number the SMS phase's texts come from (``TWILIO_SMS_FROM``).
SMS_FROM = "+14155550000"

#: Variables of the caller's environment the processes under test must not inherit: its
#: metrics directories, and a prefetch setting that would change what is measured.
DROPPED_VARIABLES = ("dramatiq_prom_db", "PROMETHEUS_MULTIPROC_DIR", "dramatiq_queue_prefetch")


@dataclass(frozen=True)
class Running:
    """The API and workers of phases 4 and 5, warmed up, and a client of the API."""

    api: Api
    workers: Workers
    server: Gunicorn


class Rig:
    """One run's shared state; see the module's docstring."""

    def __init__(self, args: argparse.Namespace, store: Store, workdir: Path):
        self.args = args
        self.store = store
        self.workdir = workdir
        self.children: list[Process] = []
        #: True while the census has ``log_statement`` set: the cleanup resets it.
        self.log_statement_set = False
        #: py-spy's raw output of phase 2, kept beside the results when there is one.
        self.profile_raw: Path | None = None
        self.jwt_secret = "bench-" + secrets.token_hex(24)
        self.api_key = "SG.bench-" + secrets.token_hex(12)
        self.twilio_sid = "AC" + secrets.token_hex(16)
        self.twilio_token = secrets.token_hex(16)
        self.fake: FakeProvider | None = None
        #: The fake Twilio of the SMS phase.
        self.twilio: FakeProvider | None = None
        self.env: dict = {}
        self.token = ""

    def setup(self) -> None:
        """Create the store, start the fakes (SendGrid, Twilio), make the processes' environment."""
        # The main app's role, which sends ad-hoc email (a user may email only their recipients)
        self.token = product.mint_token(
            self.jwt_secret, user_id=uuid.uuid4(), role="service_role", ttl=timedelta(hours=2)
        )
        self.store.create()
        self.fake = self.start(FakeProvider({"FAKE_SENDGRID_API_KEY": self.api_key}, self.workdir))
        twilio_account = {
            "FAKE_TWILIO_ACCOUNT_SID": self.twilio_sid,
            "FAKE_TWILIO_AUTH_TOKEN": self.twilio_token,
        }
        self.twilio = self.start(FakeProvider(twilio_account, self.workdir, "fake_twilio"))
        self.fake.wait_ready()
        self.twilio.wait_ready()
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("GUNICORN", "WEB_"))},
            "APP_ENV": "production",
            "DATABASE_URL": self.store.url,
            "REDIS_URL": self.args.redis_url,
            "REDIS_NAMESPACE": self.store.namespace,
            "TRIBE_BENCH_NAMESPACE": self.store.namespace,
            "JWT_SECRET": self.jwt_secret,
            "SENDGRID_API_KEY": self.api_key,
            "SENDGRID_API_HOST": self.fake.url,
            "EMAIL_RATE_LIMIT_PER_SECOND": "1000000",
            "TWILIO_ACCOUNT_SID": self.twilio_sid,
            "TWILIO_AUTH_TOKEN": self.twilio_token,
            "TWILIO_SMS_FROM": SMS_FROM,
            "TWILIO_API_BASE_URL": self.twilio.url,
            "SMS_RATE_LIMIT_PER_SECOND": "1000000",
            "USER_WRITE_RATE_PER_MINUTE": "100000000",
            "WEB_CONCURRENCY": str(self.args.api_workers),
            "GUNICORN_THREADS": str(self.args.api_threads),
            "PYTHONUNBUFFERED": "1",
            **product.DELIVERY_VARIABLES,
        }
        for name in DROPPED_VARIABLES:
            self.env.pop(name, None)

    def start(self, process: Process) -> Process:
        self.children.append(process)
        return process

    def stop_all(self) -> None:
        for process in reversed(self.children):
            with contextlib.suppress(Exception):
                process.stop()

    def api(self, name: str) -> Gunicorn:
        """The real API under gunicorn, listening."""
        server = self.start(Gunicorn(name, API_APP, self.env, self.workdir))
        server.wait_ready()
        return server

    def workers(self, name: str) -> Workers:
        """The real workers, started (not yet ready)."""
        size = (self.args.processes, self.args.threads)
        workers = Workers(name, product.WORKER_BROKER, WORKER_QUEUES, self.env, size, self.workdir)
        return self.start(workers)

    def worker_command(self) -> str:
        return (
            f"dramatiq {product.WORKER_BROKER} --processes {self.args.processes} "
            f"--threads {self.args.threads} --queues {' '.join(WORKER_QUEUES)}"
        )

    def cpu_groups(self, workers: Process | None = None, api: Process | None = None) -> dict:
        """The process groups whose CPU time a phase is charged with."""
        return {
            "workers": workers.pids() if workers else [],
            "api": api.pids() if api else [],
            "postgres": self.store.backend_pids(),
            "redis": self.store.redis_pids(),
            "fake_sendgrid": self.fake.pids() if self.fake else [],
            "fake_twilio": self.twilio.pids() if self.twilio else [],
            "bench": [os.getpid()],
        }

    @contextlib.contextmanager
    def running(self, delay_ms: float) -> Iterator[Running]:
        """The API and the workers started, and warmed up with the fake answering after
        ``delay_ms``: every worker thread's connections, the templates, the SendGrid client."""
        self.store.reset()
        self.fake.configure(delay_ms)
        server = self.api("api_running")
        workers = self.workers("workers_running")
        workers.wait_ready(self.args.timeout)
        api = Api(server.port, self.token)
        try:
            warm = self.args.processes * self.args.threads * 2
            ids, _, _ = api.accept(individual_emails(warm, "warm"))
            wait_delivered(self, len(ids), workers, "the warm-up emails")
            yield Running(api, workers, server)
        finally:
            api.close()
        workers.stop()
        server.stop()
