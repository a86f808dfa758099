"""System (BR-007): `<id>.<databaseId>.<memberId>` -> {id, databaseId, memberId}."""

from __future__ import annotations

import pytest

from demand_assets.records import Archivable, Rejected
from demand_assets.records.errors import RecordError
from demand_assets.records.system import system_from_user_id
from demand_assets_tests.builders import change, decode, valid_item

MALFORMED = ["a.b", "a.b.c.d", "a..c", ".b.c", "a.b.", "..", "", "abc", "a.b.c."]


@pytest.mark.parametrize("event_name", ["INSERT", "MODIFY", "REMOVE"])
def test_valid(event_name):
    result = decode(change(event_name, valid_item("demand", systemUserId="12.db-3.m_4")))
    assert type(result) is Archivable, result
    assert result.record["system"] == {"id": "12", "databaseId": "db-3", "memberId": "m_4"}
    assert result.record["systemUserId"] == "12.db-3.m_4"


def test_absent():
    result = decode(change("INSERT", valid_item("demand")))
    assert type(result) is Archivable
    assert result.record["system"] is None
    assert result.record["systemUserId"] is None


def test_null():
    result = decode(change("INSERT", valid_item("demand", systemUserId=None)))
    assert type(result) is Archivable
    assert result.record["system"] is None


@pytest.mark.parametrize("value", MALFORMED)
@pytest.mark.parametrize("event_name", ["INSERT", "REMOVE"])
def test_malformed_is_rejected(value, event_name):
    result = decode(change(event_name, valid_item("demand", systemUserId=value)))
    assert type(result) is Rejected, result
    image = "OldImage" if event_name == "REMOVE" else "NewImage"
    assert result.message.startswith(f"demand record: dynamodb.{image}.systemUserId: ")
    assert "<id>.<databaseId>.<memberId>" in result.message
    assert result.record_type == "demand"


def test_not_a_string_is_rejected():
    result = decode(change("INSERT", valid_item("demand", systemUserId=123)))
    assert type(result) is Rejected
    assert "dynamodb.NewImage.systemUserId" in result.message


def test_directly():
    assert system_from_user_id("a.b.c") == {"id": "a", "databaseId": "b", "memberId": "c"}
    assert system_from_user_id(None) is None


@pytest.mark.parametrize("value", MALFORMED)
def test_directly_malformed(value):
    with pytest.raises(RecordError) as info:
        system_from_user_id(value)
    assert info.value.path == "systemUserId"
    assert repr(value) in info.value.problem
