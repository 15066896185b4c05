"""Render an email from its Jinja2 templates: an HTML part (autoescaped) and a text part.

Each email ``type`` has ``<type>.html``, ``<type>.txt`` and ``<type>.subject.txt`` under
``templates/<language>/``, one folder per language of :data:`LANGUAGES`; an email is rendered in
its recipient's language (:func:`language_of`), English when it has none we write. Template data
is the caller's JSON: missing keys render empty instead of failing, and user text is never
treated as template source.

The worker renders what it sends; the API renders the same templates for previews. Both import
this module, so a preview is exactly what would be sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from jinja2 import ChainableUndefined, Environment, FileSystemLoader, TemplateError

from tribe_shared.contract import DIGEST_TEMPLATE, EMAIL_TYPES, NOTIFICATION_TEMPLATE

TEMPLATES_DIR = Path(__file__).with_name("templates")
#: The languages every template is written in; the first is the default.
LANGUAGES = ("en", "es")
DEFAULT_LANGUAGE = LANGUAGES[0]
#: Every type :func:`render_email` renders: the ad-hoc types, an update, a digest.
RENDERED_TYPES = (*EMAIL_TYPES, NOTIFICATION_TEMPLATE, DIGEST_TEMPLATE)


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    html: str
    text: str


class RenderError(Exception):
    """The email cannot be rendered: a permanent failure of its job."""


#: The only link schemes an email may carry: no ``javascript:``, ``data:`` or ``file:``.
WEB_SCHEMES = ("http", "https")


def web_link(value: Any) -> str | None:
    """``value`` if it is an http(s) URL, else None: a template shows no link for it."""
    if not isinstance(value, str):
        return None
    scheme = urlsplit(value.strip()).scheme.lower()
    return value.strip() if scheme in WEB_SCHEMES else None


def language_of(locale: str | None) -> str:
    """The template language for ``locale`` (``es``, ``es-MX``, ``es_MX``): its language if we
    write it, else English."""
    language = (locale or "").replace("-", "_").split("_")[0].lower()
    return language if language in LANGUAGES else DEFAULT_LANGUAGE


def _environment(language: str, autoescape: bool) -> Environment:
    environment = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR / language),
        autoescape=autoescape,
        undefined=ChainableUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        # Templates ship with the code: no stat() of three files per email to see if they changed.
        auto_reload=False,
    )
    environment.filters["web_link"] = web_link
    return environment


#: (HTML, text) environments of each language.
_ENVIRONMENTS = {
    language: (_environment(language, autoescape=True), _environment(language, autoescape=False))
    for language in LANGUAGES
}


def render_email(
    email_type: str,
    data: Mapping[str, Any],
    subject: str | None = None,
    *,
    locale: str | None = None,
) -> RenderedEmail:
    """Render ``email_type`` with ``data`` in the language of ``locale``; ``subject`` overrides
    the template's own."""
    if email_type not in RENDERED_TYPES:
        raise RenderError(f"unknown email type {email_type!r}")
    if not isinstance(data, Mapping):
        raise RenderError(f"the template data of {email_type!r} is not an object")
    if subject is not None and not isinstance(subject, str):
        raise RenderError(f"the subject of {email_type!r} is not text")
    media = data.get("media_urls")
    if media is not None and not (
        isinstance(media, list) and all(isinstance(u, str) for u in media)
    ):
        raise RenderError(f"the media_urls of {email_type!r} are not a list of links")
    html_env, text_env = _ENVIRONMENTS[language_of(locale)]
    context = {"data": data}
    try:
        html = html_env.get_template(f"{email_type}.html").render(context)
        text = text_env.get_template(f"{email_type}.txt").render(context)
        if subject is None:
            subject = text_env.get_template(f"{email_type}.subject.txt").render(context)
    except (TemplateError, TypeError, ValueError, AttributeError) as exc:
        # Data of the wrong shape (a number where a list goes): the job's content is at fault.
        raise RenderError(f"cannot render {email_type!r}: {exc}") from exc
    # A subject is a header: fold any line breaks the data brought in.
    subject = " ".join(subject.split())
    return RenderedEmail(subject=subject, html=html, text=text)
