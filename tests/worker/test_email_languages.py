"""Update and ad-hoc emails in their recipient's language."""

from __future__ import annotations

from tests.support.family import family, notification_job
from tests.support.jobs import email_job
from tests.support.mail import the_one_email
from tribe_shared.contract import Actor


def test_an_update_email_to_a_spanish_recipient_is_in_spanish(
    db_url, worker_app, stub_broker, stub_worker, sendgrid
):
    fam = family(email="abuela@example.com")
    fam.recipient.locale = "es"
    fam.recipient.save()
    job = notification_job(fam)

    worker_app.actors[Actor.DISPATCH_NOTIFICATION].send(str(job.id))
    subject, html, text = the_one_email(stub_broker, stub_worker, sendgrid)

    assert subject == "Noticias de Maya: First steps"
    assert "Recibes este correo" in text and '<html lang="es">' in html


def test_an_ad_hoc_email_takes_the_locale_it_was_sent_with(
    db_url, worker_app, stub_broker, stub_worker, sendgrid
):
    job = email_job(content={"type": "welcome", "templateData": {"name": "Abuela"}, "locale": "es"})

    worker_app.actors[Actor.SEND_EMAIL].send(str(job.id))
    subject, _, text = the_one_email(stub_broker, stub_worker, sendgrid)

    assert subject == "¡Te damos la bienvenida a Tribe, Abuela!"
    assert "Ya puedes seguir las novedades" in text


def test_a_spanish_recipient_hears_from_the_family_en_tribe(
    db_url, worker_app, stub_broker, stub_worker, sendgrid
):
    fam = family(email="abuela@example.com")
    fam.recipient.locale = "es"
    fam.recipient.save()
    fam.group.family_name = "Los Pérez"
    fam.group.save()

    worker_app.actors[Actor.DISPATCH_NOTIFICATION].send(str(notification_job(fam).id))
    the_one_email(stub_broker, stub_worker, sendgrid)

    (request,) = sendgrid.requests
    assert request.body["from"]["name"] == "Los Pérez en Tribe"
