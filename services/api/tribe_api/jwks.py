"""The project's public signing keys, read from its JWKS URL: fetched with a timeout, cached,
fetched again when a token names a key we do not have.

Supabase signs user tokens with asymmetric keys (ES256 or RS256) and publishes their public
halves at ``<SUPABASE_URL>/auth/v1/.well-known/jwks.json``; a token's ``kid`` header names its
key. A rotation publishes the new key before tokens use it, so a set refreshed every
:data:`DEFAULT_MAX_AGE_SECONDS` usually has it already, and an unknown ``kid`` fetches again.

Why not PyJWT's ``PyJWKClient`` (2.15): it holds one lock while it fetches, so a hanging
endpoint makes every verification in the process queue behind it; its cache expires after five
minutes whatever happens, so an endpoint that is down refuses every token once that time has
passed, although the keys have not changed; and its default timeout is 30 s. Here a request
waits for at most one fetch, a key set stays in use until a fetch replaces it, and one failed
or unknown-``kid`` fetch is not repeated for :data:`DEFAULT_REFETCH_COOLDOWN_SECONDS`, so a
stream of tokens with made-up ``kid`` values cannot turn into a stream of requests. PyJWT's
``PyJWK`` still parses each key.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.request
from collections.abc import Callable

from jwt import PyJWK, PyJWTError

log = logging.getLogger(__name__)

#: The asymmetric algorithms a key may be for; any other key in the set is ignored.
ALGORITHMS = ("ES256", "RS256")
#: How long a fetched key set is used before a request fetches it again.
DEFAULT_MAX_AGE_SECONDS = 300.0
#: The least time between two fetches after a failure or for an unknown ``kid``.
DEFAULT_REFETCH_COOLDOWN_SECONDS = 10.0
#: A key set is a few hundred bytes; anything much larger is not one.
MAX_BODY_BYTES = 256 * 1024


class KeysUnavailable(Exception):
    """The key set could not be fetched and no key for the token is known."""


class UnknownKey(Exception):
    """The key set was fetched and has no key with the token's ``kid``."""


def fetch_over_http(url: str, timeout: float) -> bytes:
    """GET ``url``; each connect and read gives up after ``timeout`` seconds."""
    request = urllib.request.Request(
        url, headers={"Accept": "application/json", "User-Agent": "tribe-jobs"}
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        body = response.read(MAX_BODY_BYTES + 1)
    if len(body) > MAX_BODY_BYTES:
        raise ValueError(f"the answer is larger than {MAX_BODY_BYTES} bytes")
    return body


def parse_key_set(body: bytes) -> dict[str, PyJWK]:
    """The signing keys of a JWKS document by ``kid``; keys of other uses or algorithms are left
    out (an empty set is valid: a project that signs only with its shared secret has one)."""
    document = json.loads(body)
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise ValueError('the answer is not a JWKS document ({"keys": [...]})')
    keys = {}
    for entry in document["keys"]:
        if not isinstance(entry, dict) or entry.get("use", "sig") != "sig":
            continue
        try:
            key = PyJWK(entry)
        except PyJWTError:
            continue  # a key type this process cannot use: no token of ours names it
        if isinstance(entry.get("kid"), str) and key.algorithm_name in ALGORITHMS:
            keys[entry["kid"]] = key
    return keys


class JwksKeys:
    """The signing keys published at one JWKS URL, safe to share between request threads."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float,
        max_age: float = DEFAULT_MAX_AGE_SECONDS,
        refetch_cooldown: float = DEFAULT_REFETCH_COOLDOWN_SECONDS,
        fetch: Callable[[str, float], bytes] = fetch_over_http,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.url = url
        self._timeout = timeout
        self._max_age = max_age
        self._cooldown = refetch_cooldown
        self._fetch = fetch
        self._clock = clock
        self._lock = threading.Lock()
        self._keys: dict[str, PyJWK] = {}
        self._fetched_at: float | None = None
        self._attempted_at: float | None = None
        self._error: str | None = None

    def key_for(self, kid: str) -> PyJWK:
        """The key named ``kid``; raise :class:`UnknownKey` or :class:`KeysUnavailable`.

        Waits for at most one fetch: its own, or another thread's already under way.
        """
        if self._due() and self._lock.acquire(blocking=False):
            try:
                if self._due():
                    self._refresh()
            finally:
                self._lock.release()
        key = self._keys.get(kid)
        if key is not None:
            return key
        with self._lock:
            key = self._keys.get(kid)
            if key is None and self._may_fetch():
                self._refresh()
                key = self._keys.get(kid)
        if key is not None:
            return key
        if self._error is not None:
            raise KeysUnavailable(
                f"the signing keys could not be fetched from {self.url} ({self._error})"
            )
        raise UnknownKey(f"no key {kid!r} is published at {self.url}")

    def _may_fetch(self) -> bool:
        return self._attempted_at is None or self._clock() - self._attempted_at >= self._cooldown

    def _due(self) -> bool:
        """The set is missing or old, and the last attempt is not too recent to try again."""
        old = self._fetched_at is None or self._clock() - self._fetched_at >= self._max_age
        return old and self._may_fetch()

    def _refresh(self) -> None:
        """Fetch the set (the caller holds the lock); on failure keep the keys we have."""
        try:
            keys = parse_key_set(self._fetch(self.url, self._timeout))
        except Exception as exc:  # any failure means: keep the keys we have
            self._error = _describe(exc)
            log.warning("JWKS fetch from %s failed: %s", self.url, self._error)
        else:
            self._keys, self._error = keys, None
            self._fetched_at = self._clock()
        finally:
            self._attempted_at = self._clock()


def _describe(exc: Exception) -> str:
    if isinstance(exc, TimeoutError) or "timed out" in str(exc):
        return "timed out"
    return str(exc) or type(exc).__name__
