"""AI digest summaries: a short, warm paragraph at the top of a digest, written by a model.

Optional twice over: the group opts in (``groups.ai_summary``, off by default) and the worker
has a model (``OPENAI_API_KEY``; ``OPENAI_BASE_URL`` and ``OPENAI_MODEL`` for any endpoint that
speaks OpenAI's chat completions). The ``build_digest`` actor asks, never the API nor the
scheduler's tick, and a digest never fails or waits because of it: a model that errors, times out
(``OPENAI_TIMEOUT_SECONDS``, no retries by the client) or is not configured gives the plain
digest. The answer is bounded by ``OPENAI_MAX_TOKENS``.

The model is sent the window's updates' titles and text only: no names of the recipient or the
family, no addresses, no media URLs.

Asked once per digest: :func:`summary_of` stores what came back (the text, or why there is none)
in the digest job's content at once, so a retry of the digest (a provider outage, say) reuses it
rather than asking again. Calls, tokens and latency are counted in ``tribe_summary_*`` metrics.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Protocol

import openai
from prometheus_client import Counter, Histogram

from tribe_shared.emails.render import language_of
from tribe_shared.models import NotificationJob, Update
from tribe_shared.settings import Settings

log = logging.getLogger(__name__)

#: Where a digest job's content keeps its summary, and what became of asking for it.
SUMMARY_KEY = "summary"
SUMMARY_OUTCOME_KEY = "summary_outcome"
#: How much of one update's text the model is shown.
MAX_UPDATE_CHARS = 600
#: What the model is told to write, in the recipient's language.
LANGUAGE_NAMES = {"en": "English", "es": "Spanish"}
INSTRUCTIONS = (
    "You write the opening of a family's digest email to a grandparent or close relative. "
    "In {language}, in two or three warm, simple sentences (at most 60 words), say what "
    "happened in the updates below. Use only what they say; no greeting, no sign-off, no "
    "lists, no emojis."
)

summary_calls = Counter(
    "tribe_summary_calls_total",
    "Digest summaries asked of the model, by outcome (written, timeout, error, empty).",
    ["outcome"],
)
summary_tokens = Counter(
    "tribe_summary_tokens_total",
    "Tokens the model's answers counted, by kind (prompt, completion).",
    ["kind"],
)
summary_duration = Histogram(
    "tribe_summary_duration_seconds",
    "How long the model took to answer (or to fail).",
    buckets=(0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 7.5, 10.0, 15.0, 30.0),
)


class Summarizer(Protocol):
    def summarize(self, updates: Sequence[Update], language: str) -> tuple[str | None, str]:
        """The summary of ``updates`` in ``language`` (None: none), and the outcome."""
        ...


class OpenAISummarizer:
    """Asks a chat-completions model through the official ``openai`` client."""

    def __init__(
        self,
        api_key: str,
        *,
        model: str,
        base_url: str | None = None,
        timeout: float,
        max_tokens: int,
    ):
        # No retries of the client's own: a second try would make the digest later, not better.
        self._client = openai.OpenAI(
            api_key=api_key, base_url=base_url, timeout=timeout, max_retries=0
        )
        self._model = model
        self._max_tokens = max_tokens

    def summarize(self, updates: Sequence[Update], language: str) -> tuple[str | None, str]:
        started = time.perf_counter()
        try:
            response = self._client.chat.completions.create(
                model=self._model,
                messages=prompt(updates, language),
                max_tokens=self._max_tokens,
                temperature=0.7,
            )
        except openai.APITimeoutError:
            return self._failed("timeout", started)
        except openai.OpenAIError as exc:
            log.warning("digest summary: the model failed: %s", exc)
            return self._failed("error", started)
        summary_duration.observe(time.perf_counter() - started)
        if response.usage is not None:
            summary_tokens.labels(kind="prompt").inc(response.usage.prompt_tokens)
            summary_tokens.labels(kind="completion").inc(response.usage.completion_tokens)
        text = (response.choices[0].message.content or "").strip() if response.choices else ""
        outcome = "written" if text else "empty"
        summary_calls.labels(outcome=outcome).inc()
        return (text or None), outcome

    @staticmethod
    def _failed(outcome: str, started: float) -> tuple[None, str]:
        summary_duration.observe(time.perf_counter() - started)
        summary_calls.labels(outcome=outcome).inc()
        return None, outcome


def prompt(updates: Sequence[Update], language: str) -> list[dict]:
    """The messages the model gets: the instructions, then each update's title and text (and
    nothing else of it: no media URLs, no addresses, no names but those its text holds)."""
    lines = []
    for number, update in enumerate(updates, 1):
        title = (update.title or "").strip()
        text = (update.body or "").strip()[:MAX_UPDATE_CHARS]
        lines.append(f"{number}. {title}" + (f"\n{text}" if text else ""))
    language_name = LANGUAGE_NAMES.get(language, "English")
    return [
        {"role": "system", "content": INSTRUCTIONS.format(language=language_name)},
        {"role": "user", "content": "\n\n".join(lines)},
    ]


def summarizer_from(settings: Settings) -> Summarizer | None:
    """The model of ``OPENAI_*``; None when no key is configured (plain digests)."""
    if not settings.openai_api_key:
        return None
    return OpenAISummarizer(
        settings.openai_api_key,
        model=settings.openai_model,
        base_url=settings.openai_base_url,
        timeout=settings.openai_timeout_seconds,
        max_tokens=settings.openai_max_tokens,
    )


def summary_of(
    job, updates: Sequence[Update], locale: str | None, summarizer: Summarizer | None
) -> tuple[str | None, dict]:
    """The digest job's summary and its content as stored now: the summary an earlier attempt
    stored, else the model's answer, stored at once (with its outcome) so no later attempt asks
    again. None: the plain digest (no model configured, or it gave none)."""
    content = job.content or {}
    if SUMMARY_OUTCOME_KEY in content:
        return content.get(SUMMARY_KEY), content
    if summarizer is None:
        summary_calls.labels(outcome="unconfigured").inc()
        return None, content
    text, outcome = summarizer.summarize(updates, language_of(locale))
    stored = {**content, SUMMARY_KEY: text, SUMMARY_OUTCOME_KEY: outcome}
    NotificationJob.update(content=stored).where(NotificationJob.id == job.id).execute()
    return text, stored
