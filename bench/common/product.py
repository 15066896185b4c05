"""Every name the benches take from the product, and the module it lives in.

This is the one place that knows the product's module layout: when a module moves, its line
here changes and no bench does. A bench imports from here (``from common.product import
mint_token``); each name is imported from its module on first use, so a process loads only
the parts of the product it needs (the API a bench serves under gunicorn never loads the
worker, whose metrics and middleware would change what is measured).
"""

from __future__ import annotations

import importlib

#: The product's modules and the names the benches use from each.
NAMES = {
    "tribe_shared.redis_broker": ("build_broker",),
    "tribe_shared.contract": (
        "Actor",
        "DeliveryMethod",
        "JobKind",
        "JobStatus",
        "NotificationType",
        "Queue",
        "route",
    ),
    "tribe_shared.migrate": ("apply_migrations",),
    "tribe_shared.models": (
        "DigestSchedule",
        "Group",
        "GroupMembership",
        "NotificationJob",
        "Recipient",
        "User",
        "utcnow",
    ),
    "tribe_shared.schedule": ("next_run_after", "parse_delivery_time"),
    "tribe_shared.settings": ("Settings", "load_or_exit"),
    "tribe_api.app": ("create_app",),
    "tribe_api.auth": ("mint_service_role_key", "mint_token"),
    "tribe_api.runtime": ("build_app",),
    "tribe_worker.worker": ("build_worker",),
    "tribe_worker.retention": ("apply_retention",),
}
#: Product modules used whole, by the name the benches give them.
MODULES = {"db": "tribe_shared.db"}

#: The variables production requires since issue #14 (the event webhook's key, the API's public
#: URL, the unsubscribe links' secret), with bench values: every production-like run sets them.
DELIVERY_VARIABLES = {
    "SENDGRID_WEBHOOK_PUBLIC_KEY": (
        "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEOG0jVCZR28dUkLdwi7akG6rJ2UNwfmxyq9w0HjRBvCKh"
        "Eu7q8jVGdKs5x8wJa0sYYn//7h10k5imlzgEg6HCjw=="
    ),
    "API_PUBLIC_URL": "https://jobs.bench.example",
    "UNSUBSCRIBE_SECRET": "bench-unsubscribe-secret-" + "0" * 16,
}

#: What the worker processes of ``bench/e2e_email.py`` run: ``dramatiq <this>`` (as the Procfile).
WORKER_BROKER = "tribe_worker.main:broker"

_MODULE_OF = {name: module for module, names in NAMES.items() for name in names}


def __getattr__(name: str):
    if name in MODULES:
        value = importlib.import_module(MODULES[name])
    elif name in _MODULE_OF:
        value = getattr(importlib.import_module(_MODULE_OF[name]), name)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *MODULES, *_MODULE_OF])
