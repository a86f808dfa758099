"""Checkpoints: the sensor cursor's round trip, and batch names."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from demand_assets.stream.checkpoints import SHARD_END, batch_name, dump, load
from demand_assets.stream.kinesis import StreamReader

S3_KEY_PART = re.compile(r"^[A-Za-z0-9_-]+$")

CHECKPOINTS = {
    "shardId-000000000002": "49655463017593939349021547623148372498624353271383506978",  # AWS-like
    "shardId-000000000000": SHARD_END,
    "shardId-000000000003": "AT_TIMESTAMP:2026-03-01T12:00:00.123456+00:00",
    "shardId-000000000001": "7",
}
FIRST_READ = {"shardId-000000000000": "41", "shardId-000000000001": "17"}
ARRIVAL = datetime(2026, 3, 1, 12, 0, 5, 250_000, tzinfo=UTC)
ARRIVALS = [pytest.param(None, id="no-arrival"), pytest.param(ARRIVAL, id="arrival")]

shard_ids = st.integers(min_value=0, max_value=10**6).map(lambda i: f"shardId-{i:012d}")
sequence_numbers = st.integers(min_value=0, max_value=10**56).map(str)
positions = st.dictionaries(shard_ids, sequence_numbers, max_size=8)
checkpoint_values = st.one_of(
    sequence_numbers,
    st.just(SHARD_END),
    st.datetimes().map(lambda t: f"AT_TIMESTAMP:{t.isoformat()}"),
)


# -- load / dump ----------------------------------------------------------------------------------
@pytest.mark.parametrize("cursor", [None, ""])
def test_no_cursor_is_no_checkpoints(cursor):
    assert load(cursor) == {}


def test_round_trip():
    assert load(dump(CHECKPOINTS)) == CHECKPOINTS
    assert load(dump({})) == {}


@given(st.dictionaries(shard_ids, checkpoint_values, max_size=12))
def test_round_trip_of_any_checkpoints(checkpoints):
    loaded = load(dump(checkpoints))
    assert loaded == checkpoints
    assert all(type(v) is str for v in loaded.values())  # 56-digit numbers stay exact strings


def test_dump_is_canonical():
    backwards = dict(reversed(list(CHECKPOINTS.items())))
    assert dump(backwards) == dump(CHECKPOINTS)
    assert orjson.loads(dump(CHECKPOINTS)) == {"shards": CHECKPOINTS}


def test_a_cursor_without_shards_is_no_checkpoints():
    assert load('{"other": 1}') == {}
    assert load(orjson.dumps({"shards": FIRST_READ, "other": 1}).decode()) == FIRST_READ


# -- batch_name -----------------------------------------------------------------------------------
@pytest.mark.parametrize("arrival", ARRIVALS)
def test_batch_name_is_deterministic_and_independent_of_dict_order(arrival):
    name = batch_name("demand", FIRST_READ, arrival)
    assert batch_name("demand", dict(FIRST_READ), arrival) == name
    assert batch_name("demand", dict(reversed(list(FIRST_READ.items()))), arrival) == name
    assert S3_KEY_PART.match(name)


@pytest.mark.parametrize("arrival", ARRIVALS)
@pytest.mark.parametrize(
    ("stream", "first_read"),
    [
        ("demand", {**FIRST_READ, "shardId-000000000001": "18"}),  # one position moved
        ("demand", {"shardId-000000000000": "41"}),  # a shard fewer
        ("demand", {**FIRST_READ, "shardId-000000000002": "1"}),  # a shard more
        ("demand", {"shardId-000000000000": "17", "shardId-000000000001": "41"}),  # swapped
        ("demand", {}),
        ("demand-2", FIRST_READ),  # another stream
    ],
)
def test_batch_name_differs_for_other_positions(stream, first_read, arrival):
    assert batch_name(stream, first_read, arrival) != batch_name("demand", FIRST_READ, arrival)


def test_batch_name_with_an_arrival_leads_with_its_utc_second():
    name = batch_name("demand", FIRST_READ, ARRIVAL)
    assert name.startswith("20260301T120005Z-")
    elsewhere = ARRIVAL.astimezone(timezone(timedelta(hours=-5)))  # the same instant
    assert batch_name("demand", FIRST_READ, elsewhere) == name
    later = batch_name("demand", FIRST_READ, ARRIVAL + timedelta(seconds=1))
    assert later > name  # names sort by arrival


@given(positions, positions)
def test_batch_names_are_equal_exactly_when_positions_are(a, b):
    assert (batch_name("demand", a) == batch_name("demand", b)) == (a == b)
    assert (batch_name("demand", a, ARRIVAL) == batch_name("demand", b, ARRIVAL)) == (a == b)


@given(
    st.text(max_size=40),
    positions,
    st.none()
    | st.datetimes(
        min_value=datetime(2000, 1, 1),
        max_value=datetime(2100, 1, 1),
        timezones=st.sampled_from([UTC, timezone(timedelta(hours=9, minutes=30))]),
    ),
    st.randoms(use_true_random=False),
)
def test_batch_name_is_an_s3_key_part_whatever_the_input(stream, first_read, arrival, rnd):
    name = batch_name(stream, first_read, arrival)
    assert S3_KEY_PART.match(name) and len(name) <= 64
    shuffled = list(first_read.items())
    rnd.shuffle(shuffled)
    assert batch_name(stream, dict(shuffled), arrival) == name


# -- with the reader ------------------------------------------------------------------------------
def test_a_repeated_tick_names_its_batch_the_same_and_the_next_one_differently(kinesis, settings):
    """A tick repeated after a crash starts from the same (stored) cursor, reads the same first
    records and so names its batch the same; the following tick's batch has another name."""
    stream = settings.stream_name
    for i in range(60):
        kinesis.put_record(StreamName=stream, Data=f"r{i}".encode(), PartitionKey=f"k{i}")
    reader = StreamReader(kinesis, stream, max_records=25)

    cursor = dump({})
    tick = reader.read(load(cursor))
    repeated = reader.read(load(cursor))
    assert [r.data for r in repeated.records] == [r.data for r in tick.records]
    assert name(stream, repeated) == name(stream, tick)

    cursor = dump(tick.checkpoints)
    following = reader.read(load(cursor))
    assert not {r.data for r in following.records} & {r.data for r in tick.records}
    assert name(stream, following) != name(stream, tick)
    assert S3_KEY_PART.match(name(stream, following))


def name(stream, read) -> str:
    """As the sensor names a batch."""
    return batch_name(stream, read.first_read, min(r.arrival for r in read.records))
