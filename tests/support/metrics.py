"""The worker's metrics in prometheus-client's default registry, read before and after."""

from __future__ import annotations

from prometheus_client import REGISTRY


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


class Readings:
    """Metric samples read now, to compare with later readings: ``readings.change(name, ...)``."""

    def __init__(self):
        self._before: dict[tuple, float] = {}

    def watch(self, name: str, **labels: str) -> Readings:
        self._before[(name, tuple(sorted(labels.items())))] = value(name, **labels)
        return self

    def change(self, name: str, **labels: str) -> float:
        return value(name, **labels) - self._before[(name, tuple(sorted(labels.items())))]


def readings(*watched: tuple[str, dict]) -> Readings:
    r = Readings()
    for name, labels in watched:
        r.watch(name, **labels)
    return r
