"""Kinesis records of DynamoDB changes as the stream carries them (SPEC section 1): the
change record JSON, its times and keys, and `GeneratedChange`, one record as a producer puts it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime

import orjson
from orjson import Fragment

from demand_assets.traffic.marshalling import marshal, marshal_item

TABLE_NAME = "demand-capture"
AWS_REGION = "us-east-1"

# The user identity DynamoDB puts on a REMOVE done by Time To Live.
TTL_USER_IDENTITY = {"type": "Service", "principalId": "dynamodb.amazonaws.com"}

SECOND_MS = 1_000
MINUTE_MS = 60 * SECOND_MS
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS


@dataclass(frozen=True)
class GeneratedChange:
    """One Kinesis record as a producer would put it."""

    data: bytes  # the Kinesis record payload (JSON bytes, or garbage for malformed)
    partition_key: str  # what a producer would use as Kinesis PartitionKey (the item's pk)
    kind: str  # "valid", "other_type", or "malformed:<label>"
    record_type: str | None  # "demand" | "notification" | "event" | "sale" | other | None


# --------------------------------------------------------------------------------------------
# Stream records
# --------------------------------------------------------------------------------------------


def iso_ms(ms: int) -> str:
    """Epoch milliseconds as `2026-03-01T12:34:56.789Z`."""
    day, rest = divmod(int(ms), DAY_MS)
    prefix = _DAY_PREFIX.get(day)
    if prefix is None:
        prefix = _DAY_PREFIX[day] = date.fromordinal(_EPOCH_ORDINAL + day).isoformat() + "T"
    hours, rest = divmod(rest, HOUR_MS)
    minutes, rest = divmod(rest, MINUTE_MS)
    seconds, millis = divmod(rest, SECOND_MS)
    return f"{prefix}{_TWO[hours]}:{_TWO[minutes]}:{_TWO[seconds]}.{_THREE[millis]}Z"


_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_DAY_PREFIX: dict[int, str] = {}  # days since the epoch -> "YYYY-MM-DDT"
_TWO = [f"{i:02d}" for i in range(100)]
_THREE = [f"{i:03d}" for i in range(1000)]


def epoch_ms(moment: datetime) -> int:
    """An aware datetime (naive means UTC) as epoch milliseconds."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return round(moment.timestamp() * 1000)


def table_keys(item: Mapping) -> dict:
    """The table keys of a plain item: its `pk` / `sk`, or the ones the generator would use."""
    if "pk" in item and "sk" in item:
        return {"pk": item["pk"], "sk": item["sk"]}
    pk, sk = _default_keys(item)
    return {"pk": pk, "sk": sk}


def _default_keys(item: Mapping) -> tuple[str, str]:
    kind = item.get("type")
    if kind == "demand":
        return f"FAN#{item.get('fanId')}", f"DEMAND#{item.get('eventId')}#{item.get('saleId')}"
    if kind == "notification":
        return (
            f"FAN#{item.get('fanId')}",
            f"NOTIFICATION#{item.get('eventId')}#{item.get('saleId')}",
        )
    if kind == "event":
        return f"EVENT#{item.get('id')}", "EVENT"
    if kind == "sale":
        return f"EVENT#{item.get('eventId')}", f"SALE#{item.get('id')}"
    return f"{str(kind).upper()}#{item.get('id', item.get('fanId', ''))}", str(kind).upper()


def change_record(
    event_name: str,
    item: dict,
    *,
    change_time_ms: int,
    event_id: str,
    old_item: dict | None = None,
    keys: dict | None = None,
) -> bytes:
    """One stream record (JSON bytes) from plain Python items, for hand-written test cases.

    INSERT / MODIFY: `item` is the NewImage, `old_item` (if given) the OldImage.
    REMOVE: the OldImage is `old_item` if given, else `item`; there is no NewImage.
    Any other `event_name` is written as given, with `item` as the NewImage.
    `keys` are plain values (`{"pk": "...", "sk": "..."}`); by default the item's `pk` / `sk`
    (see `table_keys`).
    """
    if event_name == "REMOVE":
        old = item if old_item is None else old_item
        new_image = None
        old_image = _image_json(old)
        key_source = old
    else:
        new_image = _image_json(item)
        old_image = None if old_item is None else _image_json(old_item)
        key_source = item
    key_values = table_keys(key_source) if keys is None else keys
    return _record(
        event_name, _image_json(key_values), new_image, old_image, int(change_time_ms), event_id
    )


def _image_json(item: Mapping) -> bytes:
    return _compact(orjson.dumps(marshal_item(item)))


def _fast_image_json(item: dict) -> bytes:
    """`_image_json` for the generator's own items (string names, mostly string values)."""
    return _compact(
        orjson.dumps(
            {
                k: {"S": v}
                if type(v) is str
                else {
                    "M": {dk: {"S": dv} if type(dv) is str else marshal(dv) for dk, dv in v.items()}
                }
                if type(v) is dict
                else marshal(v)
                for k, v in item.items()
            }
        )
    )


def _compact(data: bytes) -> bytes:
    """A copy of exactly its length: orjson's bytes keep a buffer of at least 4 KiB, which adds
    up when 100,000 records (and the images of the live items) are kept in memory."""
    return memoryview(data).tobytes()


def _record(
    event_name: str,
    keys: bytes,
    new_image: bytes | None,
    old_image: bytes | None,
    change_time_ms: int,
    event_id: str,
    user_identity: dict | None = None,
) -> bytes:
    """The stream record as JSON bytes; keys and images are given as serialised JSON.

    SizeBytes approximates the size of keys and images by the length of their JSON.
    """
    dynamodb: dict = {"ApproximateCreationDateTime": change_time_ms, "Keys": Fragment(keys)}
    size = len(keys)
    if new_image is not None:
        dynamodb["NewImage"] = Fragment(new_image)
        size += len(new_image)
    if old_image is not None:
        dynamodb["OldImage"] = Fragment(old_image)
        size += len(old_image)
    dynamodb["SizeBytes"] = size
    record = orjson.dumps(
        {
            "awsRegion": AWS_REGION,
            "eventID": event_id,
            "eventName": event_name,
            "userIdentity": user_identity,
            "recordFormat": "application/json",
            "tableName": TABLE_NAME,
            "dynamodb": dynamodb,
            "eventSource": "aws:dynamodb",
        }
    )
    return _compact(record)
