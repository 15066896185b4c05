"""The few HTML pages the API serves to people rather than programs: the unsubscribe pages.

Rendered from Jinja2 templates (autoescaped) under ``templates/``, with headers that keep the
link's token to this origin: no referrer, no caching, no framing, no scripts at all.
"""

from __future__ import annotations

from pathlib import Path

import falcon
from jinja2 import Environment, FileSystemLoader, StrictUndefined

TEMPLATES_DIR = Path(__file__).with_name("templates")

#: The pages run no script and load nothing from elsewhere; their forms post here only.
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Robots-Tag": "noindex",
    "X-Content-Type-Options": "nosniff",
}

_pages = Environment(
    loader=FileSystemLoader(TEMPLATES_DIR),
    autoescape=True,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    auto_reload=False,
)


def render_page(resp, template: str, status: str = falcon.HTTP_200, **context) -> None:
    """Answer with ``template`` rendered with ``context``."""
    resp.status = status
    resp.content_type = falcon.MEDIA_HTML
    resp.set_headers(PAGE_HEADERS)
    resp.text = _pages.get_template(template).render(context)
