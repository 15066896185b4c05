"""Schemathesis against /api/openapi.json: every operation answers as its document says.

Every check runs (server errors, status codes, content types, response schemas and headers,
positive data accepted, negative data refused, auth not ignored, unsupported methods...), on the
real app (SQLite, the StubBroker) with a valid token of an ordinary user who already has a group
and a recipient in it; the stateful run follows the links schemathesis infers from the document
(a POST's id to the GET, PATCH and DELETE of that id). Bounded and derandomized: the same
examples every run.
"""

from __future__ import annotations

import uuid

import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck
from schemathesis.config import SchemathesisConfig

from tests.support.family import user
from tests.support.webhooks import SendGridSigner
from tribe_api.app import create_app
from tribe_api.auth import mint_token
from tribe_shared.models import ALL_MODELS, Group, GroupMembership, Recipient
from tribe_shared.settings import Settings

SECRET = "tribe-jobs-fuzz-secret-" + "0" * 32
USER_ID = uuid.UUID("00000000-0000-4000-8000-00000000a11c")
#: The user's group and the recipient in it: bodies and filters draw these ids often, so that
#: notifications, digest schedules and filters reach past their 404.
GROUP_ID = uuid.UUID("00000000-0000-4000-8000-0000000000a1")
RECIPIENT_ID = uuid.UUID("00000000-0000-4000-8000-0000000000b1")
KNOWN_ID_PROBABILITY = 0.6
HEADERS = {"Authorization": f"Bearer {mint_token(SECRET, user_id=USER_ID)}"}
#: Examples per operation, and per stateful run: enough to find what a document hides, small
#: enough that the whole file runs in a couple of minutes.
MAX_EXAMPLES = 150
STATEFUL_EXAMPLES = 80
SEED = 20261128

FUZZ_SETTINGS = hypothesis.settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)


#: What schemathesis expects of a request the document allows (its default).
POSITIVE_EXPECTED = ["2xx", "3xx", "401", "403", "404", "409", "429", "5xx"]


#: Operations whose 422 depends on the stored rows, not on the request, so no document can say
#: in advance which valid body gets it (each is documented, with its reason, in the operation):
#: a notification's recipient without the address its method needs, not in the group, or an
#: update not posted there; a recipient's change that leaves no email address nor phone; a
#: schedule's change of frequency or delivery_day that does not fit the one kept; an ad-hoc email
#: a user sends to an address none of their recipients has; a recipient whose phone number its
#: country cannot have (phonenumbers' rules, not a pattern), or who is to get texts without one;
#: and on every accepting POST, an ``Idempotency-Key`` an earlier example already used with
#: another body.
STATEFUL_422 = (
    "POST /api/recipients",
    "POST /api/notifications",
    "POST /api/notifications/send-email",
    "POST /api/notifications/send-bulk-email",
    "POST /api/updates",
    "POST /api/digest-schedules",
    "PATCH /api/recipients/{recipient_id}",
    "PATCH /api/digest-schedules/{schedule_id}",
)


def _config() -> SchemathesisConfig:
    return SchemathesisConfig.from_dict(
        {
            "seed": SEED,
            "headers": HEADERS,
            "generation": {"deterministic": True, "max-examples": MAX_EXAMPLES},
            "dictionaries": {
                "groups": {"values": [str(GROUP_ID)]},
                "recipients": {"values": [str(RECIPIENT_ID)]},
            },
            "operations": [
                {
                    "include-name": name,
                    "checks": {
                        "positive_data_acceptance": {
                            "expected-statuses": [*POSITIVE_EXPECTED, "422"]
                        }
                    },
                }
                for name in STATEFUL_422
            ],
            "parameters": {
                f"{location}.{name}": {
                    "dictionary": f"{kind}s",
                    "probability": KNOWN_ID_PROBABILITY,
                }
                for location in ("body", "query", "path")
                for name, kind in (("group_id", "group"), ("recipient_id", "recipient"))
            },
        }
    )


def _seed_family() -> None:
    """The token's user with a group and a recipient in it, under the ids the bodies draw."""
    owner = user(USER_ID)
    group = Group.create(id=GROUP_ID, owner=owner.id, name="Grandparents")
    recipient = Recipient.create(
        id=RECIPIENT_ID, owner=owner.id, name="Nana", email="nana@example.com"
    )
    GroupMembership.create(id=uuid.uuid4(), group=group.id, recipient=recipient.id)


class CurrentApp:
    """The WSGI app the schema sends to: each test puts its own there, on its own database."""

    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        return self.app(environ, start_response)


# The document as the app serves it (public: no database needed), loaded once at collection.
# (``schemathesis.pytest.from_fixture`` would load it per test, but does not run on pytest 9.)
current = CurrentApp(create_app(Settings(app_env="test", jwt_secret=SECRET)))
schema = schemathesis.openapi.from_wsgi("/api/openapi.json", current, config=_config())


@pytest.fixture
def fuzz_app(sqlite_url, stub_broker):
    """The real app on a fresh SQLite database, with the token's user's group and recipient."""
    settings = Settings(
        app_env="test",
        database_url=sqlite_url,
        jwt_secret=SECRET,
        user_write_rate_per_minute=1_000_000,
        # The webhook verifies (and refuses) what it is sent, rather than answering 503.
        sendgrid_webhook_public_key=SendGridSigner().public_key,
        twilio_auth_token="fuzz-twilio-token",
    )
    documented = current.app
    current.app = create_app(settings, broker=stub_broker)
    _seed_family()
    yield current.app
    current.app = documented


#: The unsubscribe pages answer HTML (to people, from a link in an email), which the document
#: does not describe yet; tests/api and tests/browser cover them.
HTML_PAGES = r"^/api/unsubscribe/"


@schema.exclude(path_regex=HTML_PAGES).parametrize()
@FUZZ_SETTINGS
def test_every_operation_answers_as_documented(case, fuzz_app):
    case.call_and_validate(headers=HEADERS)


def test_linked_operations_answer_as_documented(fuzz_app):
    class FromTheSameStart(schema.exclude(path_regex=HTML_PAGES).as_state_machine()):
        """Each run of linked calls starts from the same database, as hypothesis needs to
        replay a run (a duplicate's 409 in one run and a 201 in the next is no flaw of ours)."""

        def setup(self) -> None:
            for model in reversed(ALL_MODELS):
                model.delete().execute()
            _seed_family()

    FromTheSameStart.run(
        settings=hypothesis.settings(
            FUZZ_SETTINGS, max_examples=STATEFUL_EXAMPLES, stateful_step_count=8
        )
    )
