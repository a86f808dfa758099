"""A scanned table item as a change record: stream format, the snapshot time as the change time,
deterministic eventIDs, and the same rules as any change."""

from __future__ import annotations

import base64

import orjson
import pytest

from demand_assets.records import Archivable, Skipped
from demand_assets.records.snapshot import (
    item_key,
    snapshot_change,
    snapshot_event_id,
    stream_image,
)
from demand_assets_tests.builders import decode, image, valid_item

AS_OF_MS = 1_795_392_000_123  # 2026-11-23T00:00:00.123Z
AS_OF = "2026-11-23T00:00:00.123Z"
KEYS = ("pk", "sk")


def snapshot(item: dict, as_of_ms: int = AS_OF_MS) -> bytes:
    return snapshot_change(
        image(item), KEYS, table="demand-capture", as_of_ms=as_of_ms, region="us-east-1"
    )


def test_an_item_becomes_an_insert_at_the_snapshot_time():
    item = valid_item("demand")
    change = orjson.loads(snapshot(item))

    assert change["eventName"] == "INSERT"
    assert change["eventSource"] == "aws:dynamodb" and change["tableName"] == "demand-capture"
    dynamodb = change["dynamodb"]
    assert dynamodb["ApproximateCreationDateTime"] == AS_OF_MS
    assert dynamodb["NewImage"] == image(item)
    assert dynamodb["Keys"] == image({"pk": item["pk"], "sk": item["sk"]})
    assert "OldImage" not in dynamodb and dynamodb["SizeBytes"] > 0

    result = decode(snapshot(item))
    assert type(result) is Archivable
    provenance = result.record["provenance"]
    assert provenance["eventName"] == "INSERT" and provenance["changeTime"] == AS_OF
    assert provenance["eventID"] == change["eventID"]


def test_the_snapshot_time_replaces_now_in_the_fall_backs():
    # An event without date.firstSeen or eventDate: its partition is the change time's date.
    result = decode(snapshot(valid_item("event")))
    assert result.partition_date == "2026-11-23"
    assert result.record["reference"]["timestamp"] == AS_OF


def test_event_ids_depend_on_table_key_and_snapshot_time_only():
    item = valid_item("sale")
    first = orjson.loads(snapshot(item))["eventID"]
    assert orjson.loads(snapshot(item))["eventID"] == first  # the same bytes again
    assert snapshot(item) == snapshot(item)
    modified = orjson.loads(snapshot({**item, "name": "changed"}))["eventID"]
    assert modified == first  # one item, one snapshot change
    assert orjson.loads(snapshot(item, AS_OF_MS + 1))["eventID"] != first
    other = orjson.loads(snapshot(valid_item("sale", sk="sale#s-2")))["eventID"]
    assert other != first
    key = image({"pk": item["pk"], "sk": item["sk"]})
    assert snapshot_event_id("another-table", key, AS_OF_MS) != first
    assert len(first) == 32 and int(first, 16) >= 0


def test_items_of_other_types_are_skipped_like_their_changes():
    result = decode(snapshot({"pk": "config#1", "sk": "config", "type": "config", "v": 1}))
    assert result == Skipped("config")


def test_binary_values_from_the_client_become_base64():
    raw = {
        "pk": {"S": "p"},
        "sk": {"S": "s"},
        "blob": {"B": b"\x00\xff"},
        "blobs": {"BS": [b"a", b"b"]},
        "nested": {"M": {"inner": {"L": [{"B": b"x"}, {"N": "1"}, {"NULL": True}]}}},
        "flag": {"BOOL": False},
        "names": {"SS": ["a"]},
    }
    converted = stream_image(raw)
    assert converted["blob"] == {"B": base64.b64encode(b"\x00\xff").decode()}
    assert converted["blobs"] == {"BS": ["YQ==", "Yg=="]}
    assert converted["nested"]["M"]["inner"]["L"][0] == {"B": "eA=="}
    assert converted["flag"] == {"BOOL": False} and converted["names"] == {"SS": ["a"]}
    orjson.dumps(converted)  # JSON all the way down


def test_an_item_without_its_key_is_refused():
    with pytest.raises(ValueError, match="key attribute"):
        item_key(image({"pk": "p"}), KEYS)
