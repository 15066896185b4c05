"""Rendering lives in the shared package (:mod:`tribe_shared.emails.render`), so the API's
previews render exactly what the worker sends; this module keeps the worker's old name for it."""

from tribe_shared.emails.render import (
    RENDERED_TYPES,
    TEMPLATES_DIR,
    RenderedEmail,
    RenderError,
    render_email,
    web_link,
)

__all__ = [
    "RENDERED_TYPES",
    "TEMPLATES_DIR",
    "RenderError",
    "RenderedEmail",
    "render_email",
    "web_link",
]
