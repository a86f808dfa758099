"""Malformed change records of the kinds the pipeline must send to errors/, each labelled
`malformed:<kind>` in `GeneratedChange.kind`."""

from __future__ import annotations

import orjson

from demand_assets.records.schemas import RECORD_TYPES
from demand_assets.traffic.change_records import (
    GeneratedChange,
    _image_json,
    _record,
    iso_ms,
)
from demand_assets.traffic.marshalling import marshal_item

# Labels of malformed records: GeneratedChange.kind is "malformed:<label>".
MALFORMED_KINDS = (
    "not_json",  # the payload is not a JSON document (truncated, binary garbage, plain text)
    "missing_new_image",  # INSERT or MODIFY without dynamodb.NewImage
    "unknown_event_name",  # eventName other than INSERT / MODIFY / REMOVE
    "bad_system_user_id",  # demand whose systemUserId is not <id>.<databaseId>.<memberId>
    "missing_date_requested",  # demand without date.requested (no partition date)
    "wrong_attribute_type",  # a field of the wrong attribute type, e.g. fanId as {"N": "5"}
    "bad_sale_start",  # sale whose saleStartDateTime does not parse
)


# Wrong attribute types per record type: (attribute, the wrong attribute value).
_WRONG_TYPES: dict[str, tuple[tuple[str, dict], ...]] = {
    "demand": (
        ("fanId", {"N": "5"}),
        ("saleId", {"N": "123456"}),
        ("eventName", {"BOOL": True}),
        ("date", {"S": "2026-03-01T12:00:00.000Z"}),
        ("date.requested", {"N": "1772366400000"}),
    ),
    "notification": (
        ("fanId", {"N": "5"}),
        ("eventId", {"L": [{"S": "vvG1abc"}]}),
        ("messageBody", {"M": {"text": {"S": "hi"}}}),
    ),
    "event": (("id", {"N": "42"}), ("name", {"SS": ["a", "b"]}), ("eventDate", {"S": "soon"})),
    "sale": (("id", {"N": "7"}), ("eventId", {"BOOL": False}), ("name", {"N": "1"})),
}


def malformed_change(sim, ct: int) -> GeneratedChange:
    """One malformed record of a random kind, built from a valid item of the simulation `sim`."""
    rng = sim.rng
    label = MALFORMED_KINDS[int(rng.random() * len(MALFORMED_KINDS))]
    record_type: str | None = "demand"
    event_name = "INSERT"
    old_image = None
    if label == "not_json":
        item = sim._demand(ct)
        variant = rng.randrange(4)
        if variant < 2:  # a truncated record (cut anywhere before its closing brace)
            whole = _record("INSERT", _keys_json(item), _image_json(item), None, ct, "x")
            data = whole[: rng.randrange(1, len(whole) - 1)]
        elif variant == 2:  # binary garbage, not even UTF-8
            data = b"\xff\xfe\x00" + rng.randbytes(rng.randrange(8, 64))
        else:
            data = rng.choice((b"heartbeat", b" ", b"{'type': 'demand'}", b"[1, 2,"))
        return GeneratedChange(data, item["pk"], f"malformed:{label}", None)
    if label in ("bad_system_user_id", "missing_date_requested"):
        item = sim._demand(ct)
        if label == "bad_system_user_id":
            item["systemUserId"] = rng.choice(("bad-form", "tm..4481", "tm.db12", ".db1.7"))
        elif rng.random() < 0.5:
            del item["date"]
        else:
            item["date"] = {k: v for k, v in item["date"].items() if k != "requested"}
            item["date"]["triggered"] = iso_ms(ct)
        image = marshal_item(item)
    elif label == "bad_sale_start":
        record_type = "sale"
        item = sim._sale(ct)
        item["saleStartDateTime"] = rng.choice(
            ("TBA", "next tuesday", "2026-13-45T99:00:00.000Z", "", "31/12/2026 10:00")
        )
        image = marshal_item(item)
    else:
        record_type = rng.choice(RECORD_TYPES)
        item = sim.builders[record_type][0](ct)
        image = marshal_item(item)
        if label == "wrong_attribute_type":
            name, value = rng.choice(_WRONG_TYPES[record_type])
            if name == "date.requested":
                image["date"]["M"]["requested"] = value
            else:
                image[name] = value
        elif label == "unknown_event_name":
            event_name = rng.choice(("UPSERT", "DELETE", "insert", "TTL", ""))
        # missing_new_image: an INSERT or MODIFY whose NewImage is simply not there
        elif rng.random() < 0.5:
            event_name = "MODIFY"
            old_image = image
    image_json = orjson.dumps(image)
    new_image = None if label == "missing_new_image" else image_json
    old_json = None if old_image is None else image_json
    data = _record(event_name, _keys_json(item), new_image, old_json, ct, sim._event_id())
    return GeneratedChange(data, item["pk"], f"malformed:{label}", record_type)


def _keys_json(item: dict) -> bytes:
    return orjson.dumps({"pk": {"S": item["pk"]}, "sk": {"S": item["sk"]}})
