"""Every template in every language we write (English and Spanish), chosen by the recipient's
locale; English for a locale we do not write."""

from __future__ import annotations

import pytest

from tribe_shared.emails.render import (
    LANGUAGES,
    RENDERED_TYPES,
    TEMPLATES_DIR,
    language_of,
    render_email,
)

SPANISH = {
    "welcome": ({"name": "Abuela"}, "¡Te damos la bienvenida a Tribe, Abuela!"),
    "system": ({}, "Un mensaje de Tribe"),
    "notification": ({"child_name": "Maya"}, "Noticias de Maya"),
    "digest": (
        {"frequency": "weekly", "total": 2, "since": "x"},
        "Tu resumen semanal: 2 novedades",
    ),
}


def test_every_template_exists_in_every_language():
    english = sorted(path.name for path in (TEMPLATES_DIR / "en").iterdir())
    for language in LANGUAGES:
        assert sorted(p.name for p in (TEMPLATES_DIR / language).iterdir()) == english


@pytest.mark.parametrize("email_type", RENDERED_TYPES)
def test_a_spanish_locale_gets_the_spanish_email(email_type):
    data, subject = SPANISH[email_type]

    email = render_email(email_type, data, locale="es-MX")

    assert email.subject == subject
    assert '<html lang="es">' in email.html
    assert "Recibes este correo" in email.html + email.text
    assert "You receive this email" not in email.html + email.text


@pytest.mark.parametrize(
    ("locale", "language"),
    [("es", "es"), ("es-MX", "es"), ("es_AR", "es"), ("EN-gb", "en"), ("fr", "en"), (None, "en")],
)
def test_the_language_of_a_locale(locale, language):
    assert language_of(locale) == language


def test_a_locale_we_do_not_write_gets_english():
    assert render_email("welcome", {"name": "Mamie"}, locale="fr").subject == (
        "Welcome to Tribe, Mamie!"
    )


def test_the_spanish_digest_links_are_spanish():
    email = render_email(
        "digest", {"unsubscribe_url": "https://api/u/t", "mute_url": "https://app/m"}, locale="es"
    )
    assert "Darse de baja: https://api/u/t" in email.text
    assert "Silenciar estos correos" in email.html
