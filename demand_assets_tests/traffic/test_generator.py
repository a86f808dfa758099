"""Tests of the synthetic change traffic (demand_assets.traffic.generator)."""

from __future__ import annotations

import base64
import itertools
import re
from collections import Counter
from datetime import UTC, datetime
from decimal import Decimal

import orjson
import pytest

from demand_assets.traffic.generator import (
    DAY_MS,
    DEFAULT_TYPE_WEIGHTS,
    MALFORMED_KINDS,
    RECORD_TYPES,
    ChangeGenerator,
    GeneratedChange,
    change_record,
    epoch_ms,
    iso_ms,
    marshal,
)

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
NOW_MS = epoch_ms(NOW)
N = 5_000
ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
LOCAL_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
ENVELOPE = [
    "awsRegion",
    "eventID",
    "eventName",
    "userIdentity",
    "recordFormat",
    "tableName",
    "dynamodb",
    "eventSource",
]

# The attribute names each type may carry (the archive's schema fields, plus the table keys).
ALLOWED = {
    "demand": {
        "pk", "sk", "type", "fanId", "eventId", "saleId", "artistId", "eventName", "saleName",
        "artistName", "requestedDateTime", "phoneNumber", "email", "contactMethod", "demandType",
        "date", "systemUserId",
    },
    "notification": {
        "pk", "sk", "type", "fanId", "eventId", "saleId", "saleName", "messageBody",
        "phoneNumber", "email", "date",
    },
    "event": {"pk", "sk", "type", "id", "name", "eventDate", "date"},
    "sale": {"pk", "sk", "type", "id", "eventId", "name", "saleStartDateTime"},
}  # fmt: skip
REQUIRED = {
    "demand": {"type", "fanId", "eventId", "saleId", "requestedDateTime", "date"},
    "notification": {"type", "fanId", "eventId", "saleId", "date"},
    "event": {"type", "id"},
    "sale": {"type", "id", "eventId", "saleStartDateTime"},
}
OPTIONAL_STRINGS = {
    "artistId", "eventName", "saleName", "artistName", "phoneNumber", "email", "contactMethod",
    "demandType", "systemUserId", "messageBody", "name",
}  # fmt: skip


def parse(change: GeneratedChange) -> dict:
    return orjson.loads(change.data)


def image_of(record: dict) -> dict:
    key = "OldImage" if record["eventName"] == "REMOVE" else "NewImage"
    return record["dynamodb"][key]


def keys_of(record: dict) -> tuple[str, str]:
    keys = record["dynamodb"]["Keys"]
    return keys["pk"]["S"], keys["sk"]["S"]


def parse_iso(text: str) -> int:
    assert ISO.match(text), text
    return epoch_ms(datetime.fromisoformat(text))


@pytest.fixture(scope="module")
def clean() -> list[GeneratedChange]:
    return ChangeGenerator(42, now=NOW).changes(N)


@pytest.fixture(scope="module")
def clean_records(clean) -> list[dict]:
    return [parse(c) for c in clean]


@pytest.fixture(scope="module")
def noisy() -> list[GeneratedChange]:
    return ChangeGenerator(7, now=NOW, other_type_share=0.1, malformed_share=0.1).changes(N)


# -- determinism, order, window --------------------------------------------------------------


def test_same_seed_same_bytes(clean):
    again = ChangeGenerator(42, now=NOW).changes(N)
    assert again == clean
    other = ChangeGenerator(43, now=NOW).changes(200)
    assert [c.data for c in other] != [c.data for c in clean[:200]]


def test_event_ids_are_unique_uuid_strings(clean_records):
    ids = [r["eventID"] for r in clean_records]
    assert len(set(ids)) == len(ids)
    uuid_form = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
    assert all(uuid_form.match(i) for i in ids)


def test_changes_in_time_order_within_the_window(clean_records):
    times = [r["dynamodb"]["ApproximateCreationDateTime"] for r in clean_records]
    assert all(type(t) is int for t in times)
    assert times == sorted(times)
    assert times[0] >= NOW_MS - 3 * DAY_MS and times[-1] <= NOW_MS
    # spread over the whole window, not bunched up
    assert times[0] < NOW_MS - 2.9 * DAY_MS and times[-1] > NOW_MS - 0.1 * DAY_MS


def test_days_and_zero_changes():
    records = [parse(c) for c in ChangeGenerator(1, now=NOW, days=10).changes(500)]
    times = [r["dynamodb"]["ApproximateCreationDateTime"] for r in records]
    assert min(times) >= NOW_MS - 10 * DAY_MS and min(times) < NOW_MS - 9 * DAY_MS
    assert ChangeGenerator(1, now=NOW).changes(0) == []


def test_endless_iteration_advances_from_now():
    generator = ChangeGenerator(5, now=NOW, rate_per_second=200)
    first = list(itertools.islice(generator, 3_000))
    assert first == list(itertools.islice(iter(generator), 3_000))
    times = [parse(c)["dynamodb"]["ApproximateCreationDateTime"] for c in first]
    assert times[0] == NOW_MS and times == sorted(times)
    assert 5_000 < times[-1] - NOW_MS < 25_000  # 3,000 changes at about 200 per second
    assert {c.kind for c in first} == {"valid"}


# -- the mix ---------------------------------------------------------------------------------


def test_type_mix(clean):
    counts = Counter(c.record_type for c in clean)
    assert set(counts) == set(RECORD_TYPES)
    for record_type, weight in DEFAULT_TYPE_WEIGHTS.items():
        assert counts[record_type] / N == pytest.approx(weight, abs=0.03)


def test_event_name_shares(clean_records):
    counts = Counter(r["eventName"] for r in clean_records)
    assert set(counts) == {"INSERT", "MODIFY", "REMOVE"}
    assert counts["MODIFY"] / N == pytest.approx(1 / 3, abs=0.04)
    assert counts["REMOVE"] / N == pytest.approx(0.05, abs=0.02)
    # every type is modified and removed
    pairs = {(image_of(r)["type"]["S"], r["eventName"]) for r in clean_records}
    assert pairs == {(t, e) for t in RECORD_TYPES for e in ("INSERT", "MODIFY", "REMOVE")}


def test_type_weights_and_shares_are_configurable():
    changes = ChangeGenerator(
        3, now=NOW, type_weights={"sale": 1.0}, modify_share=0.5, remove_share=0.0
    ).changes(1_000)
    assert {c.record_type for c in changes} == {"sale"}
    names = Counter(parse(c)["eventName"] for c in changes)
    assert names["REMOVE"] == 0
    assert names["MODIFY"] / 1_000 == pytest.approx(0.5, abs=0.06)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"type_weights": {"fanProfile": 1.0}},
        {"type_weights": {"demand": 0.0}},
        {"type_weights": {"demand": -1.0, "sale": 2.0}},
        {"other_type_share": 0.6, "malformed_share": 0.6},
        {"malformed_share": 1.5},
        {"modify_share": 0.9, "remove_share": 0.2},
        {"days": -1},
        {"rate_per_second": 0},
    ],
)
def test_bad_configuration_is_refused(kwargs):
    with pytest.raises(ValueError):
        ChangeGenerator(0, now=NOW, **kwargs)


# -- item lifecycles -------------------------------------------------------------------------


def test_remove_reuses_keys_of_an_earlier_insert_and_has_old_image_only(clean_records):
    live: dict[tuple[str, str], dict] = {}
    removes = 0
    for record in clean_records:
        dynamodb = record["dynamodb"]
        keys = keys_of(record)
        if record["eventName"] == "INSERT":
            assert "OldImage" not in dynamodb
            assert keys not in live
            live[keys] = dynamodb["NewImage"]
        elif record["eventName"] == "MODIFY":
            assert dynamodb["OldImage"] == live[keys]  # the previous version of the same item
            assert dynamodb["NewImage"] != dynamodb["OldImage"]
            live[keys] = dynamodb["NewImage"]
        else:
            removes += 1
            assert "NewImage" not in dynamodb
            assert dynamodb["OldImage"] == live.pop(keys)
    assert removes > 100


def test_removed_keys_can_come_back(clean_records):
    removed: set[tuple[str, str]] = set()
    reinserted = 0
    for record in clean_records:
        if record["eventName"] == "REMOVE":
            removed.add(keys_of(record))
        elif record["eventName"] == "INSERT" and keys_of(record) in removed:
            reinserted += 1
    assert reinserted > 0


def test_ttl_removes_carry_the_dynamodb_service_identity(clean_records):
    identities = Counter(orjson.dumps(r["userIdentity"]) for r in clean_records)
    assert identities[b"null"] > N * 0.9
    ttl = [r for r in clean_records if r["userIdentity"] is not None]
    assert ttl and all(r["eventName"] == "REMOVE" for r in ttl)
    assert ttl[0]["userIdentity"] == {"type": "Service", "principalId": "dynamodb.amazonaws.com"}


# -- valid records ---------------------------------------------------------------------------


def test_every_valid_record_has_its_type_s_attributes(clean, clean_records):
    seen_null = 0
    for change, record in zip(clean, clean_records, strict=True):
        assert list(record) == ENVELOPE
        assert record["awsRegion"] == "us-east-1"
        assert record["recordFormat"] == "application/json"
        assert record["tableName"] == "demand-capture"
        assert record["eventSource"] == "aws:dynamodb"
        dynamodb = record["dynamodb"]
        assert type(dynamodb["SizeBytes"]) is int and dynamodb["SizeBytes"] > 0
        image = image_of(record)
        record_type = image["type"]["S"]
        assert change.kind == "valid" and change.record_type == record_type
        assert change.partition_key == image["pk"]["S"] == keys_of(record)[0]
        assert image["sk"]["S"] == keys_of(record)[1]
        assert set(image) <= ALLOWED[record_type], set(image) - ALLOWED[record_type]
        assert REQUIRED[record_type] <= set(image)
        for name, value in image.items():
            if name in ("date", "eventDate"):
                assert set(value) == {"M"}
            elif value == {"NULL": True}:
                assert name in OPTIONAL_STRINGS
                seen_null += 1
            else:
                assert set(value) == {"S"} and type(value["S"]) is str, (name, value)
        check_dates(record_type, image, dynamodb["ApproximateCreationDateTime"])
    assert seen_null > 0  # optional strings are sometimes stored as NULL


def check_dates(record_type: str, image: dict, change_ms: int) -> None:
    """Dates are ISO strings; those of the item's own history lie shortly before the change."""
    # inserted up to 3 days (the window) before, and dated up to 3 days before the insert
    near = (change_ms - 6 * DAY_MS, change_ms)
    if record_type == "demand":
        dates = image["date"]["M"]
        requested = parse_iso(dates["requested"]["S"])
        assert near[0] <= requested <= near[1]
        assert parse_iso(image["requestedDateTime"]["S"]) == requested
        for later in ("triggered", "notified"):
            if later in dates:
                assert requested <= parse_iso(dates[later]["S"]) <= change_ms
        assert set(dates) <= {"requested", "triggered", "notified"}
        if "contactMethod" in image:
            assert image["contactMethod"]["S"] in ("sms", "email")
    elif record_type == "notification":
        dates = image["date"]["M"]
        assert set(dates) <= {"created", "updated"}
        created = parse_iso(dates["created"]["S"])
        assert near[0] <= created <= near[1]
        if "updated" in dates:
            assert created <= parse_iso(dates["updated"]["S"]) <= change_ms
    elif record_type == "event":
        if "date" in image:
            dates = image["date"]["M"]
            assert set(dates) <= {"firstSeen", "updated"} and "updated" in dates
            for value in dates.values():
                assert near[0] <= parse_iso(value["S"]) <= near[1]
        if "eventDate" in image:
            for side, value in image["eventDate"]["M"].items():
                assert side in ("start", "end")
                for name, moment in value["M"].items():
                    assert name in ("dateTime", "localDate")
                    if name == "dateTime":
                        assert parse_iso(moment["S"]) > change_ms
                    else:
                        assert LOCAL_DATE.match(moment["S"])
    else:
        start = parse_iso(image["saleStartDateTime"]["S"])
        assert change_ms <= start <= change_ms + 120 * DAY_MS


def test_system_user_ids(clean_records):
    inserts = [
        image_of(r)
        for r in clean_records
        if r["eventName"] == "INSERT" and image_of(r)["type"]["S"] == "demand"
    ]
    with_id = [i["systemUserId"]["S"] for i in inserts if "systemUserId" in i]
    assert len(with_id) / len(inserts) == pytest.approx(0.7, abs=0.05)
    assert all(len(s.split(".")) == 3 and all(s.split(".")) for s in with_id)


def test_partition_dates_are_spread(clean_records):
    """Items dated on several days, including sales months ahead."""
    days = {
        t: {
            (
                image_of(r)["date"]["M"]["requested"]["S"]
                if t == "demand"
                else image_of(r)["saleStartDateTime"]["S"]
            )[:10]
            for r in clean_records
            if image_of(r)["type"]["S"] == t
        }
        for t in ("demand", "sale")
    }
    assert len(days["demand"]) >= 3
    assert len(days["sale"]) > 60


# -- noise -----------------------------------------------------------------------------------


def test_noise_is_off_by_default(clean):
    assert {c.kind for c in clean} == {"valid"}


def test_noise_shares(noisy):
    kinds = Counter(c.kind for c in noisy)
    assert kinds["other_type"] / N == pytest.approx(0.1, abs=0.02)
    malformed = sum(v for k, v in kinds.items() if k.startswith("malformed:"))
    assert malformed / N == pytest.approx(0.1, abs=0.02)
    assert {k for k in kinds if k.startswith("malformed:")} == {
        f"malformed:{label}" for label in MALFORMED_KINDS
    }
    assert kinds["valid"] == N - kinds["other_type"] - malformed


def test_other_types_are_not_archived_types(noisy):
    others = [c for c in noisy if c.kind == "other_type"]
    assert {c.record_type for c in others} == {"fanProfile", "config", None}
    attribute_types = set()
    for change in others:
        record = parse(change)
        image = image_of(record)
        if change.record_type is None:
            assert "type" not in image
        else:
            assert image["type"] == {"S": change.record_type}
        assert change.partition_key == keys_of(record)[0]
        attribute_types |= {tag for value in image.values() for tag in value}
    # the other items exercise the remaining attribute-value types
    assert {"N", "BOOL", "NULL", "L", "M", "SS", "NS", "B", "BS"} <= attribute_types


def test_malformed_records_are_what_their_label_says(noisy):
    by_label: dict[str, list[GeneratedChange]] = {}
    for change in noisy:
        if change.kind.startswith("malformed:"):
            by_label.setdefault(change.kind.removeprefix("malformed:"), []).append(change)

    for change in by_label["not_json"]:
        assert change.record_type is None
        with pytest.raises(orjson.JSONDecodeError):
            orjson.loads(change.data)

    for change in by_label["missing_new_image"]:
        record = parse(change)
        assert record["eventName"] in ("INSERT", "MODIFY")
        assert "NewImage" not in record["dynamodb"]

    for change in by_label["unknown_event_name"]:
        assert parse(change)["eventName"] not in ("INSERT", "MODIFY", "REMOVE")

    for change in by_label["bad_system_user_id"]:
        image = parse(change)["dynamodb"]["NewImage"]
        assert change.record_type == "demand" and image["type"] == {"S": "demand"}
        parts = image["systemUserId"]["S"].split(".")
        assert len(parts) != 3 or not all(parts)

    for change in by_label["missing_date_requested"]:
        image = parse(change)["dynamodb"]["NewImage"]
        assert change.record_type == "demand"
        assert "requested" not in image.get("date", {"M": {}})["M"]

    for change in by_label["wrong_attribute_type"]:
        image = parse(change)["dynamodb"]["NewImage"]
        assert image["type"] == {"S": change.record_type}
        assert [name for name, value in image.items() if not well_typed(name, value)], image

    for change in by_label["bad_sale_start"]:
        image = parse(change)["dynamodb"]["NewImage"]
        assert change.record_type == "sale"
        with pytest.raises(ValueError):
            datetime.fromisoformat(image["saleStartDateTime"]["S"])


def well_typed(name: str, value: dict) -> bool:
    if name not in ("date", "eventDate"):
        return set(value) <= {"S", "NULL"}
    if set(value) != {"M"}:
        return False
    return all(set(v) == {"S"} or set(v) == {"M"} for v in value["M"].values())


# -- marshal and change_record ---------------------------------------------------------------


def test_marshal_covers_every_attribute_type():
    assert marshal("a") == {"S": "a"}
    assert marshal("") == {"S": ""}
    assert marshal(5) == {"N": "5"}
    assert marshal(-2.5) == {"N": "-2.5"}
    assert marshal(Decimal("0.10")) == {"N": "0.10"}
    assert marshal(True) == {"BOOL": True}
    assert marshal(False) == {"BOOL": False}
    assert marshal(None) == {"NULL": True}
    assert marshal(b"\x00\xff") == {"B": base64.b64encode(b"\x00\xff").decode()}
    assert marshal(bytearray(b"ab")) == {"B": "YWI="}
    assert marshal(["x", 1, None]) == {"L": [{"S": "x"}, {"N": "1"}, {"NULL": True}]}
    assert marshal(("x",)) == {"L": [{"S": "x"}]}
    assert marshal({"a": {"b": [True]}}) == {"M": {"a": {"M": {"b": {"L": [{"BOOL": True}]}}}}}
    assert marshal({"b", "a", "c"}) == {"SS": ["a", "b", "c"]}
    assert marshal(frozenset({3, 1.5, Decimal("2")})) == {"NS": ["1.5", "2", "3"]}
    assert marshal({b"b", b"a"}) == {"BS": ["YQ==", "Yg=="]}
    assert marshal({}) == {"M": {}}
    assert marshal([]) == {"L": []}


@pytest.mark.parametrize(
    "value, error",
    [
        (set(), ValueError),
        (float("nan"), ValueError),
        (float("inf"), ValueError),
        ({"a", 1}, TypeError),
        (object(), TypeError),
        ({1: "x"}, TypeError),
    ],
)
def test_marshal_refuses_what_dynamodb_cannot_hold(value, error):
    with pytest.raises(error):
        marshal(value)


def test_change_record_from_plain_items():
    item = {
        "type": "demand",
        "fanId": "f1",
        "eventId": "e1",
        "saleId": "s1",
        "requestedDateTime": "2026-03-01T10:00:00.000Z",
        "date": {"requested": "2026-03-01T10:00:00.000Z"},
        "phoneNumber": "+15555550100",
        "systemUserId": None,
    }
    insert = orjson.loads(change_record("INSERT", item, change_time_ms=NOW_MS, event_id="id-1"))
    assert list(insert) == ENVELOPE
    assert insert["eventID"] == "id-1" and insert["eventName"] == "INSERT"
    assert insert["userIdentity"] is None
    dynamodb = insert["dynamodb"]
    assert dynamodb["ApproximateCreationDateTime"] == NOW_MS
    assert dynamodb["Keys"] == {"pk": {"S": "FAN#f1"}, "sk": {"S": "DEMAND#e1#s1"}}
    assert dynamodb["NewImage"]["date"] == {"M": {"requested": {"S": item["date"]["requested"]}}}
    assert dynamodb["NewImage"]["systemUserId"] == {"NULL": True}
    assert "OldImage" not in dynamodb and dynamodb["SizeBytes"] > 0

    newer = dict(item, date={**item["date"], "triggered": "2026-03-01T11:00:00.000Z"})
    modify = orjson.loads(
        change_record(
            "MODIFY",
            newer,
            old_item=item,
            change_time_ms=NOW_MS + 1,
            event_id="id-2",
            keys={"pk": "P", "sk": "S"},
        )
    )
    assert modify["dynamodb"]["Keys"] == {"pk": {"S": "P"}, "sk": {"S": "S"}}
    assert modify["dynamodb"]["OldImage"] == dynamodb["NewImage"]
    assert "triggered" in modify["dynamodb"]["NewImage"]["date"]["M"]

    remove = orjson.loads(change_record("REMOVE", item, change_time_ms=NOW_MS, event_id="id-3"))
    assert "NewImage" not in remove["dynamodb"]
    assert remove["dynamodb"]["OldImage"] == dynamodb["NewImage"]

    with_keys = dict(item, pk="FAN#x", sk="DEMAND#y")
    keyed = orjson.loads(change_record("INSERT", with_keys, change_time_ms=0, event_id="e"))
    assert keyed["dynamodb"]["Keys"] == {"pk": {"S": "FAN#x"}, "sk": {"S": "DEMAND#y"}}


def test_iso_ms():
    assert iso_ms(0) == "1970-01-01T00:00:00.000Z"
    assert iso_ms(NOW_MS + 1_234) == "2026-03-01T12:00:01.234Z"
    assert iso_ms(epoch_ms(datetime(2028, 2, 29, 23, 59, 59, 999_000))) == (
        "2028-02-29T23:59:59.999Z"
    )
