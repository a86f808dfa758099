"""Delete marking and PII scrubbing (BR-004, BR-005, REQ-002)."""

from __future__ import annotations

import re

import orjson

PII_FIELDS = ("phoneNumber", "email", "messageBody")
REDACTED = "[redacted]"


def mark_deleted(record: dict, change_time: str, blank_date: dict) -> None:
    """A REMOVE: `isDeleted = true`, `date.deleted = change time`, PII scrubbed.

    `record` is validated; where it has no `date`, one is made from `blank_date` (the type's
    `date` with every member null).
    """
    record["isDeleted"] = True
    dates = record.get("date")
    if dates is None:
        record["date"] = {**blank_date, "deleted": change_time}
    else:
        dates["deleted"] = change_time
    scrub_pii(record)


def scrub_pii(item: dict) -> None:
    """`phoneNumber`, `email`, `messageBody`, where present, become the literal `[redacted]`."""
    for name in PII_FIELDS:
        if item.get(name) is not None:
            item[name] = REDACTED


def scrub_change(change: dict) -> dict:
    """A parsed stream record of a REMOVE with the PII attributes of its images redacted.

    Used for everything written outside the archive itself (landing area, error documents),
    so that a deleted record's PII is written nowhere. Other records are returned unchanged.
    """
    if change.get("eventName") != "REMOVE":
        return change
    dynamodb = change.get("dynamodb")
    if type(dynamodb) is not dict:
        return change
    scrubbed = dict(dynamodb)
    for image_name in ("OldImage", "NewImage"):
        image = dynamodb.get(image_name)
        if type(image) is dict:
            scrubbed[image_name] = scrub_image(image)
    return {**change, "dynamodb": scrubbed}


def redacted_change(data: bytes, event_name: str) -> bytes:
    """The change as it may be kept outside the archive (landing area): a REMOVE is written
    again with its images' PII redacted; other changes are kept as they are.

    `event_name` is what decoding found (`"REMOV\\u0045"` decodes to REMOVE too).
    """
    if event_name != "REMOVE":
        return data
    return orjson.dumps(scrub_change(orjson.loads(data)))


def scrub_image(image: dict) -> dict:
    """An item image (attribute-value form) with its PII attributes, of any type, redacted."""
    if not any(name in image for name in PII_FIELDS):
        return image
    image = dict(image)
    for name in PII_FIELDS:
        if name in image and image[name] != {"NULL": True}:
            image[name] = {"S": REDACTED}
    return image


def _json_name(name: str) -> bytes:
    """A pattern for `"name"` as JSON may write it: each character plain or `\\uXXXX`-escaped."""

    def char(c: str) -> bytes:
        hex_digits = "".join(f"[{h}{h.upper()}]" if h.isalpha() else h for h in f"{ord(c):04x}")
        return b"(?:" + re.escape(c).encode() + rb"|\\u" + hex_digits.encode() + b")"

    return b'"' + b"".join(char(c) for c in name) + b'"'


_PII_NAME = re.compile(b"|".join(_json_name(n) for n in PII_FIELDS))
_NOT_A_DELETION = re.compile(rb'"eventName"\s*:\s*"(?:INSERT|MODIFY)"')
WITHHELD = b"[redacted: the rest of an unparseable REMOVE, from its first PII attribute on]"


def scrub_unparsed(data: bytes) -> bytes:
    """What may be kept of bytes that did not parse.

    A record that cannot be parsed cannot be proven not to be a deletion, and its values cannot
    be told apart reliably. Unless it shows an eventName of INSERT or MODIFY before its first PII
    attribute (and mentions no REMOVE), everything from that attribute on is withheld: a REMOVE
    cut before its eventName (keys in another order) or spelled with JSON escapes is a deletion
    too.
    """
    found = _PII_NAME.search(data)
    if found is None:
        return data
    if b"REMOVE" not in data and _NOT_A_DELETION.search(data, 0, found.start()):
        return data
    return data[: found.end()] + WITHHELD
