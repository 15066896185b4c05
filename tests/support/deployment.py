"""A whole deployment on real processes, for the fault suite and the tests of what only real
processes show: release, web (gunicorn, two workers) and worker (the dramatiq CLI) on a
redis-server of the test's own, a PostgreSQL database (the run's own, or a server of the test's
own) and a fake SendGrid whose behaviour the test switches at run time, with timings shortened
("fast profile") so recovery takes seconds.

The scheduler process (periodiq) ticks once a minute, too slowly for most tests: they run the
same periodic work on demand instead (:meth:`Deployment.relay`, :meth:`Deployment.reap`, or
:meth:`Deployment.send_tick`, the very message periodiq sends), against the same database and
broker. :meth:`Deployment.start_scheduler` starts the real one where a test needs it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from datetime import timedelta
from pathlib import Path

import dramatiq
import requests

from tests.conftest import JWT_SECRET, RUN_ID
from tests.support.fakes.redis_server import RedisProcess, free_port
from tests.support.fakes.sendgrid import API_KEY, FakeSendGrid
from tests.support.processes import BIN, Processes, children_of
from tests.support.waiting import settle, wait_until
from tribe_api.auth import SERVICE_ROLE, mint_token
from tribe_shared import db
from tribe_shared.contract import MAX_PERSONALIZATIONS, JobStatus, Queue
from tribe_shared.models import ALL_MODELS, NotificationJob, utcnow
from tribe_shared.outbox import Outbox
from tribe_shared.redis_broker import build_broker, read_depths, total
from tribe_shared.settings import Settings
from tribe_worker.reaper import reap_stuck_jobs
from tribe_worker.relay import GRACE, relay_pending_jobs

#: Lets the test relay jobs the API has just left ``pending`` (the relay skips younger ones).
PAST_GRACE = GRACE + timedelta(seconds=1)

#: Shortened timings: retries after 50 ms, a circuit that probes again after 1 s, a dead
#: worker's jobs taken back after 3 s. The rate limit is lifted unless a test is about it.
FAST_PROFILE = {
    "RETRY_BACKOFF_MS": "50",
    "CIRCUIT_FAILURE_THRESHOLD": "5",
    "CIRCUIT_RESET_SECONDS": "1",
    "JOB_LEASE_SECONDS": "3",
    "QUEUED_STALE_SECONDS": "3",
    "OUTBOX_POLL_SECONDS": "0.5",
    "EMAIL_RATE_LIMIT_PER_SECOND": "100000",
    # One test user sends every job: the per-user write limit is tested on its own.
    "USER_WRITE_RATE_PER_MINUTE": "1000000",
}

#: The defaults, for the one run that measures real recovery times. Only the per-user write
#: limit stays lifted: the test is one user sending everything.
DEFAULT_PROFILE = {"USER_WRITE_RATE_PER_MINUTE": "1000000"}

#: The queues a worker consumes, fast lane first, as the Procfile runs it.
WORKER_QUEUES = (Queue.URGENT.value, Queue.EMAILS.value, Queue.MAINTENANCE.value)
#: How long a test waits for a whole batch to be delivered before it gives up.
DELIVERY_TIMEOUT = 60.0
#: How often the test process runs the periodic work while it waits (the scheduler's poll).
PERIODIC_INTERVAL = 0.5


class Deployment:
    """release + web + worker on a redis-server of its own; see the module docstring."""

    def __init__(
        self,
        log_dir: Path,
        database_url: str,
        sendgrid: FakeSendGrid,
        env: dict[str, str],
        *,
        profile: dict[str, str] = FAST_PROFILE,
    ):
        self.database_url = database_url
        self.sendgrid = sendgrid
        self.redis_server = RedisProcess().start()
        self.namespace = f"tribe-rel-{RUN_ID}-{uuid.uuid4().hex[:6]}"
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        #: The worker's metrics exposition server (Dramatiq's Prometheus middleware).
        self.metrics_port = free_port()
        self.metrics_url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        self.metrics_dir = log_dir / f"dramatiq-prom-{self.namespace}"
        self.env = {
            "APP_ENV": "test",
            "DATABASE_URL": database_url,
            "REDIS_URL": self.redis_server.url,
            "REDIS_NAMESPACE": self.namespace,
            "JWT_SECRET": JWT_SECRET,
            "SENDGRID_API_KEY": API_KEY,
            "SENDGRID_API_HOST": sendgrid.url,
            "PORT": str(self.port),
            "WEB_CONCURRENCY": "2",
            "dramatiq_prom_host": "127.0.0.1",
            "dramatiq_prom_port": str(self.metrics_port),
            "dramatiq_prom_db": str(self.metrics_dir),
            # As the Procfile runs the worker.
            "dramatiq_worker_timeout": "100",
            **profile,
            **env,
        }
        self.settings = Settings.from_env(self.env)
        self.processes = Processes(log_dir, self.env)
        self.worker: subprocess.Popen | None = None
        self._workers_started = 0
        self._broker: dramatiq.Broker | None = None
        #: What the test's reaper passes took back, over the whole test.
        self.reaped: Counter = Counter()
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {mint_token(JWT_SECRET, role=SERVICE_ROLE)}"

    # --- processes ---------------------------------------------------------------------

    def start_web(self) -> None:
        release = self.processes.start("release", f"{BIN}/tribe-migrate")
        assert release.wait(60) == 0, self.processes.log("release")
        self.processes.start("web", f"{BIN}/gunicorn", "-c", "services/api/gunicorn.conf.py")
        self.processes.wait_healthy(f"{self.base}/api/health", "web")

    def start_worker(
        self,
        processes: int = 1,
        threads: int = 2,
        *,
        queues: Sequence[str] = WORKER_QUEUES,
        timeout: float = 30.0,
    ) -> None:
        """Start ``dramatiq`` as the Procfile does and wait until every process is consuming."""
        assert self.worker is None or self.worker.poll() is not None, "a worker is running"
        self._workers_started += 1
        name = f"worker-{self._workers_started}"
        self.worker = self.processes.start(
            name,
            *(f"{BIN}/dramatiq", "tribe_worker.main:broker"),
            *("--processes", str(processes), "--threads", str(threads)),
            *("--queues", *queues),
        )
        worker = self.worker

        def ready():
            if worker.poll() is not None:
                raise AssertionError(f"worker exited {worker.returncode}:\n{self.worker_log()}")
            return self.worker_log().count("Worker process is ready for action.") >= processes

        wait_until(ready, timeout=timeout, interval=0.05, what="the worker processes to boot")

    def worker_log(self) -> str:
        return self.processes.log(f"worker-{self._workers_started}")

    def worker_running(self) -> bool:
        return self.worker is not None and self.worker.poll() is None

    def restart_worker_if_it_died(self, processes: int, threads: int) -> bool:
        """What a process supervisor does: start the worker again once it has exited."""
        if self.worker is None or self.worker_running():
            return False
        self.start_worker(processes, threads)
        return True

    def worker_processes(self) -> list[int]:
        """The pids of the worker's consuming processes (the dramatiq main process's children)."""
        if not self.worker_running():
            return []
        return children_of(self.worker.pid)

    def kill_worker_process(self, pid: int) -> None:
        """SIGKILL one consuming process, as the kernel's OOM killer or a segfault would.

        Dramatiq's main process then stops the others and exits: the supervisor restarts it.
        """
        os.kill(pid, signal.SIGKILL)

    def start_scheduler(self, name: str = "scheduler") -> subprocess.Popen:
        """The Procfile's ``scheduler``: periodiq, sending the periodic ticks every minute."""
        return self.processes.start(name, f"{BIN}/periodiq", "tribe_worker.main:broker", TZ="UTC")

    def kill_worker(self) -> None:
        """SIGKILL the worker's whole process group: nothing gets to clean up."""
        os.killpg(self.worker.pid, signal.SIGKILL)
        self.worker.wait(10)

    def terminate_worker(self, *, whole_group: bool = False, timeout: float = 30.0) -> int:
        """SIGTERM the worker and wait for it to exit; return its exit status.

        To its main process only, as ``docker stop`` does (dramatiq passes it on to its worker
        processes), or with ``whole_group`` to every process at once, as Heroku does.
        """
        if whole_group:
            os.killpg(self.worker.pid, signal.SIGTERM)
        else:
            self.worker.send_signal(signal.SIGTERM)
        return self.worker.wait(timeout)

    def stop(self) -> None:
        try:
            self.processes.stop_all()
        finally:
            self.redis_server.stop()
            if self._broker is not None:
                self._broker.close()

    # --- the API -----------------------------------------------------------------------

    def send_emails(
        self, count: int, *, tag: str = "", priority: str = "normal"
    ) -> list[dict[str, str]]:
        """Accept ``count`` emails through send-bulk-email (chunks of at most 1000).

        Each has its own ``templateData``, so each is a job of its own on the broker (identical
        contents would travel as one batch). Returns the API's ``jobs`` entries in order.
        """
        tag = tag or uuid.uuid4().hex[:8]
        accepted = []
        for start in range(0, count, MAX_PERSONALIZATIONS):
            emails = [
                {
                    "to": f"family{i}@example.com",
                    "type": "system",
                    "templateData": {"title": f"Update {tag}-{i}"},
                    "priority": priority,
                }
                for i in range(start, min(count, start + MAX_PERSONALIZATIONS))
            ]
            response = self.http.post(
                f"{self.base}/api/notifications/send-bulk-email",
                json={"emails": emails},
                timeout=60,
            )
            assert response.status_code == 202, response.text
            accepted += response.json()["jobs"]
        return accepted

    def send_email(self, **fields) -> dict:
        body = {"to": "nana@example.com", "type": "system", "templateData": {"title": "Hi"}}
        response = self.http.post(
            f"{self.base}/api/notifications/send-email", json={**body, **fields}, timeout=10
        )
        assert response.status_code == 202, response.text
        return response.json()

    def redis_health(self) -> dict:
        return self.http.get(f"{self.base}/api/health/redis", timeout=5).json()

    # --- the database and the broker, read and driven from the test process --------------

    @property
    def broker(self) -> dramatiq.Broker:
        """A broker on the deployment's Redis and namespace, for the test's own periodic work."""
        if self._broker is None:
            self._broker = build_broker(self.settings)
        return self._broker

    def jobs(self, job_ids: Iterable[str]) -> list[NotificationJob]:
        with db.connection():
            ids = [uuid.UUID(str(job_id)) for job_id in job_ids]
            return list(NotificationJob.select().where(NotificationJob.id.in_(ids)))

    def statuses(self, job_ids: Sequence[str]) -> Counter:
        with db.connection():
            ids = [uuid.UUID(str(job_id)) for job_id in job_ids]
            query = NotificationJob.select(NotificationJob.status).where(
                NotificationJob.id.in_(ids)
            )
            return Counter(job.status for job in query)

    def all_have(self, job_ids: Sequence[str], status: str = JobStatus.SENT) -> bool:
        return self.statuses(job_ids)[status] == len(job_ids)

    def relay(self, *, ahead: timedelta = timedelta(0), batch_size: int | None = None) -> int:
        """One outbox relay pass, as the scheduler runs it; ``ahead`` shifts its clock.

        The relay leaves jobs younger than its grace period to the request that accepted them;
        ``ahead`` lets a test relay jobs it has just seen the API leave ``pending``.
        """
        options = {} if batch_size is None else {"batch_size": batch_size}
        with db.connection():
            return relay_pending_jobs(
                Outbox(self.broker), clock=lambda: utcnow() + ahead, **options
            )

    def reap(self) -> dict[str, int]:
        """One stuck-job reaper pass with the deployment's lease and staleness."""
        with db.connection():
            counts = reap_stuck_jobs(
                self.broker,
                clock=utcnow,
                lease=timedelta(seconds=self.settings.job_lease_seconds),
                stale=timedelta(seconds=self.settings.queued_stale_seconds),
            )
        self.reaped.update(counts)
        return counts

    def run_periodic_work_until(
        self, done: Callable[[], bool], timeout: float = DELIVERY_TIMEOUT
    ) -> bool:
        """Reap and relay every :data:`PERIODIC_INTERVAL` until ``done``; False at the deadline."""

        def tick_then_check():
            self.reap()
            self.relay()
            return done()

        return settle(tick_then_check, timeout=timeout, interval=PERIODIC_INTERVAL)

    def send_tick(self, actor_name: str) -> None:
        """Enqueue a periodic actor's tick exactly as a periodiq scheduler process does."""
        self.broker.enqueue(
            dramatiq.Message(
                queue_name=Queue.MAINTENANCE.value,
                actor_name=actor_name,
                args=(),
                kwargs={},
                options={"scheduled_at": utcnow().isoformat()},
            )
        )

    def queue_depths(self) -> dict[str, int]:
        """Waiting, active (fetched, not acked), delayed and dead messages over every queue."""
        pipe = self.broker.client.pipeline(transaction=False)
        depths_of = read_depths(pipe, self.namespace)
        return total(depths_of(pipe.execute()))

    def drained(self) -> bool:
        depths = self.queue_depths()
        return depths["waiting"] + depths["active"] + depths["delayed"] == 0

    def messages_on(self, queue: str) -> list[dramatiq.Message]:
        """Every message stored for ``queue`` (waiting or fetched), straight from Redis."""
        raw = self.broker.client.hvals(f"{self.namespace}:{queue}.msgs")
        return [dramatiq.Message.decode(data) for data in raw]


def ids_of(accepted: list[dict]) -> list[str]:
    """The job ids of the API's ``jobs`` entries, in order."""
    return [job["jobId"] for job in accepted]


def truncate_all() -> None:
    """Empty every table: the relay and the reaper act on every row, not just a test's own."""
    tables = ", ".join(model._meta.table_name for model in ALL_MODELS)
    with db.connection():
        db.database.execute_sql(f"TRUNCATE {tables} CASCADE")
