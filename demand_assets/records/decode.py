"""One stream record's trip through the rules: bytes in, an archivable record or an error out.

`decode_change` never raises for bad input: every failure becomes a `Rejected` whose message
names the field. The rules themselves live in their own modules (deletion, reference, system,
partition_date, provenance, validation); this module only applies them in order.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import orjson

from demand_assets.records.deletion import (
    mark_deleted,
    scrub_change,
    scrub_image,
    scrub_unparsed,
)
from demand_assets.records.errors import RecordError
from demand_assets.records.partition_date import PartitionWindow, partition_date
from demand_assets.records.provenance import provenance
from demand_assets.records.reference import reference
from demand_assets.records.schemas import RECORD_TYPES
from demand_assets.records.system import system_from_user_id
from demand_assets.records.timestamps import change_time as change_time_of
from demand_assets.records.validation import blank, validator

IMAGE_OF_EVENT = {"INSERT": "NewImage", "MODIFY": "NewImage", "REMOVE": "OldImage"}  # BR-001
_TYPES = frozenset(RECORD_TYPES)


@dataclass(slots=True)
class Archivable:
    """A change that passed every rule: `record` is ready for the type's Avro schema."""

    record_type: str
    partition_date: str
    record: dict


@dataclass(slots=True)
class Rejected:
    """A change that claims to be archivable and is not; `original` is what to keep for replay.

    `original` is the stream record as JSON text, with a deleted record's PII redacted.
    `change_time` is known when the record parsed far enough, else None.
    """

    message: str
    original: str
    change_time: str | None = None
    record_type: str | None = None


@dataclass(slots=True)
class Skipped:
    """A change of an item type that is not archived (the table holds more than four types)."""

    item_type: str


Decoded = Archivable | Rejected | Skipped


def decode_change(
    data: bytes, shard_id: str, sequence_number: str, window: PartitionWindow
) -> Decoded:
    """Apply every rule of SPEC sections 1-3 to one Kinesis record payload."""
    try:
        change = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        return Rejected(f"not a JSON document: {exc}", _text(scrub_unparsed(data)))
    if type(change) is not dict:
        return Rejected("not a JSON object", _text(scrub_unparsed(data)))
    try:
        return _decode(change, shard_id, sequence_number, window)
    except _Rejection as rejection:
        return Rejected(
            rejection.message, _original(data, change), rejection.change_time, rejection.record_type
        )


class _Rejection(Exception):
    def __init__(self, message: str, change_time: str | None, record_type: str | None):
        self.message, self.change_time, self.record_type = message, change_time, record_type


def _decode(change: dict, shard_id: str, sequence_number: str, window: PartitionWindow) -> Decoded:
    when = record_type = None
    try:
        event_name = change.get("eventName")
        image_name = IMAGE_OF_EVENT.get(event_name) if type(event_name) is str else None
        if image_name is None:
            raise RecordError(
                "eventName", f"expected INSERT, MODIFY or REMOVE, got {event_name!r:.40}"
            )
        event_id = change.get("eventID")
        if type(event_id) is not str or not event_id:
            raise RecordError("eventID", f"expected a non-empty string, got {event_id!r:.40}")
        dynamodb = change.get("dynamodb")
        if type(dynamodb) is not dict:
            raise RecordError("dynamodb", "missing or not an object")
        when = change_time_of(dynamodb, change.get("ApproximateCreationDateTimePrecision"))
        image = dynamodb.get(image_name)
        if type(image) is not dict:
            raise RecordError(f"dynamodb.{image_name}", f"missing; a {event_name} carries it")
        item_type = _item_type(image)
        if item_type not in _TYPES:
            return Skipped(item_type)
        record_type = item_type
        path = f"dynamodb.{image_name}"
        if image_name == "OldImage":
            image = scrub_image(image)  # before validation: no PII value reaches a message
        record = validator(record_type)(image, path)
        if image_name == "OldImage":
            mark_deleted(record, when, blank(record_type, "date"))
        day = _with_image_path(partition_date, record_type, record, when, window, path=path)
        if record_type == "demand":
            record["system"] = _with_image_path(
                system_from_user_id, record["systemUserId"], "systemUserId", path=path
            )
        record["reference"] = _with_image_path(reference, record_type, record, when, path=path)
        record["provenance"] = provenance(event_id, event_name, when, shard_id, sequence_number)
        return Archivable(record_type, day, record)
    except RecordError as exc:
        prefix = f"{record_type} record: " if record_type else ""
        raise _Rejection(prefix + exc.message, when, record_type) from None


def _item_type(image: dict) -> str:
    value = image.get("type")
    if type(value) is dict and type(value.get("S")) is str:
        return value["S"]
    return "(no type)" if value is None else "(non-string type)"


def _with_image_path(rule, *args, path: str):
    """Run a rule whose errors name item fields, and prefix them with the image's path."""
    try:
        return rule(*args)
    except RecordError as exc:
        if exc.path.startswith("dynamodb."):
            raise
        raise RecordError(f"{path}.{exc.path}", exc.problem) from None


def _original(data: bytes, change: dict) -> str:
    """The original JSON as text; a REMOVE's is re-serialised with its PII redacted."""
    if change.get("eventName") == "REMOVE":
        return orjson.dumps(scrub_change(change)).decode()
    return data.decode()


def _text(data: bytes) -> str:
    return data.decode("utf-8", errors="backslashreplace")


@dataclass
class DecodedBatch:
    """A batch sorted by fate: archivable per (type, partition date), rejected, skipped."""

    archivable: dict[tuple[str, str], list[dict]] = field(default_factory=dict)
    rejected: list[Rejected] = field(default_factory=list)
    skipped: Counter = field(default_factory=Counter)

    @property
    def archivable_count(self) -> int:
        return sum(len(records) for records in self.archivable.values())


def decode_batch(changes, window: PartitionWindow) -> DecodedBatch:
    """Decode `(data, shard_id, sequence_number)` triples, grouping by type and partition date."""
    batch = DecodedBatch()
    archivable = batch.archivable
    for data, shard_id, sequence_number in changes:
        result = decode_change(data, shard_id, sequence_number, window)
        if type(result) is Archivable:
            key = (result.record_type, result.partition_date)
            group = archivable.get(key)
            if group is None:
                archivable[key] = [result.record]
            else:
                group.append(result.record)
        elif type(result) is Rejected:
            batch.rejected.append(result)
        else:
            batch.skipped[result.item_type] += 1
    return batch
