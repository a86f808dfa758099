"""Builders for stream records in tests: plain values -> DynamoDB attribute values -> changes.

Independent of `demand_assets.traffic` on purpose: the tests of the record rules should not
depend on the traffic generator they are used to check.
"""

from __future__ import annotations

import base64
import math
from datetime import date

import orjson

from demand_assets.records import Archivable, PartitionWindow, Rejected, decode_change

# 2024-01-15T10:20:30.123Z
CHANGE_TIME_MS = 1_705_314_030_123
CHANGE_TIME = "2024-01-15T10:20:30.123Z"
SHARD_ID = "shardId-000000000001"
SEQUENCE_NUMBER = "49590338271490256608559692538361571095921575989136588898"
WINDOW = PartitionWindow(date(2020, 1, 1), date(2030, 12, 31))
PII = {"phoneNumber": "+15551234567", "email": "fan@example.com", "messageBody": "Hi Ann, go!"}


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING = _Missing()  # an override that removes the attribute


def attribute(value: object) -> dict:
    """A plain Python value as a DynamoDB attribute value (`{"S": ...}`, `{"M": ...}`, ...).

    Sets become SS / NS / BS by their members' type; an empty set is not representable.
    """
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, int):
        return {"N": str(value)}
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"DynamoDB has no {value}")
        return {"N": repr(value)}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, bytes):
        return {"B": base64.b64encode(value).decode()}
    if isinstance(value, list | tuple):
        return {"L": [attribute(v) for v in value]}
    if isinstance(value, dict):
        return {"M": {k: attribute(v) for k, v in value.items()}}
    if isinstance(value, set | frozenset):
        members = list(value)
        if not members:
            raise ValueError("DynamoDB sets are never empty")
        if all(isinstance(v, str) for v in members):
            return {"SS": members}
        if all(isinstance(v, bytes) for v in members):
            return {"BS": [base64.b64encode(v).decode() for v in members]}
        if all(isinstance(v, int | float) and not isinstance(v, bool) for v in members):
            return {"NS": [attribute(v)["N"] for v in members]}
    raise TypeError(f"no attribute value for {value!r}")


def image(item: dict) -> dict:
    """A plain item as an image: `{"name": <attribute value>, ...}`."""
    return {name: attribute(value) for name, value in item.items()}


def change_document(
    event_name: object,
    item: dict | None,
    *,
    change_time_ms: object = CHANGE_TIME_MS,
    event_id: object = "evt-0001",
    old_item: dict | None = None,
    precision: str | None = None,
) -> dict:
    """A Kinesis-for-DynamoDB change record as a dict.

    INSERT and MODIFY carry `item` as NewImage (and `old_item`, if given, as OldImage); REMOVE
    (and any other event name) carries `item` as OldImage. `item=None` leaves the image out.
    """
    dynamodb: dict = {"ApproximateCreationDateTime": change_time_ms, "SizeBytes": 123}
    if precision is not None:
        dynamodb["ApproximateCreationDateTimePrecision"] = precision
    if event_name in ("INSERT", "MODIFY"):
        if item is not None:
            dynamodb["NewImage"] = image(item)
        if old_item is not None:
            dynamodb["OldImage"] = image(old_item)
    else:
        if item is not None:
            dynamodb["OldImage"] = image(item)
        if old_item is not None:
            raise ValueError("old_item only goes with INSERT or MODIFY")
    if item is not None:
        keys = {k: item[k] for k in ("pk", "sk") if k in item}
        dynamodb["Keys"] = image(keys)
    document = {
        "awsRegion": "us-east-1",
        "eventID": event_id,
        "eventName": event_name,
        "userIdentity": None,
        "recordFormat": "application/json",
        "tableName": "demand-capture",
        "dynamodb": dynamodb,
        "eventSource": "aws:dynamodb",
    }
    if event_id is MISSING:
        del document["eventID"]
    return document


def change(
    event_name: object,
    item: dict | None,
    *,
    change_time_ms: object = CHANGE_TIME_MS,
    event_id: object = "evt-0001",
    old_item: dict | None = None,
    precision: str | None = None,
) -> bytes:
    """The change record as the bytes of one Kinesis record."""
    return orjson.dumps(
        change_document(
            event_name,
            item,
            change_time_ms=change_time_ms,
            event_id=event_id,
            old_item=old_item,
            precision=precision,
        )
    )


_MINIMAL = {
    "demand": lambda: {
        "pk": "fan#f-1",
        "sk": "demand#e-1#s-1",
        "type": "demand",
        "fanId": "f-1",
        "eventId": "e-1",
        "saleId": "s-1",
        "requestedDateTime": "2024-01-15T09:00:00.000Z",
        "date": {"requested": "2024-01-15T09:00:00.000Z"},
    },
    "notification": lambda: {
        "pk": "fan#f-1",
        "sk": "notification#e-1#s-1",
        "type": "notification",
        "fanId": "f-1",
        "eventId": "e-1",
        "saleId": "s-1",
        "date": {"created": "2024-01-15T09:30:00.000Z"},
    },
    "event": lambda: {"pk": "event#e-1", "sk": "event", "type": "event", "id": "e-1"},
    "sale": lambda: {
        "pk": "event#e-1",
        "sk": "sale#s-1",
        "type": "sale",
        "id": "s-1",
        "eventId": "e-1",
        "saleStartDateTime": "2024-03-01T15:00:00.000Z",
    },
}


def valid_item(record_type: str, **overrides: object) -> dict:
    """A minimal valid item of a record type (plain values); `name=MISSING` drops `name`."""
    item = _MINIMAL[record_type]()
    for name, value in overrides.items():
        if value is MISSING:
            item.pop(name, None)
        else:
            item[name] = value
    return item


def decode(data: bytes, window: PartitionWindow = WINDOW):
    """`decode_change` with the test shard, sequence number and window."""
    return decode_change(data, SHARD_ID, SEQUENCE_NUMBER, window)


def archived(data: bytes) -> Archivable:
    result = decode(data)
    assert type(result) is Archivable, result
    return result


def rejected(data: bytes) -> Rejected:
    result = decode(data)
    assert type(result) is Rejected, result
    return result


_FULL = {
    "demand": {
        "artistId": "a-1",
        "eventName": "The Band",
        "saleName": "Presale",
        "artistName": "Band",
        "phoneNumber": "+15551234567",
        "email": "fan@example.com",
        "contactMethod": "sms",
        "demandType": "remind",
        "systemUserId": "u1.db2.m3",
        "date": {
            "requested": "2024-01-15T09:00:00.000Z",
            "triggered": "2024-01-15T09:10:00.000Z",
            "notified": "2024-01-15T09:20:00.000Z",
        },
    },
    "notification": {
        "saleName": "Presale",
        "messageBody": "Hi Ann, tickets: https://t.example/x?a=1&b=2 ✓",
        "phoneNumber": "+15551234567",
        "email": "fan@example.com",
        "date": {"created": "2024-01-15T09:30:00.000Z", "updated": "2024-01-15T09:31:00Z"},
    },
    "event": {
        "name": "Ünïcødé Fest",
        "eventDate": {
            "start": {"dateTime": "2024-06-01T19:00:00-04:00", "localDate": "2024-06-01"},
            "end": None,
        },
        "date": {"firstSeen": "2024-01-10T00:00:00Z", "updated": "2024-01-12T00:00:00Z"},
    },
    "sale": {"name": "General on-sale", "date": {"deleted": None}},
}


def sample_records(record_type: str) -> list[dict]:
    """Archivable records of a type through the real pipeline: minimal, full, modified, deleted."""
    items = [
        ("INSERT", valid_item(record_type)),
        ("INSERT", valid_item(record_type, **_FULL[record_type])),
        ("MODIFY", valid_item(record_type, **_FULL[record_type])),
        ("REMOVE", valid_item(record_type, **_FULL[record_type])),
        ("REMOVE", valid_item(record_type)),
    ]
    records = []
    for i, (event_name, item) in enumerate(items):
        result = decode(change(event_name, item, event_id=f"evt-{i}"))
        if not hasattr(result, "record"):
            raise AssertionError(f"sample {record_type} {event_name} not archivable: {result}")
        records.append(result.record)
    return records


def create_keyed_table(client, name: str, *, range_key_first: bool = False) -> None:
    """A pay-per-request DynamoDB table keyed like the demand table: `pk` (hash), `sk` (range).
    `range_key_first` lists the range key first in the schema, as DescribeTable may."""
    key_schema = [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    client.create_table(
        TableName=name,
        KeySchema=key_schema[::-1] if range_key_first else key_schema,
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
