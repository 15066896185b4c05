"""Rendering emails from templates: HTML and text parts, subjects, user data kept inert."""

from __future__ import annotations

import pytest

from tribe_shared.contract import EMAIL_TYPES
from tribe_shared.emails.render import RenderError, render_email

#: For each type, template data and the field of it that the body shows.
SAMPLES = {
    "system": ({"title": "Server news", "message": "Grandma joined"}, "message"),
    "welcome": ({"name": "Nana", "inviter_name": "Alice"}, "name"),
}

SCRIPT = "<script>alert('hi')</script>"


def data_with(email_type: str, value: str) -> dict:
    data, field = SAMPLES[email_type]
    return {**data, field: value}


def test_every_email_type_has_a_sample():
    assert set(SAMPLES) == set(EMAIL_TYPES)


@pytest.mark.parametrize("email_type", EMAIL_TYPES)
def test_email_type_renders_an_html_part_a_text_part_and_a_subject(email_type):
    data, field = SAMPLES[email_type]

    email = render_email(email_type, data)

    assert email.subject.strip()
    assert email.html.lstrip().lower().startswith("<!doctype html>")
    assert data[field] in email.html
    assert data[field] in email.text
    assert "<html" not in email.text and "<p" not in email.text


@pytest.mark.parametrize("email_type", EMAIL_TYPES)
def test_email_renders_with_its_defaults_when_template_data_is_missing(email_type):
    email = render_email(email_type, {})

    assert email.subject.strip()
    assert email.text.strip()
    assert "Undefined" not in email.html + email.text + email.subject


@pytest.mark.parametrize("email_type", EMAIL_TYPES)
def test_html_part_escapes_user_data_while_text_part_keeps_it_as_written(email_type):
    email = render_email(email_type, data_with(email_type, SCRIPT))

    assert SCRIPT not in email.html
    assert "&lt;script&gt;" in email.html
    assert SCRIPT in email.text


@pytest.mark.parametrize("email_type", EMAIL_TYPES)
def test_jinja_syntax_in_user_data_is_shown_literally_not_evaluated(email_type):
    payload = "{{ 7*7 }} {% if true %}yes{% endif %}"

    email = render_email(email_type, data_with(email_type, payload))

    for part in (email.html, email.text):
        assert "{{ 7*7 }}" in part
        assert "{% if true %}yes{% endif %}" in part
        assert "49" not in part


def test_jinja_syntax_in_user_data_is_not_evaluated_in_the_subject():
    email = render_email("system", {"title": "{{ 7*7 }}"})

    assert email.subject == "{{ 7*7 }}"


@pytest.mark.parametrize(
    ("data", "subject"),
    [
        ({"title": "Hello\r\nBcc: everyone@example.com"}, None),
        ({"title": "Hello\nthere\n"}, None),
        ({}, "An explicit\r\nsubject\n"),
    ],
    ids=["crlf-in-data", "lf-in-data", "breaks-in-explicit-subject"],
)
def test_line_breaks_never_reach_the_subject(data, subject):
    email = render_email("system", data, subject)

    assert "\r" not in email.subject and "\n" not in email.subject
    assert email.subject == email.subject.strip()


def test_line_breaks_in_the_subject_are_folded_into_spaces():
    email = render_email("system", {"title": "Hello\r\nBcc: everyone@example.com"})

    assert email.subject == "Hello Bcc: everyone@example.com"


@pytest.mark.parametrize("email_type", ["newsletter", "", "../system", "base"])
def test_an_unknown_email_type_raises_render_error(email_type):
    with pytest.raises(RenderError, match="unknown email type"):
        render_email(email_type, {})


@pytest.mark.parametrize("email_type", EMAIL_TYPES)
def test_an_explicit_subject_overrides_the_templates_own(email_type):
    data, _ = SAMPLES[email_type]
    templated = render_email(email_type, data).subject

    email = render_email(email_type, data, "Your weekly Tribe")

    assert email.subject == "Your weekly Tribe"
    assert templated != "Your weekly Tribe"


@pytest.mark.parametrize(
    "link",
    [
        "javascript:alert(1)",
        " JavaScript:alert(1)",
        "data:text/html,<b>hi</b>",
        "file:///etc/passwd",
    ],
)
@pytest.mark.parametrize(
    ("email_type", "field"), [("welcome", "login_url"), ("system", "action_url")]
)
def test_a_link_that_is_not_http_or_https_is_no_link_in_the_email(email_type, field, link):
    data = {**SAMPLES[email_type][0], field: link}

    email = render_email(email_type, data)

    assert "href" not in email.html
    assert link.strip() not in email.html


@pytest.mark.parametrize("link", ["https://tribe.example/a?b=1", "http://tribe.example/"])
def test_an_http_or_https_link_is_a_link(link):
    email = render_email("welcome", {**SAMPLES["welcome"][0], "login_url": link})

    assert f'href="{link.replace("&", "&amp;")}"' in email.html
