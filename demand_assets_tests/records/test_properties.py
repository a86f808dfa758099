"""Property tests: decode_change never raises, REMOVEs are always archived scrubbed, and the
attribute-value format round-trips."""

from __future__ import annotations

import base64
import string

import fastavro
import orjson
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from demand_assets.formats.avro import parsed_schema
from demand_assets.records import RECORD_TYPES, Archivable, Rejected, Skipped
from demand_assets.records.attribute_values import unmarshal
from demand_assets.records.deletion import PII_FIELDS, REDACTED
from demand_assets.records.schemas import avro_schema
from demand_assets_tests.builders import WINDOW, attribute, change, decode, image, valid_item
from demand_assets_tests.strategies import (
    change_times,
    iso,
    system_user_ids,
    text,
    valid_items,
)

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _conforms(record_type: str, record: dict) -> None:
    assert fastavro.validation.validate(record, parsed_schema(record_type), raise_errors=True)
    assert set(record) == {f["name"] for f in avro_schema(record_type)["fields"]}


# ---------------------------------------------------------------------------------------------
# (2) any valid item as a REMOVE is archived, deleted and scrubbed
# ---------------------------------------------------------------------------------------------


@FAST
@given(item=valid_items, when=change_times)
def test_any_valid_remove_is_archived_deleted_and_scrubbed(item, when):
    result = decode(change("REMOVE", item, change_time_ms=when))
    assert type(result) is Archivable, result
    record = result.record
    assert record["isDeleted"] is True
    assert record["date"]["deleted"] == record["provenance"]["changeTime"]
    assert record["provenance"]["eventName"] == "REMOVE"
    for name in PII_FIELDS:
        if name in record:
            assert record[name] in (REDACTED, None)
            assert (record[name] == REDACTED) == (item.get(name) is not None)
    assert WINDOW.first.isoformat() <= result.partition_date <= WINDOW.last.isoformat()
    _conforms(result.record_type, record)


@FAST
@given(item=valid_items, when=change_times, event_name=st.sampled_from(["INSERT", "MODIFY"]))
def test_any_valid_insert_or_modify_is_archived_as_is(item, when, event_name):
    result = decode(change(event_name, item, change_time_ms=when))
    assert type(result) is Archivable, result
    record = result.record
    for name in PII_FIELDS:
        if name in record:
            assert record[name] == item.get(name)
    for name, value in item.items():
        if name in record and not isinstance(value, dict):
            assert record[name] == value
    assert isinstance(record["reference"]["id"], str)
    _conforms(result.record_type, record)


# ---------------------------------------------------------------------------------------------
# (1) any bytes, any structure: never raises
# ---------------------------------------------------------------------------------------------

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=8),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=8,
)
_field_names = sorted(
    {f["name"] for t in RECORD_TYPES for f in avro_schema(t)["fields"]}
    | {"requested", "created", "triggered", "firstSeen", "updated", "deleted", "start", "dateTime"}
)
names = st.sampled_from(_field_names) | st.text(max_size=4)
number_texts = st.one_of(
    st.integers().map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.sampled_from(["1e999", "nan", "-", "", "1" * 70, "1_0", " 1"]),
)
base64_texts = st.binary(max_size=6).map(lambda b: base64.b64encode(b).decode()) | st.text(
    max_size=4
)
strings = st.one_of(text, iso, system_user_ids, st.sampled_from(list(RECORD_TYPES) + ["REMOVE"]))
leaf_attributes = st.one_of(
    st.builds(lambda s: {"S": s}, strings),
    st.builds(lambda n: {"N": n}, number_texts),
    st.builds(lambda b: {"BOOL": b}, st.booleans()),
    st.just({"NULL": True}),
    st.builds(lambda b: {"B": b}, base64_texts),
    st.builds(lambda v: {"SS": v}, st.lists(text, max_size=3)),
    st.builds(lambda v: {"NS": v}, st.lists(number_texts, max_size=3)),
    st.builds(lambda v: {"BS": v}, st.lists(base64_texts, max_size=3)),
    st.dictionaries(
        st.sampled_from(["S", "N", "B", "BOOL", "NULL", "M", "L", "SS", "NS", "BS", "X"]),
        json_values,
        min_size=1,
        max_size=2,
    ),
    json_values,
)
attribute_values = st.recursive(
    leaf_attributes,
    lambda inner: (
        st.builds(lambda m: {"M": m}, st.dictionaries(names, inner, max_size=4))
        | st.builds(lambda items: {"L": items}, st.lists(inner, max_size=3))
    ),
    max_leaves=12,
)
type_attributes = st.sampled_from(
    [{"S": t} for t in (*RECORD_TYPES, "fanProfile")] + [{"N": "1"}, {"S": "demand", "N": "1"}]
)
random_images = st.fixed_dictionaries({}, optional={"type": type_attributes}).flatmap(
    lambda fixed: st.dictionaries(names, attribute_values, max_size=6).map(lambda d: {**d, **fixed})
)
mutated_images = st.tuples(valid_items, st.dictionaries(names, attribute_values, max_size=3)).map(
    lambda pair: {**image(pair[0]), **pair[1]}
)
images = st.one_of(random_images, mutated_images, json_values)
creation_times = st.one_of(
    change_times,
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    json_values,
)
precisions = st.sampled_from(["MICROSECOND", "MILLISECOND", "SECOND", None, 7])
dynamodbs = st.fixed_dictionaries(
    {},
    optional={
        "ApproximateCreationDateTime": creation_times,
        "ApproximateCreationDateTimePrecision": precisions,
        "NewImage": images,
        "OldImage": images,
        "Keys": images,
    },
)
stream_records = st.fixed_dictionaries(
    {},
    optional={
        "eventID": st.text(max_size=6) | json_scalars,
        "eventName": st.sampled_from(["INSERT", "MODIFY", "REMOVE"]) | json_scalars,
        "dynamodb": dynamodbs | json_values,
        "ApproximateCreationDateTimePrecision": precisions,
        "awsRegion": st.just("us-east-1"),
    },
)


def _check(result, data: bytes) -> None:
    assert type(result) in (Archivable, Rejected, Skipped)
    if type(result) is Rejected:
        assert isinstance(result.message, str) and result.message
        assert isinstance(result.original, str)
    elif type(result) is Archivable:
        assert result.record_type in RECORD_TYPES
        _conforms(result.record_type, result.record)
        assert WINDOW.first.isoformat() <= result.partition_date <= WINDOW.last.isoformat()


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_any_bytes_never_raise(data):
    _check(decode(data), data)


@FAST
@given(stream_records)
def test_any_stream_record_never_raises(document):
    data = orjson.dumps(document)
    _check(decode(data), data)


# ---------------------------------------------------------------------------------------------
# No PII of a REMOVE in what is kept: the archived record, the error message, the original
# ---------------------------------------------------------------------------------------------

secrets = st.text(alphabet=string.ascii_letters, min_size=4, max_size=8).map(lambda s: f"SECRET{s}")
pii_attributes = st.builds(
    lambda prefix, secret, form: form(f"{prefix} {secret}"),
    st.text(max_size=6),
    secrets,
    st.sampled_from(
        [
            lambda v: {"S": v},
            lambda v: {"N": v},
            lambda v: {"L": [{"S": v}]},
            lambda v: {"S": v, "N": "1"},
            lambda v: v,
        ]
    ),
)


# Shrinking these examples costs seconds; the assertion message already shows the PII kept.
@settings(FAST, report_multiple_bugs=False, phases=[Phase.explicit, Phase.reuse, Phase.generate])
@given(
    item=valid_items,
    pii_values=st.dictionaries(st.sampled_from(PII_FIELDS), pii_attributes, min_size=1),
    when=st.sampled_from([1_705_314_030_123, "yesterday", 1e300]),
    noise=st.dictionaries(names, attribute_values, max_size=2),
)
@example(
    item={"type": "event", "id": "e"},
    pii_values={"phoneNumber": {"N": "+1 SECRETphone"}},
    when=1_705_314_030_123,
    noise={},
)
@example(
    item={"type": "event", "id": "e"},
    pii_values={"email": "SECRETbare"},
    when=1_705_314_030_123,
    noise={},
)
def test_a_remove_never_keeps_pii(item, pii_values, when, noise):
    old_image = {**image(item), **noise, **pii_values}
    document = {
        "eventID": "e",
        "eventName": "REMOVE",
        "dynamodb": {"ApproximateCreationDateTime": when, "OldImage": old_image},
    }
    result = decode(orjson.dumps(document))
    assert type(result) in (Archivable, Rejected, Skipped)
    if type(result) is Rejected:
        kept = result.message + result.original
    elif type(result) is Archivable:
        kept = orjson.dumps(result.record).decode()
    else:
        return
    assert "SECRET" not in kept, kept


PII_OF_TYPE = {
    t: [n for n in PII_FIELDS if n in {f["name"] for f in avro_schema(t)["fields"]}] or ["email"]
    for t in RECORD_TYPES
}


@FAST
@given(
    record_type=st.sampled_from(RECORD_TYPES),
    prefix=st.text(alphabet=' ,:{}[]"\\ab', max_size=6),
    secret=secrets,
    data=st.data(),
)
def test_a_truncated_remove_never_keeps_pii(record_type, prefix, secret, data):
    # an unparseable payload that mentions REMOVE: its PII values are redacted in the kept copy
    name = data.draw(st.sampled_from(PII_OF_TYPE[record_type]))
    payload = change("REMOVE", valid_item(record_type, **{name: f"{prefix} {secret}"}))
    # cut anywhere from the PII attribute's name on (earlier cuts hold no PII)
    start = payload.index(f'"{name}"'.encode())
    cut = data.draw(st.integers(min_value=start, max_value=len(payload) - 1))
    result = decode(payload[:cut])
    assert type(result) is Rejected
    assert "SECRET" not in result.original, result.original


# ---------------------------------------------------------------------------------------------
# (3) unmarshal(attribute(x)) == x
# ---------------------------------------------------------------------------------------------

plain_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(10**38) + 1, max_value=10**38 - 1),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(),
        st.binary(max_size=16),
    ),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


def _same(a, b) -> bool:
    """Equal, and of the same types all the way down (True is not 1, 1 is not 1.0)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return a == b


@settings(max_examples=300, deadline=None)
@given(plain_values)
def test_unmarshal_inverts_attribute(value):
    assert _same(unmarshal(attribute(value), "p", "x"), value)


@settings(max_examples=300, deadline=None)
@given(plain_values)
def test_unmarshal_inverts_attribute_through_json(value):
    marshalled = orjson.loads(orjson.dumps(attribute(value)))
    assert _same(unmarshal(marshalled, "p", "x"), value)


@settings(max_examples=150, deadline=None)
@given(
    st.one_of(
        st.frozensets(st.text(max_size=6), min_size=1, max_size=5),
        st.frozensets(st.integers(min_value=-(10**38) + 1, max_value=10**38 - 1), min_size=1),
        st.frozensets(st.binary(max_size=6), min_size=1, max_size=5),
    )
)
def test_sets_round_trip_in_order(members):
    marshalled = attribute(members)
    value = unmarshal(marshalled, "p", "x")
    assert isinstance(value, list)
    assert len(value) == len(members)
    assert set(value) == members
    (tag,) = marshalled
    if tag == "SS":
        assert value == marshalled["SS"]
