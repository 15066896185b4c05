"""Which HTTP proxy, if any, a request to a URL goes through: the standard proxy variables.

The official SendGrid client sends through urllib, which honours ``HTTPS_PROXY`` (for https
URLs), ``HTTP_PROXY`` (for http URLs) and ``NO_PROXY``, lower- or upper-case, the lower-case one
winning when both are set (``urllib.request.getproxies_environment``). :func:`proxy_for` reads
them the same way from any mapping, so a test passes its own instead of changing ``os.environ``,
and decides a bypass with urllib's own ``proxy_bypass_environment``: ``*`` bypasses every host,
a name bypasses itself and its subdomains (``example.com`` and ``.example.com`` both cover
``api.example.com``), ``host:port`` only that port. ``ALL_PROXY`` is ignored, as urllib ignores it.

A proxy URL is ``http://[user:password@]host[:port]`` (``https://`` and no scheme are read the
same way: as urllib does, the proxy itself is spoken to in plain HTTP). Without a port the
target's default port is used, as urllib does. Credentials become a ``Proxy-Authorization:
Basic`` header; they never appear in a log line or an error.
"""

from __future__ import annotations

import base64
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit
from urllib.request import proxy_bypass_environment

from tribe_shared.settings import ConfigError

log = logging.getLogger(__name__)

#: Proxy URL schemes we accept; both mean an HTTP proxy spoken to in plain HTTP, as in urllib.
PROXY_SCHEMES = ("http", "https")
#: Default port of each target scheme, which urllib also uses for a proxy given without one.
DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class Proxy:
    """An HTTP proxy to send through, and the variable that named it."""

    host: str
    port: int
    #: The environment variable it came from (``HTTPS_PROXY``, ``http_proxy``, ...).
    variable: str
    #: ``Basic ...`` when the proxy URL carried a user and a password.
    authorization: str | None = field(default=None, repr=False)

    @property
    def headers(self) -> dict[str, str]:
        """The headers the proxy must see: its credentials, if any."""
        return {"Proxy-Authorization": self.authorization} if self.authorization else {}

    def __str__(self) -> str:
        """The proxy's address, never its credentials: safe for logs and errors."""
        return f"http://{self.host}:{self.port}"


def proxy_for(url: str, environ: Mapping[str, str]) -> Proxy | None:
    """The proxy a request to ``url`` goes through according to ``environ``; None: direct.

    Logs once which proxy it chose, or that ``NO_PROXY`` lists the host. Raises
    :class:`ConfigError` naming the variable when the proxy URL is not one we can use.
    """
    target = urlsplit(url)
    named = proxy_variables(environ)
    if target.scheme not in named:
        return None
    variable, value = named[target.scheme]
    bypass_list = {"no": named["no"][1]} if "no" in named else {}
    if proxy_bypass_environment(target.netloc, bypass_list):
        log.info("%s is listed in %s: requests go direct", target.netloc, named["no"][0])
        return None
    proxy = _parse(variable, value, DEFAULT_PORTS[target.scheme])
    log.info(
        "requests to %s go through the proxy %s (%s%s)",
        target.netloc,
        proxy,
        variable,
        ", with credentials" if proxy.authorization else "",
    )
    return proxy


def proxy_variables(environ: Mapping[str, str]) -> dict[str, tuple[str, str]]:
    """``{scheme: (variable, value)}`` of the ``*_proxy`` variables, as urllib reads them.

    A variable set but empty counts as unset; when both spellings are set the lower-case one
    wins (``urllib.request.getproxies_environment``, whose order this follows).
    """
    found: dict[str, tuple[str, str]] = {}
    for name, value in environ.items():
        if value and name.lower().endswith("_proxy"):
            found[name.lower()[: -len("_proxy")]] = (name, value)
    for name, value in environ.items():
        if name.endswith("_proxy"):
            scheme = name[: -len("_proxy")].lower()
            if value:
                found[scheme] = (name, value)
            else:
                found.pop(scheme, None)
    return found


def _parse(variable: str, value: str, default_port: int) -> Proxy:
    raw = value.strip()
    url = urlsplit(raw if "://" in raw else f"http://{raw}")
    try:
        port = url.port
    except ValueError:
        port = -1
    if url.scheme not in PROXY_SCHEMES or not url.hostname or port == -1:
        raise ConfigError(
            f"{variable} must be a proxy URL http://[user:password@]host[:port], "
            f"not {_redacted(raw)!r}"
        )
    authorization = None
    if url.username and url.password:
        credentials = f"{unquote(url.username)}:{unquote(url.password)}"
        authorization = "Basic " + base64.b64encode(credentials.encode()).decode("ascii")
    return Proxy(url.hostname, port or default_port, variable, authorization)


def _redacted(url: str) -> str:
    """``url`` with everything before its last ``@`` (user and password) masked."""
    return re.sub(r"^([A-Za-z][A-Za-z0-9+.-]*://)?.*@", lambda m: f"{m.group(1) or ''}***@", url)
