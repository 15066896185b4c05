"""The load generators of ``bench/api_accept.py``: ``wrk`` when installed, else a Python client.

Each posts the same valid send-email body (:data:`BODY`) with the given headers over
keep-alive connections for a number of seconds and reports responses, errors and latency
percentiles. ``wrk`` costs far less CPU per request than a Python client, which matters when
the load generator shares the machine's CPUs with the servers it measures.
"""

from __future__ import annotations

import http.client
import json
import multiprocessing
import platform
import shutil
import signal
import statistics
import subprocess
import time
from pathlib import Path

from common.safety import BenchError

PATH = "/api/notifications/send-email"

#: What every variant is sent: a valid send-email body (the bare apps ignore the token).
BODY = {
    "to": "grandma@example.com",
    "type": "system",
    "subject": "Bench",
    "templateData": {"name": "Grandma", "message": "A new photo of Ada is waiting for you."},
}

#: Whatever happens, no single load run lasts longer than this many seconds...
MAX_RUN_SECONDS = 120
#: ...nor sends more than this many requests per connection (Python client).
MAX_REQUESTS_PER_CONNECTION = 200_000


WRK_DONE = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"duration_us":%.0f,"requests":%.0f,' ..
    '"errors":{"connect":%.0f,"read":%.0f,"write":%.0f,"status":%.0f,"timeout":%.0f},' ..
    '"latency_us":{"mean":%.1f,"max":%.0f,"p50":%.0f,"p90":%.0f,"p99":%.0f,"p99_9":%.0f}}\\n',
    summary.duration, summary.requests,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency.max, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency:percentile(99.9)))
end
"""


class WrkClient:
    name = "wrk"

    def __init__(self, headers: dict, workdir: Path):
        self.binary = shutil.which("wrk")
        self.script = workdir / "post.lua"
        lines = ['wrk.method = "POST"', f"wrk.body = [==[{json.dumps(BODY)}]==]"]
        lines += [f'wrk.headers["{k}"] = [==[{v}]==]' for k, v in headers.items()]
        self.script.write_text("\n".join(lines) + "\n" + WRK_DONE)

    def version(self) -> str:
        out = subprocess.run([self.binary, "-v"], capture_output=True, text=True, timeout=5)
        return (out.stdout or out.stderr).splitlines()[0].strip()

    def run(self, port: int, connections: int, seconds: float) -> dict:
        cmd = [
            self.binary,
            "-t1",
            f"-c{connections}",
            f"-d{max(1, round(seconds))}s",
            "--timeout",
            "5s",
            "-s",
            str(self.script),
            f"http://127.0.0.1:{port}{PATH}",
        ]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 30)
        line = next((x for x in out.stdout.splitlines() if x.startswith("BENCH_JSON ")), None)
        if out.returncode != 0 or line is None:
            raise BenchError(f"wrk failed ({out.returncode}): {out.stderr}\n{out.stdout}")
        data = json.loads(line.removeprefix("BENCH_JSON "))
        errors = data["errors"]
        lat = data["latency_us"]
        return {
            "seconds": data["duration_us"] / 1e6,
            "responses": int(data["requests"]),
            "non_2xx": int(errors["status"]),
            "socket_errors": int(
                errors["connect"] + errors["read"] + errors["write"] + errors["timeout"]
            ),
            "latency_ms": {k: round(v / 1000, 3) for k, v in lat.items()},
        }


def _python_connection(args) -> tuple[int, int, int, list[float]]:
    """One keep-alive connection posting until ``stop_at``: (responses, non-2xx, errors, lat)."""
    port, headers, start_at, stop_at = args
    body = json.dumps(BODY).encode()
    latencies: list[float] = []
    non_2xx = errors = 0
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    while time.monotonic() < start_at:
        time.sleep(0.001)
    perf = time.perf_counter
    while time.monotonic() < stop_at and len(latencies) < MAX_REQUESTS_PER_CONNECTION:
        began = perf()
        try:
            conn.request("POST", PATH, body=body, headers=headers)
            resp = conn.getresponse()
            resp.read()
        except (OSError, http.client.HTTPException):
            errors += 1
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            continue
        latencies.append((perf() - began) * 1000)
        if not 200 <= resp.status < 300:
            non_2xx += 1
    conn.close()
    return len(latencies), non_2xx, errors, latencies


def _client_process_init() -> None:
    """Client processes leave Ctrl-C to the parent and die quietly when it ends the pool."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


class PythonClient:
    """Fallback: one process per connection, raw keep-alive ``http.client`` connections."""

    name = "python-http.client"

    def __init__(self, headers: dict):
        self.headers = {**headers, "Content-Type": "application/json"}

    def version(self) -> str:
        return f"http.client, Python {platform.python_version()}"

    def run(self, port: int, connections: int, seconds: float) -> dict:
        start_at = time.monotonic() + 0.5
        stop_at = start_at + seconds
        ctx = multiprocessing.get_context("fork")
        with ctx.Pool(connections, initializer=_client_process_init) as pool:
            work = [(port, self.headers, start_at, stop_at)] * connections
            parts = pool.map_async(_python_connection, work).get(timeout=seconds + 30)
        latencies = sorted(x for part in parts for x in part[3])
        if not latencies:
            raise BenchError("the Python client got no response at all")

        def pct(p: float) -> float:
            return round(latencies[min(len(latencies) - 1, int(len(latencies) * p / 100))], 3)

        return {
            "seconds": seconds,
            "responses": sum(p[0] for p in parts),
            "non_2xx": sum(p[1] for p in parts),
            "socket_errors": sum(p[2] for p in parts),
            "latency_ms": {
                "mean": round(statistics.fmean(latencies), 3),
                "max": round(latencies[-1], 3),
                "p50": pct(50),
                "p90": pct(90),
                "p99": pct(99),
                "p99_9": pct(99.9),
            },
        }


def choose_client(kind: str, headers: dict, workdir: Path) -> WrkClient | PythonClient:
    """``wrk`` for ``auto`` when installed, the Python client otherwise (or when asked)."""
    if kind in ("auto", "wrk") and shutil.which("wrk"):
        return WrkClient(headers, workdir)
    if kind == "wrk":
        raise BenchError("wrk not found: apt-get install -y wrk (or --client python)")
    if kind == "auto":
        print("wrk not found: using the Python client (slower, it shares the CPUs)")
    return PythonClient(headers)
