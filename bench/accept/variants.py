"""The three apps ``bench/api_accept.py`` compares, each served by gunicorn from ``bench_apps``."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Variant:
    name: str
    app: str
    label: str


VARIANTS = (
    Variant("ours", "bench_apps:ours()", "ours: POST /api/notifications/send-email"),
    Variant("bare_insert_send", "bench_apps:bare_insert_send()", "bare Falcon: INSERT + send"),
    Variant("bare_ok", "bench_apps:bare_ok()", "bare Falcon: 202 only"),
)
