"""The family: users (parents), their groups, recipients, memberships and updates."""

from __future__ import annotations

from peewee import BooleanField, CharField, ForeignKeyField, JSONField, TextField

from tribe_shared.models.base import BaseModel, UTCDateTimeField, utcnow


class User(BaseModel):
    """A Tribe user (a parent), known by the ``sub`` of their token."""

    email = CharField(null=True)
    created_at = UTCDateTimeField(default=utcnow)

    class Meta:
        table_name = "users"


class Group(BaseModel):
    owner = ForeignKeyField(User, backref="groups", on_delete="CASCADE")
    name = CharField(max_length=200)
    #: The family the group hears from, as its update and digest emails name it ("The Smiths":
    #: from "The Smiths on Tribe"); None: the sender's own name.
    family_name = CharField(max_length=100, null=True)
    created_at = UTCDateTimeField(default=utcnow)

    class Meta:
        table_name = "groups"


class Recipient(BaseModel):
    owner = ForeignKeyField(User, backref="recipients", on_delete="CASCADE")
    name = CharField(max_length=200)
    email = CharField(max_length=320, null=True)
    phone = CharField(max_length=32, null=True)
    relationship = CharField(max_length=100, null=True)
    muted_until = UTCDateTimeField(null=True)
    created_at = UTCDateTimeField(default=utcnow)

    class Meta:
        table_name = "recipients"


class GroupMembership(BaseModel):
    group = ForeignKeyField(Group, backref="memberships", on_delete="CASCADE")
    recipient = ForeignKeyField(Recipient, backref="memberships", on_delete="CASCADE")
    created_at = UTCDateTimeField(default=utcnow)
    #: The channels (:class:`~tribe_shared.contract.DeliveryMethod`) the recipient hears from
    #: the group on, each its own job (migration 0012); None: email alone.
    channels = JSONField(null=True)

    class Meta:
        table_name = "group_memberships"
        indexes = ((("group", "recipient"), True),)


class Update(BaseModel):
    """A memory a parent posted to a group: a photo, a milestone, a text, a video."""

    owner = ForeignKeyField(User, backref="updates", on_delete="CASCADE")
    group = ForeignKeyField(Group, backref="updates", on_delete="CASCADE")
    content_type = CharField(max_length=20)
    title = CharField(max_length=300, null=True)
    body = TextField(default="")
    media_urls = JSONField(default=list)
    created_at = UTCDateTimeField(default=utcnow)

    class Meta:
        table_name = "updates"
        indexes = ((("group", "created_at"), False),)


# --- Content (issue #18 items 5-7): columns of migration 0013_content -------------------------
# Added here, in their own section, rather than in the classes above: a recipient's language
# and a group's opt-in to AI summaries.

#: The recipient's locale (``es``, ``es-MX``): the language of their emails (English when we do
#: not write theirs) and how their dates are written. None: English.
Recipient._meta.add_field("locale", CharField(max_length=35, null=True))
#: The group asked for an AI-written summary at the top of its digests (off by default).
Group._meta.add_field("ai_summary", BooleanField(default=False))
