"""What the dashboard and the alerts read is what the services really export: every metric of
deploy/METRICS.md (which tests/system/test_agreed_metric_names.py holds the dashboard and alerts
to) appears in a scrape of the API's ``/metrics`` and of the worker's registry, and nothing of ours
is exported that the document does not name."""

from __future__ import annotations

import re

from prometheus_client import REGISTRY, generate_latest

from tests.support.deploy_files import agreed_metrics

#: ``# TYPE <name> <type>`` lines of a scrape; counters are declared without ``_total``.
_TYPE = re.compile(r"^# TYPE (\S+) (\S+)$", re.MULTILINE)


def exported(scrape: str) -> set[str]:
    names = set()
    for name, kind in _TYPE.findall(scrape):
        names.add(f"{name}_total" if kind == "counter" and not name.endswith("_total") else name)
    return names


def ours(names: set[str]) -> set[str]:
    """Our metric names, without prometheus-client's ``*_created`` companions (a single-process
    registry exports them; the multiprocess exposition of production does not)."""
    return {n for n in names if n.startswith("tribe_") and not n.endswith("_created")}


def test_every_agreed_metric_is_exported_by_the_api_or_the_worker(redis_api, tokens, worker_app):
    # Given the API on Redis after one request, and the worker's metrics (declared when built)
    assert redis_api.simulate_get("/api/jobs", headers=tokens.alice).status_code == 200
    api_scrape = redis_api.simulate_get("/metrics").text
    worker_scrape = generate_latest(REGISTRY).decode()

    # Then the two scrapes name every metric of the document, and only those
    agreed = ours(set(agreed_metrics().names))
    found = ours(exported(api_scrape)) | ours(exported(worker_scrape))
    assert agreed - found == set(), "named in METRICS.md, exported by neither service"
    assert found - agreed == set(), "exported, missing from METRICS.md"
