"""Render an email from its Jinja2 templates: an HTML part (autoescaped) and a text part.

Each email ``type`` has ``<type>.html``, ``<type>.txt`` and ``<type>.subject.txt`` under
``templates/``. Template data is the caller's JSON: missing keys render empty instead of failing,
and user text is never treated as template source.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from jinja2 import ChainableUndefined, Environment, FileSystemLoader, TemplateError

from tribe_shared.contract import DIGEST_TEMPLATE, EMAIL_TYPES, NOTIFICATION_TEMPLATE
from tribe_worker.emails.providers import RenderedEmail

TEMPLATES_DIR = Path(__file__).with_name("templates")


class RenderError(Exception):
    """The email cannot be rendered: a permanent failure of its job."""


def _environment(autoescape: bool) -> Environment:
    return Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=autoescape,
        undefined=ChainableUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        # Templates ship with the code: no stat() of three files per email to see if they changed.
        auto_reload=False,
    )


_html = _environment(autoescape=True)
_text = _environment(autoescape=False)


def render_email(
    email_type: str, data: Mapping[str, Any], subject: str | None = None
) -> RenderedEmail:
    """Render ``email_type`` with ``data``; ``subject`` overrides the template's own."""
    if email_type not in (*EMAIL_TYPES, NOTIFICATION_TEMPLATE, DIGEST_TEMPLATE):
        raise RenderError(f"unknown email type {email_type!r}")
    context = {"data": data}
    try:
        html = _html.get_template(f"{email_type}.html").render(context)
        text = _text.get_template(f"{email_type}.txt").render(context)
        if subject is None:
            subject = _text.get_template(f"{email_type}.subject.txt").render(context)
    except TemplateError as exc:
        raise RenderError(f"cannot render {email_type!r}: {exc}") from exc
    # A subject is a header: fold any line breaks the data brought in.
    subject = " ".join(subject.split())
    return RenderedEmail(subject=subject, html=html, text=text)
