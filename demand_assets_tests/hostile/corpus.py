"""A corpus of hostile stream records: what a broken producer, a fuzzer or an attacker could put
on the stream. Each entry says where it must end: `errors` (with a message containing `says`),
`skipped` (counted under the item type `says`), or `archived` (intact, `says` is its eventID).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import orjson

from demand_assets_tests.builders import change_document, valid_item

KINESIS_MAX_RECORD = 1_048_576  # data + partition key


@dataclass(frozen=True)
class Hostile:
    name: str
    data: bytes
    fate: str  # "errors" | "skipped" | "archived"
    says: str


def _doc(record_type: str = "demand", event: str = "INSERT", eid: str = "", **overrides) -> dict:
    return change_document(event, valid_item(record_type, **overrides), event_id=eid or "x")


def _bytes(document: dict) -> bytes:
    return orjson.dumps(document)


def _with_attribute(eid: str, name: str, value: dict, record_type: str = "demand") -> bytes:
    document = _doc(record_type, eid=eid)
    document["dynamodb"]["NewImage"][name] = value
    return _bytes(document)


def _nested(levels: int) -> bytes:
    return b'{"M":{"x":' * levels + b'{"S":"bottom"}' + b"}}" * levels


def _with_raw_attribute(eid: str, name: str, raw: bytes) -> bytes:
    text = _bytes(_doc(eid=eid))
    return text.replace(b'"NewImage":{', b'"NewImage":{"' + name.encode() + b'":' + raw + b",", 1)


def _padded(eid: str, field: str, total: int, record_type: str = "demand") -> bytes:
    """A valid change whose `field` is long enough to make the record `total` bytes."""
    bare = len(_bytes(_doc(record_type, eid=eid, **{field: ""})))
    return _bytes(_doc(record_type, eid=eid, **{field: "x" * (total - bare)}))


def corpus(first: date, last: date, partition_key_bytes: int) -> list[Hostile]:
    """The corpus, for partitions `first`..`last` (the records at their edges need them)."""
    biggest = KINESIS_MAX_RECORD - partition_key_bytes
    valid = _bytes(_doc(eid="h-valid"))
    before = (first - timedelta(days=1)).isoformat()
    after = (last + timedelta(days=1)).isoformat()
    return [
        # -- not a change record at all
        Hostile("not JSON: plain text", b"hello, I am not JSON", "errors", "not a JSON document"),
        Hostile("not JSON: truncated", valid[: len(valid) // 2], "errors", "not a JSON document"),
        Hostile("empty payload", b"", "errors", "zero-length"),
        Hostile(
            "JSON array of changes",
            b"[" + valid + b"," + valid + b"]",
            "errors",
            "not a JSON object",
        ),
        Hostile("JSON null", b"null", "errors", "not a JSON object"),
        Hostile("JSON string", b'"INSERT"', "errors", "not a JSON object"),
        Hostile(
            "1 MiB of binary garbage",
            bytes(range(256)) * (biggest // 256),
            "errors",
            "not a JSON document",
        ),
        Hostile("UTF-8 BOM before the JSON", b"\xef\xbb\xbf" + valid, "errors", "BOM"),
        Hostile(
            "non-UTF-8 bytes in a string",
            valid.replace(b'"f-1"', b'"\xff\xfe"'),
            "errors",
            "not valid UTF-8",
        ),
        Hostile(
            "lone UTF-16 surrogate escape",
            valid.replace(b'"f-1"', b'"\\ud800"'),
            "errors",
            "surrogate",
        ),
        Hostile(
            "JSON nested 5,000 deep", b'{"a":' * 5000 + b"1" + b"}" * 5000, "errors", "depth limit"
        ),
        Hostile(
            "NaN literal as change time",
            _bytes(_doc(eid="h-nan")).replace(b"1705314030123", b"NaN"),
            "errors",
            "not a JSON document",
        ),
        Hostile(
            "1e400 as change time",
            _bytes(_doc(eid="h-inf")).replace(b"1705314030123", b"1e400"),
            "errors",
            "infinity",
        ),
        # -- a change record, broken
        Hostile(
            "eventName lower case",
            _bytes(_doc(event="insert", eid="h-lower")),
            "errors",
            "eventName",
        ),
        Hostile(
            "eventID missing", _bytes({**_doc(eid="h-x"), "eventID": None}), "errors", "eventID"
        ),
        Hostile(
            "dynamodb is a list",
            _bytes({**_doc(eid="h-list"), "dynamodb": [1]}),
            "errors",
            "dynamodb",
        ),
        Hostile(
            "INSERT without NewImage",
            _bytes(change_document("INSERT", None, event_id="h-ni")),
            "errors",
            "dynamodb.NewImage: missing",
        ),
        Hostile(
            "REMOVE without OldImage",
            _bytes(change_document("REMOVE", None, event_id="h-no")),
            "errors",
            "dynamodb.OldImage: missing",
        ),
        Hostile(
            "change time 1e23 ms",
            _bytes(_doc(eid="h-big")).replace(b"1705314030123", b"100000000000000000000000"),
            "errors",
            "out of range",
        ),
        Hostile(
            "change time in the year 9999 (event falls back to it)",
            _bytes(
                change_document(
                    "INSERT",
                    valid_item("event"),
                    event_id="h-9999",
                    change_time_ms=253_402_300_799_999,
                )
            ),
            "errors",
            "9999-12-31 is outside the partitions",
        ),
        Hostile(
            "change time before 1970",
            _bytes(
                change_document("INSERT", valid_item("event"), event_id="h-neg", change_time_ms=-1)
            ),
            "errors",
            "outside the partitions",
        ),
        # -- attribute values of the wrong type
        Hostile(
            "fanId as N",
            _with_attribute("h-n", "fanId", {"N": "5"}),
            "errors",
            "fanId: expected a string (S), got N",
        ),
        Hostile(
            "fanId as N NaN",
            _with_attribute("h-nan2", "fanId", {"N": "NaN"}),
            "errors",
            "fanId: expected a string (S)",
        ),
        Hostile(
            "fanId S holding a number",
            _with_attribute("h-s5", "fanId", {"S": 5}),
            "errors",
            "fanId",
        ),
        Hostile(
            "two type tags",
            _with_attribute("h-2", "fanId", {"S": "a", "N": "1"}),
            "errors",
            "malformed attribute value",
        ),
        Hostile(
            "isDeleted BOOL 'yes'",
            _with_attribute("h-b", "isDeleted", {"BOOL": "yes"}),
            "errors",
            "isDeleted: malformed BOOL",
        ),
        Hostile(
            "date as a list",
            _with_attribute("h-l", "date", {"L": []}),
            "errors",
            "date: expected a map (M)",
        ),
        Hostile(
            "date nested 400 deep",
            _bytes(_doc(eid="h-deep")).replace(
                b'"date":{"M":{', b'"date":{"M":{"triggered":' + _nested(400) + b",", 1
            ),
            "errors",
            "date.triggered: expected a string (S)",
        ),
        # -- dates
        Hostile(
            "date.requested in the year 9999",
            _bytes(_doc(eid="h-y9999", date={"requested": "9999-12-31T23:59:59.999Z"})),
            "errors",
            "9999-12-31 is outside the partitions",
        ),
        Hostile(
            "date.requested in the year +10000",
            _bytes(_doc(eid="h-y10000", date={"requested": "+10000-01-01T00:00:00Z"})),
            "errors",
            "not an ISO-8601 timestamp",
        ),
        Hostile(
            "date.requested the day before the first partition",
            _bytes(_doc(eid="h-before", date={"requested": before})),
            "errors",
            f"{before} is outside the partitions",
        ),
        Hostile(
            "date.requested the day after the last partition",
            _bytes(_doc(eid="h-after", date={"requested": after})),
            "errors",
            f"{after} is outside the partitions",
        ),
        Hostile(
            "sale start 'tomorrow'",
            _bytes(_doc("sale", eid="h-sale", saleStartDateTime="tomorrow")),
            "errors",
            "saleStartDateTime",
        ),
        Hostile(
            "systemUserId 'a..c'",
            _bytes(_doc(eid="h-sys", systemUserId="a..c")),
            "errors",
            "systemUserId",
        ),
        # -- types that are not archived, some aimed at S3 keys
        Hostile(
            "type '../../x'",
            _with_attribute("h-t1", "type", {"S": "../../x"}),
            "skipped",
            "../../x",
        ),
        Hostile(
            "type 'demand/../../etc'",
            _with_attribute("h-t2", "type", {"S": "demand/../../etc"}),
            "skipped",
            "demand/../../etc",
        ),
        Hostile(
            "type 'demand' with a NUL",
            _with_attribute("h-t3", "type", {"S": "demand\0"}),
            "skipped",
            "demand\0",
        ),
        Hostile(
            "type 'Demand'", _with_attribute("h-t4", "type", {"S": "Demand"}), "skipped", "Demand"
        ),
        Hostile(
            "type of 10,000 characters",
            _with_attribute("h-t5", "type", {"S": "t" * 10_000}),
            "skipped",
            "t" * 10_000,
        ),
        Hostile(
            "type as a number",
            _with_attribute("h-t6", "type", {"N": "1"}),
            "skipped",
            "(non-string type)",
        ),
        # -- valid, however odd: archived intact
        Hostile(
            "fanId '../../../../etc/passwd'",
            _bytes(_doc(eid="h-path", fanId="../../../../etc/passwd")),
            "archived",
            "h-path",
        ),
        Hostile(
            "eventId with '/' and '..'",
            _bytes(_doc(eid="h-slash", eventId="a/../../b")),
            "archived",
            "h-slash",
        ),
        Hostile("fanId with a NUL", _bytes(_doc(eid="h-nul", fanId="a\0b")), "archived", "h-nul"),
        Hostile("eventID with a NUL", _bytes(_doc(eid="h-nul-id\0")), "archived", "h-nul-id\0"),
        Hostile(
            "eventID of 100,000 characters",
            _bytes(_doc(eid="i" * 100_000)),
            "archived",
            "i" * 100_000,
        ),
        Hostile(
            "unknown attribute nested 400 deep",
            _with_raw_attribute("h-deep-extra", "extra", _nested(400)),
            "archived",
            "h-deep-extra",
        ),
        Hostile(
            "unknown attributes N 'NaN', '1e400', 10,000 digits",
            _with_raw_attribute(
                "h-nums",
                "ttl",
                b'{"N":"NaN"},"x1":{"N":"1e400"},"x2":{"N":"' + b"9" * 10_000 + b'"}',
            ),
            "archived",
            "h-nums",
        ),
        Hostile(
            "attribute named NUL",
            _with_attribute("h-nul-name", "\0", {"S": "x"}),
            "archived",
            "h-nul-name",
        ),
        Hostile(
            "1 MiB record (a 1 MiB eventName)",
            _padded("h-mib", "eventName", biggest),
            "archived",
            "h-mib",
        ),
        Hostile(
            "notification on the first partition day",
            _bytes(_doc("notification", eid="h-first", date={"created": first.isoformat()})),
            "archived",
            "h-first",
        ),
        Hostile(
            "sale on the last partition day",
            _bytes(_doc("sale", eid="h-last", saleStartDateTime=f"{last}T23:59:59.999Z")),
            "archived",
            "h-last",
        ),
    ]
