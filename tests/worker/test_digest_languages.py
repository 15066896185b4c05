"""A digest in its recipient's language: Spanish words, and dates and times written for the
recipient's locale in the schedule's timezone (Babel)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.support.digests import post_update, schedule_for, tick
from tests.support.family import family
from tests.support.mail import content_of
from tests.support.waiting import drain
from tribe_shared.models import Recipient

#: The schedule began on Tuesday 1 December 2026, 12:00 UTC (06:00 in Mexico City).
BEGAN = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
#: An update posted on Thursday 3 December, 15:30 UTC: 09:30 in Mexico City.
POSTED = datetime(2026, 12, 3, 15, 30, tzinfo=UTC)
DUE = datetime(2026, 12, 4, 15, 0, tzinfo=UTC)


@pytest.fixture
def fam(db_url):
    return family(email="abuela@example.com", name="Abuela")


def build(fam, stub_broker, stub_worker, sendgrid, locale):
    Recipient.update(locale=locale).where(Recipient.id == fam.recipient.id).execute()
    schedule = schedule_for(fam, BEGAN, timezone="America/Mexico_City")
    post_update(fam, POSTED, title="Primeros pasos", content_type="milestone")
    post_update(fam, POSTED + timedelta(hours=1), title="El parque", content_type="photo")
    tick(schedule, stub_broker, DUE)
    drain(stub_broker, stub_worker)
    (request,) = sendgrid.requests
    return request


def test_a_spanish_recipient_gets_the_digest_in_spanish_with_local_dates(
    fam, stub_broker, stub_worker, sendgrid
):
    request = build(fam, stub_broker, stub_worker, sendgrid, "es-MX")

    assert request.body["subject"] == "Tu resumen diario de Grandparents: 2 novedades"
    text = content_of(request, "text/plain")
    # The window began on Tuesday 1 December, in Mexico City, written in Spanish
    assert "2 novedades desde el martes, 1 de diciembre de 2026" in text
    # Each update's time in Mexico City, as Mexican Spanish writes it, and its kind in Spanish
    assert "jue 3 de dic, 9:30\u202fa.m. - hito" in text
    assert "10:30\u202fa.m. - foto" in text
    assert "Recibes este correo" in text
    html = content_of(request, "text/html")
    assert '<html lang="es">' in html and "hito" in html


def test_an_english_recipient_gets_english_dates_in_the_schedules_timezone(
    fam, stub_broker, stub_worker, sendgrid
):
    request = build(fam, stub_broker, stub_worker, sendgrid, None)

    assert request.body["subject"] == "Your daily digest from Grandparents: 2 updates"
    text = content_of(request, "text/plain")
    assert "2 updates since Tuesday, December 1, 2026" in text
    assert "Thu, Dec 3, 9:30\u202fAM - milestone" in text


def test_a_spanish_spain_recipient_gets_spains_way_of_writing_times(
    fam, stub_broker, stub_worker, sendgrid
):
    request = build(fam, stub_broker, stub_worker, sendgrid, "es")

    assert "jue, 3 dic, 9:30 - hito" in content_of(request, "text/plain")
