"""A table item as a change record: how a snapshot of the table enters the archive.

A bootstrap scans the DynamoDB table and turns every item into the change record that the
stream would carry for its insertion (SPEC section 1), so that the same rules decode it and
the same landing, rebuild and checks apply:

    {"eventID": <deterministic>, "eventName": "INSERT", "tableName", "awsRegion",
     "userIdentity": {"type": "Service", "principalId": "demand-assets/table-snapshot"},
     "dynamodb": {"ApproximateCreationDateTime": <as_of, epoch ms>, "Keys", "NewImage",
                  "SizeBytes"}, "eventSource": "aws:dynamodb", ...}

The change time is the snapshot's `as_of` (SPEC section 2: the change time replaces "now"), and
the eventID is derived from the table, the item's key and `as_of`: a snapshot taken again at the
same `as_of` (a retried or re-executed run) gives the same changes byte for byte, which the
archive holds once. Pure: no AWS in here.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence

import orjson

SNAPSHOT_EVENT_NAME = "INSERT"
SNAPSHOT_IDENTITY = {"type": "Service", "principalId": "demand-assets/table-snapshot"}


def stream_value(value: dict) -> dict:
    """One attribute value as the boto3 client returns it (binary as bytes) in the JSON form
    the stream carries (binary as base64 text)."""
    (tag, inner), *rest = value.items()
    if rest:
        raise ValueError(f"an attribute value has one type, got {sorted(value)}")
    if tag == "B":
        return {"B": _b64(inner)}
    if tag == "BS":
        return {"BS": [_b64(v) for v in inner]}
    if tag == "M":
        return {"M": stream_image(inner)}
    if tag == "L":
        return {"L": [stream_value(v) for v in inner]}
    return {tag: inner}


def stream_image(item: dict) -> dict:
    return {name: stream_value(value) for name, value in item.items()}


def item_key(image: dict, key_names: Sequence[str]) -> dict:
    """The table key attributes of an item (attribute-value form)."""
    missing = [name for name in key_names if name not in image]
    if missing:
        raise ValueError(f"item without its key attribute(s) {missing}")
    return {name: image[name] for name in key_names}


def snapshot_event_id(table: str, key: dict, as_of_ms: int) -> str:
    """32 hex digits, a function of the table, the item's key and the snapshot time only."""
    canonical = orjson.dumps(
        {"table": table, "key": key, "asOf": as_of_ms}, option=orjson.OPT_SORT_KEYS
    )
    return hashlib.sha256(canonical).hexdigest()[:32]


def snapshot_change(
    item: dict, key_names: Sequence[str], *, table: str, as_of_ms: int, region: str | None
) -> bytes:
    """The change record (JSON bytes) of one scanned item, as of `as_of_ms` (epoch ms)."""
    image = stream_image(item)
    key = item_key(image, key_names)
    size = len(orjson.dumps(key)) + len(orjson.dumps(image))
    return orjson.dumps(
        {
            "awsRegion": region,
            "eventID": snapshot_event_id(table, key, as_of_ms),
            "eventName": SNAPSHOT_EVENT_NAME,
            "userIdentity": SNAPSHOT_IDENTITY,
            "recordFormat": "application/json",
            "tableName": table,
            "dynamodb": {
                "ApproximateCreationDateTime": as_of_ms,
                "Keys": key,
                "NewImage": image,
                "SizeBytes": size,
            },
            "eventSource": "aws:dynamodb",
        }
    )


def _b64(value: bytes | str) -> str:
    if isinstance(value, str):
        return value  # already the JSON form
    return base64.b64encode(bytes(value)).decode("ascii")
