"""Reading a Prometheus text exposition in tests: every sample by name and labels."""

from __future__ import annotations

import requests
from prometheus_client.parser import text_string_to_metric_families


class Scrape:
    """The samples of one scrape; :meth:`value` finds one by name and labels."""

    def __init__(self, text: str):
        self.text = text
        self.samples = [
            sample for family in text_string_to_metric_families(text) for sample in family.samples
        ]

    def value(self, name: str, **labels: str) -> float | None:
        """The sample ``name`` with exactly ``labels`` (None when the scrape has none)."""
        for sample in self.samples:
            if sample.name == name and sample.labels == labels:
                return sample.value
        return None

    def names(self) -> set[str]:
        return {sample.name for sample in self.samples}

    def labelled(self, name: str) -> dict[tuple, float]:
        """Every sample of ``name``, by its label values in name order."""
        return {
            tuple(v for _, v in sorted(s.labels.items())): s.value
            for s in self.samples
            if s.name == name
        }


def scrape(url: str) -> dict[tuple[str, frozenset], float]:
    """Every sample of the exposition at ``url``: (name, labels) → value."""
    response = requests.get(url, timeout=5)
    assert response.status_code == 200, response.text
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def total(samples: dict, name: str, **labels: str) -> float:
    """The sum of ``name``'s samples that carry ``labels`` (and any others)."""
    wanted = set(labels.items())
    return sum(value for (n, ls), value in samples.items() if n == name and wanted <= ls)
