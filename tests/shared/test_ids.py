"""Job ids made in bulk: distinct random UUIDs of version 4, as ``uuid.uuid4()`` makes them."""

from __future__ import annotations

import uuid

from tribe_shared.models import new_ids


def test_ids_made_in_bulk_are_distinct_version_4_uuids():
    ids = new_ids(1000)

    assert len(set(ids)) == 1000
    assert {i.version for i in ids} == {4}
    assert {i.variant for i in ids} == {uuid.RFC_4122}


def test_no_ids_asked_none_made():
    assert new_ids(0) == []
