"""The development provider: one ``.eml`` file per addressee, readable by any mail tool."""

from __future__ import annotations

import uuid
from email import policy
from email.parser import BytesParser

from tribe_worker.emails.providers import Addressee, FileEmailProvider, RenderedEmail, Sender

EMAIL = RenderedEmail(
    subject="Lily's first steps", html="<p>She walked! &amp; ran</p>", text="She walked! & ran"
)
SENDER = Sender("no-reply@tribe.local")


def test_file_provider_writes_one_parseable_eml_per_addressee(tmp_path):
    outbox = tmp_path / "outbox"
    to = [Addressee("nana@example.com", uuid.uuid4()), Addressee("papa@example.com", uuid.uuid4())]

    message_id = FileEmailProvider(outbox).send(EMAIL, SENDER, to)

    assert message_id
    assert sorted(p.name for p in outbox.iterdir()) == sorted(f"{a.job_id}.eml" for a in to)
    for addressee in to:
        with open(outbox / f"{addressee.job_id}.eml", "rb") as file:
            message = BytesParser(policy=policy.default).parse(file)
        assert message["To"] == addressee.email
        assert message["From"] == SENDER.email
        assert message["Subject"] == EMAIL.subject
        assert message["X-Tribe-Job-Id"] == str(addressee.job_id)
        assert message.get_content_type() == "multipart/alternative"
        assert message.get_body(("plain",)).get_content().strip() == EMAIL.text
        assert message.get_body(("html",)).get_content().strip() == EMAIL.html


def test_file_provider_names_itself_for_the_delivery_log(tmp_path):
    assert FileEmailProvider(tmp_path).name == "file"
