"""StreamReader against a real Kinesis endpoint (the session's moto server, over HTTP).

Nothing of ours is patched. Throttling is answered on the wire by the fault proxy
(`demand_assets_tests.faults.proxy`), so that botocore's standard retries run as against AWS;
faults botocore does not retry are injected at the boto3 boundary by `FaultyClient`, a proxy that
forwards to the real client. Time is faked through the reader's own `sleep=` / `clock=`
parameters. The one patch is to moto itself (`route_puts_to_open_shards`), see the reshard tests.
"""

from __future__ import annotations

import logging
import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

import orjson
import pytest
from botocore.exceptions import ClientError
from moto.kinesis import models as moto_kinesis

from demand_assets.aws import KINESIS_MAX_ATTEMPTS, error_code
from demand_assets.aws import client as aws_client
from demand_assets.stream.checkpoints import SHARD_END
from demand_assets.stream.kinesis import AT_TIMESTAMP, StreamReader
from demand_assets.traffic.generator import ChangeGenerator
from demand_assets_tests.faults.proxy import Fault, FaultProxy

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
READER_LOG = "demand_assets.stream.kinesis"  # the reader's default logger
THROTTLED = "ProvisionedThroughputExceededException"
EXPIRED = "ExpiredIteratorException"
NOT_FOUND = "ResourceNotFoundException"
ARRIVAL = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
MILLISECOND = timedelta(milliseconds=1)


# -- helpers --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Put:
    shard_id: str
    sequence_number: str
    data: bytes


def generated(n: int, seed: int) -> list[tuple[bytes, str]]:
    changes = ChangeGenerator(seed=seed, now=NOW).changes(n)
    payloads = [(c.data, c.partition_key) for c in changes]
    assert len({data for data, _ in payloads}) == n  # every record is recognisable
    return payloads


def labelled(label: str, n: int) -> list[tuple[bytes, str]]:
    return [(f"{label}-{i}".encode(), f"{label}-key-{i}") for i in range(n)]


def put(kinesis, stream: str, payloads: list[tuple[bytes, str]]) -> list[Put]:
    """Put the payloads in order; where each landed, as Kinesis answered."""
    landed = []
    for i in range(0, len(payloads), 500):
        chunk = payloads[i : i + 500]
        response = kinesis.put_records(
            StreamName=stream, Records=[{"Data": d, "PartitionKey": k} for d, k in chunk]
        )
        assert response["FailedRecordCount"] == 0
        landed += [
            Put(r["ShardId"], r["SequenceNumber"], d)
            for r, (d, _) in zip(response["Records"], chunk, strict=True)
        ]
    return landed


def in_shard(puts: list[Put], shard_id: str) -> list[tuple[str, bytes]]:
    return [(p.sequence_number, p.data) for p in puts if p.shard_id == shard_id]


def got_in_shard(records, shard_id: str) -> list[tuple[str, bytes]]:
    return [(r.seq, r.data) for r in records if r.shard == shard_id]


def shard_ids(kinesis, stream: str) -> list[str]:
    return [s["ShardId"] for s in kinesis.list_shards(StreamName=stream)["Shards"]]


def read_until_empty(reader: StreamReader, checkpoints: dict, limit: int = 200):
    """Consecutive reads, each fed the previous read's checkpoints, until one returns nothing."""
    results = []
    for _ in range(limit):
        result = reader.read(checkpoints)
        if not result.records:
            assert result.checkpoints == checkpoints, "an empty read moved a checkpoint"
            return results, checkpoints
        results.append(result)
        checkpoints = result.checkpoints
    raise AssertionError(f"still reading after {limit} reads")


def assert_checkpoints_cover(result, before: dict) -> None:
    """Each shard's checkpoint is the last record returned from it; unread shards kept theirs."""
    for shard_id, checkpoint in result.checkpoints.items():
        returned = [r.seq for r in result.records if r.shard == shard_id]
        if checkpoint == SHARD_END:
            continue
        if returned:
            assert checkpoint == returned[-1], shard_id
            assert result.first_read[shard_id] == returned[0], shard_id
        elif not checkpoint.startswith(AT_TIMESTAMP):
            assert checkpoint == before[shard_id], shard_id
    for shard_id, checkpoint in before.items():
        assert shard_id in result.checkpoints, f"{shard_id}'s checkpoint was dropped"
        if checkpoint == SHARD_END:
            assert result.checkpoints[shard_id] == SHARD_END


def warnings_with(caplog, text: str) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == READER_LOG and r.levelno == logging.WARNING and text in r.getMessage()
    ]


class FaultyClient:
    """A Kinesis client that forwards every call to the real one, except that `fault(operation,
    n)` may name an error code to raise (as botocore's ClientError) instead of making the n-th
    call (1-based) of that operation. It records each call, and can cap `Limit` on GetRecords
    (Kinesis may always return fewer records than asked), so that one read takes several calls
    per shard. `before_call` runs ahead of every call, e.g. to advance a fake clock."""

    def __init__(
        self,
        client,
        fault: Callable[[str, int], str | None] = lambda operation, n: None,
        *,
        records_per_call: int | None = None,
        before_call: Callable[[str], None] = lambda operation: None,
    ):
        self._client = client
        self._fault = fault
        self._records_per_call = records_per_call
        self._before_call = before_call
        self.calls: Counter[str] = Counter()
        self.log: list[tuple[str, dict, str | None]] = []  # (operation, kwargs, error code)

    def __getattr__(self, name: str):
        target = getattr(self._client, name)
        if name not in self._client.meta.method_to_api_mapping:
            return target  # not an AWS operation: meta, get_paginator, ...

        def call(**kwargs):
            self._before_call(name)
            self.calls[name] += 1
            code = self._fault(name, self.calls[name])
            self.log.append((name, kwargs, code))
            if code:
                operation = "".join(part.title() for part in name.split("_"))
                raise ClientError(
                    {"Error": {"Code": code, "Message": f"injected #{self.calls[name]}"}},
                    operation,
                )
            if name == "get_records" and self._records_per_call:
                kwargs = {**kwargs, "Limit": min(kwargs["Limit"], self._records_per_call)}
            return target(**kwargs)

        return call

    def iterator_requests(self, shard_id: str | None = None) -> list[dict]:
        return [
            kwargs
            for name, kwargs, code in self.log
            if name == "get_shard_iterator"
            and code is None
            and (shard_id is None or kwargs["ShardId"] == shard_id)
        ]


def on_call(operation: str, n: int, code: str) -> Callable[[str, int], str | None]:
    return lambda op, k: code if (op, k) == (operation, n) else None


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


# -- 1. exactly once over consecutive bounded reads -----------------------------------------------
def test_bounded_reads_return_every_record_exactly_once_in_shard_order(kinesis, settings):
    stream = settings.stream_name
    putting = datetime.now(UTC)
    puts = put(kinesis, stream, generated(1000, seed=11))
    put_done = datetime.now(UTC)
    shards = shard_ids(kinesis, stream)
    assert len(shards) == 2 and all(in_shard(puts, s) for s in shards)  # both shards hold data

    reader = StreamReader(kinesis, stream, "TRIM_HORIZON", max_records=100)
    checkpoints: dict[str, str] = {}
    records = []
    for _ in range(10):
        result = reader.read(checkpoints)
        assert len(result.records) == 100  # the bound, exactly: never more, and full while data
        assert_checkpoints_cover(result, checkpoints)
        records += result.records
        checkpoints = result.checkpoints

    # Nothing after the end: further reads return nothing and keep the checkpoints.
    for _ in range(2):
        tail = reader.read(checkpoints)
        assert tail.records == [] and tail.checkpoints == checkpoints

    assert Counter(r.data for r in records) == Counter(p.data for p in puts)  # exactly once
    for shard_id in shards:
        assert got_in_shard(records, shard_id) == in_shard(puts, shard_id)  # in shard order
        assert checkpoints[shard_id] == in_shard(puts, shard_id)[-1][0]
    # When each record reached the stream, as ISO-8601 UTC with milliseconds (`….sssZ`).
    for record in records:
        assert ARRIVAL.fullmatch(record.arrival), record.arrival
        arrival = datetime.fromisoformat(record.arrival)
        assert putting - MILLISECOND <= arrival <= put_done + MILLISECOND, record.arrival


def test_records_put_between_reads_are_read_next_and_only_then(kinesis, settings):
    stream = settings.stream_name
    reader = StreamReader(kinesis, stream, "TRIM_HORIZON", max_records=1_000)
    first = put(kinesis, stream, labelled("first", 30))
    one = reader.read({})
    second = put(kinesis, stream, labelled("second", 30))
    two = reader.read(one.checkpoints)
    assert sorted(r.data for r in one.records) == sorted(p.data for p in first)
    assert sorted(r.data for r in two.records) == sorted(p.data for p in second)
    assert reader.read(two.checkpoints).records == []


# -- 2. start positions ---------------------------------------------------------------------------
def test_trim_horizon_reads_records_put_before_the_first_read(kinesis, settings):
    puts = put(kinesis, settings.stream_name, labelled("old", 40))
    result = StreamReader(kinesis, settings.stream_name, "TRIM_HORIZON").read({})
    assert Counter(r.data for r in result.records) == Counter(p.data for p in puts)
    assert set(result.checkpoints) == {p.shard_id for p in puts}


def test_latest_skips_older_records_and_reads_those_put_after_the_first_read(kinesis, settings):
    stream = settings.stream_name
    put(kinesis, stream, labelled("before", 40))

    first = StreamReader(kinesis, stream, "LATEST").read({})
    assert first.records == []
    # The first read pins LATEST to its own moment in every shard, so the next tick starts there.
    assert set(first.checkpoints) == set(shard_ids(kinesis, stream))
    assert all(c.startswith(AT_TIMESTAMP) for c in first.checkpoints.values())

    after = put(kinesis, stream, labelled("after", 40))
    assert {p.shard_id for p in after} == set(first.checkpoints)  # both shards get new records
    results, _ = read_until_empty(StreamReader(kinesis, stream, "LATEST"), first.checkpoints)
    records = [r for result in results for r in result.records]
    assert Counter(r.data for r in records) == Counter(p.data for p in after)


def test_latest_pin_survives_reads_that_find_nothing(kinesis, settings):
    stream = settings.stream_name
    put(kinesis, stream, labelled("before", 10))
    reader = StreamReader(kinesis, stream, "LATEST")
    first = reader.read({})
    again = reader.read(first.checkpoints)  # a later tick with nothing new keeps the pin
    assert again.records == [] and again.checkpoints == first.checkpoints
    after = put(kinesis, stream, labelled("after", 10))
    assert sorted(r.data for r in reader.read(again.checkpoints).records) == sorted(
        p.data for p in after
    )


@pytest.mark.parametrize(
    "spell",
    [
        pytest.param(lambda t: t.isoformat(), id="utc-offset"),
        pytest.param(lambda t: t.isoformat().replace("+00:00", "Z"), id="Z"),
        pytest.param(lambda t: t.astimezone(timezone(timedelta(hours=2))).isoformat(), id="+02"),
    ],
)
def test_at_timestamp_starts_at_that_time(kinesis, settings, spell):
    stream = settings.stream_name
    put(kinesis, stream, labelled("before", 40))
    time.sleep(0.02)
    start = datetime.now(UTC)
    time.sleep(0.02)
    after = put(kinesis, stream, labelled("after", 40))

    reader = StreamReader(kinesis, stream, AT_TIMESTAMP + spell(start))
    results, checkpoints = read_until_empty(reader, {})
    records = [r for result in results for r in result.records]
    assert Counter(r.data for r in records) == Counter(p.data for p in after)
    for shard_id in shard_ids(kinesis, stream):
        assert got_in_shard(records, shard_id) == in_shard(after, shard_id)

    later = put(kinesis, stream, labelled("later", 20))
    assert sorted(r.data for r in reader.read(checkpoints).records) == sorted(p.data for p in later)


def test_at_timestamp_in_the_future_reads_nothing_yet(kinesis, settings):
    put(kinesis, settings.stream_name, labelled("old", 20))
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert StreamReader(kinesis, settings.stream_name, AT_TIMESTAMP + future).read({}).records == []


@pytest.mark.parametrize("start", ["EARLIEST", "latest", "AT_TIMESTAMP", "2024-01-01T00:00:00"])
def test_unknown_start_is_refused(start):
    with pytest.raises(ValueError, match="DEMAND_STREAM_START"):
        StreamReader(object(), "s", start)


# -- 3. resharding --------------------------------------------------------------------------------
#
# How the case is built, and why. moto 5.2.5 routes a put to the FIRST shard whose hash range
# holds the key, open or closed, so after a split the closed parent keeps receiving writes and
# its children never get any: a reshard cannot be observed as such. Worse, moto's split_shard
# empties the parent and re-puts its records through that same routing. So the order matters:
#   1. put records while the stream has its original shards (they land in the parents);
#   2. split (or update_shard_count 2 -> 4) with moto's routing untouched: the re-put sends the
#      parent's records straight back to the parent, renumbered 1..n in the same order, and the
#      parent's EndingSequenceNumber becomes n;
#   3. only then patch moto's Stream.get_shard_for_key to skip closed shards (the test-only fix
#      from the moto notes), so that records put after the split land in the open children, as on
#      AWS. Patching before step 2 would move the parent's records into the children.
# moto also never ends a closed shard's iterator (no null NextShardIterator), so the reader can
# only learn that a parent is finished from its EndingSequenceNumber; the tests check that it does.


def route_puts_to_open_shards(monkeypatch) -> None:
    original = moto_kinesis.Stream.get_shard_for_key

    def open_only(self, partition_key, explicit_hash_key):
        shard = original(self, partition_key, explicit_hash_key)
        if shard is not None and not shard.is_open:
            key = (
                int(explicit_hash_key)
                if explicit_hash_key
                else int(moto_kinesis.md5_hash(partition_key.encode()).hexdigest(), 16)
            )
            shard = next(
                s
                for s in self.shards.values()
                if s.is_open and s.starting_hash <= key < s.ending_hash
            )
        return shard

    monkeypatch.setattr(moto_kinesis.Stream, "get_shard_for_key", open_only)


def reshard(kinesis, stream: str, how: str) -> None:
    if how == "split":
        shard = kinesis.list_shards(StreamName=stream)["Shards"][0]
        low = int(shard["HashKeyRange"]["StartingHashKey"])
        high = int(shard["HashKeyRange"]["EndingHashKey"])
        kinesis.split_shard(
            StreamName=stream,
            ShardToSplit=shard["ShardId"],
            NewStartingHashKey=str((low + high) // 2),
        )
    else:
        kinesis.update_shard_count(
            StreamName=stream, TargetShardCount=4, ScalingType="UNIFORM_SCALING"
        )


@dataclass
class Resharded:
    before: list[Put]  # put before the reshard, as they sit in the shards after it
    after: list[Put]  # put after it
    children: dict[str, str]  # child -> parent
    ending: dict[str, str]  # closed parent -> EndingSequenceNumber

    @property
    def puts(self) -> list[Put]:
        return self.before + self.after


def build_resharded(kinesis, stream: str, how: str, monkeypatch) -> Resharded:
    before = put(kinesis, stream, generated(120, seed=21))
    reshard(kinesis, stream, how)
    route_puts_to_open_shards(monkeypatch)
    after = put(kinesis, stream, generated(120, seed=22))

    listed = kinesis.list_shards(StreamName=stream)["Shards"]
    children = {s["ShardId"]: s["ParentShardId"] for s in listed if "ParentShardId" in s}
    ending = {
        s["ShardId"]: s["SequenceNumberRange"]["EndingSequenceNumber"]
        for s in listed
        if "EndingSequenceNumber" in s["SequenceNumberRange"]
    }
    parents = {"shardId-000000000000"} | (set() if how == "split" else {"shardId-000000000001"})
    assert set(ending) == set(children.values()) == parents
    # The case is what we meant: each parent still holds exactly its pre-split records, in order,
    # and ends at the last of them; records put after the split went to open shards only, and
    # every child got some.
    for parent, last in ending.items():
        held = kinesis.get_records(
            ShardIterator=kinesis.get_shard_iterator(
                StreamName=stream, ShardId=parent, ShardIteratorType="TRIM_HORIZON"
            )["ShardIterator"],
            Limit=10_000,
        )["Records"]
        assert [r["Data"] for r in held] == [p.data for p in before if p.shard_id == parent]
        assert [r["SequenceNumber"] for r in held] == [s for s, _ in in_shard(before, parent)]
        assert held[-1]["SequenceNumber"] == last
    assert not {p.shard_id for p in after} & set(ending)
    assert set(children) <= {p.shard_id for p in after}
    return Resharded(before, after, children, ending)


@pytest.mark.parametrize("how", ["split", "update_shard_count"])
def test_parent_is_read_to_its_end_before_its_children(kinesis, settings, monkeypatch, caplog, how):
    caplog.set_level(logging.INFO, logger=READER_LOG)
    stream = settings.stream_name
    case = build_resharded(kinesis, stream, how, monkeypatch)

    result = StreamReader(kinesis, stream, "TRIM_HORIZON").read({})

    assert Counter(r.data for r in result.records) == Counter(p.data for p in case.puts)
    order = [r.shard for r in result.records]
    for child, parent in case.children.items():
        last_of_parent = max(i for i, s in enumerate(order) if s == parent)
        first_of_child = min(i for i, s in enumerate(order) if s == child)
        assert last_of_parent < first_of_child, (parent, child)
        # the child is read from TRIM_HORIZON: all it holds, from its first record
        assert got_in_shard(result.records, child) == in_shard(case.after, child)
        assert got_in_shard(result.records, child)[0][0] == "1"
    for parent in case.ending:
        assert got_in_shard(result.records, parent) == in_shard(case.before, parent)
        assert result.checkpoints[parent] == SHARD_END
        assert any(parent in m and "end" in m for m in caplog.messages)
    for shard_id in set(order) - set(case.ending):
        assert result.checkpoints[shard_id] == got_in_shard(result.records, shard_id)[-1][0]

    # And then nothing more: SHARD_END parents are not read again, the children are caught up.
    tail = StreamReader(kinesis, stream, "TRIM_HORIZON").read(result.checkpoints)
    assert tail.records == [] and tail.checkpoints == result.checkpoints


@pytest.mark.parametrize("how", ["split", "update_shard_count"])
def test_bounded_reads_do_not_start_children_before_the_parent_is_done(
    kinesis, settings, monkeypatch, how
):
    stream = settings.stream_name
    case = build_resharded(kinesis, stream, how, monkeypatch)
    # At most 5 records per GetRecords call, so that one read goes round the shards several
    # times and a child would get its turn while its parent still has records.
    client = FaultyClient(kinesis, records_per_call=5)
    reader = StreamReader(client, stream, "TRIM_HORIZON", max_records=13)

    checkpoints: dict[str, str] = {}
    records = []
    reads_with_parent_unfinished = 0
    for _ in range(100):
        result = reader.read(checkpoints)
        if not result.records:
            break
        assert len(result.records) <= 13
        assert_checkpoints_cover(result, checkpoints)
        for child, parent in case.children.items():
            if result.checkpoints.get(parent) != SHARD_END:
                reads_with_parent_unfinished += 1
                assert not got_in_shard(result.records, child), (parent, child)
                assert child not in result.checkpoints  # not even an iterator position
        records += result.records
        checkpoints = result.checkpoints
    else:
        raise AssertionError("reads never caught up")

    assert reads_with_parent_unfinished > 0  # the bound did cut a parent short
    assert Counter(r.data for r in records) == Counter(p.data for p in case.puts)
    order = [r.shard for r in records]
    for child, parent in case.children.items():
        assert max(i for i, s in enumerate(order) if s == parent) < min(
            i for i, s in enumerate(order) if s == child
        )
        assert checkpoints[parent] == SHARD_END
    for shard_id in {p.shard_id for p in case.puts}:
        assert got_in_shard(records, shard_id) == in_shard(case.puts, shard_id)


@pytest.mark.parametrize("start", ["TRIM_HORIZON", "LATEST"])
def test_reshard_between_reads_is_followed_without_loss(kinesis, settings, monkeypatch, start):
    """A reshard after the reader has checkpoints: the parents are read on from there to their
    end, then the children from TRIM_HORIZON (with LATEST too: a followed lineage is not
    pinned again, or the children's first records would be skipped)."""
    stream = settings.stream_name
    reader = StreamReader(kinesis, stream, start, max_records=1_000)
    put(kinesis, stream, labelled("zero", 20))
    zero = reader.read({})  # LATEST: pins both shards to now
    first = put(kinesis, stream, labelled("first", 40))
    one = reader.read(zero.checkpoints)
    assert sorted(r.data for r in one.records) == sorted(p.data for p in first)
    assert not any(c.startswith(AT_TIMESTAMP) for c in one.checkpoints.values())

    # Records put after the last read but before the reshard sit in the parents past their
    # checkpoints; records put after it land in the children (see the comment above).
    second = put(kinesis, stream, labelled("second", 40))
    reshard(kinesis, stream, "update_shard_count")
    route_puts_to_open_shards(monkeypatch)
    third = put(kinesis, stream, labelled("third", 40))
    listed = kinesis.list_shards(StreamName=stream)["Shards"]
    children = {s["ShardId"]: s["ParentShardId"] for s in listed if "ParentShardId" in s}

    results, checkpoints = read_until_empty(reader, one.checkpoints)
    records = [r for result in results for r in result.records]
    assert Counter(r.data for r in records) == Counter(p.data for p in second + third)
    order = [r.shard for r in records]
    for child, parent in children.items():
        assert max(i for i, s in enumerate(order) if s == parent) < min(
            i for i, s in enumerate(order) if s == child
        )
        assert got_in_shard(records, child) == in_shard(third, child)
        assert checkpoints[parent] == SHARD_END


def test_latest_on_a_resharded_stream_skips_old_records_and_reads_new_ones(
    kinesis, settings, monkeypatch
):
    """A first read with LATEST ignores everything already in the stream, the closed parents'
    and their children's alike, and the next read returns what was put in between."""
    stream = settings.stream_name
    case = build_resharded(kinesis, stream, "update_shard_count", monkeypatch)

    first = StreamReader(kinesis, stream, "LATEST").read({})
    assert first.records == []

    new = put(kinesis, stream, labelled("new", 60))
    assert {p.shard_id for p in new} == set(case.children)  # only the open children get them
    results, _ = read_until_empty(StreamReader(kinesis, stream, "LATEST"), first.checkpoints)
    records = [r for result in results for r in result.records]
    assert Counter(r.data for r in records) == Counter(p.data for p in new)


def test_vanished_parent_holds_its_children_back_for_that_read(
    kinesis, settings, monkeypatch, caplog
):
    stream = settings.stream_name
    case = build_resharded(kinesis, stream, "split", monkeypatch)
    (parent,) = case.ending
    client = FaultyClient(
        kinesis,
        lambda op, n: NOT_FOUND if op == "get_shard_iterator" and n == 1 else None,
    )
    result = StreamReader(client, stream).read({})
    skipped = {kwargs["ShardId"] for name, kwargs, code in client.log if code}
    assert skipped == {parent}
    assert parent not in result.checkpoints
    assert not {r.shard for r in result.records} & ({parent} | set(case.children))
    assert warnings_with(caplog, "vanished")

    results, _ = read_until_empty(StreamReader(client, stream), result.checkpoints)
    records = result.records + [r for later in results for r in later.records]
    assert Counter(r.data for r in records) == Counter(p.data for p in case.puts)


# -- 4. faults ------------------------------------------------------------------------------------
#
# Throttling is answered on the wire, by the fault proxy in front of the moto server, to a client
# made as the stream resource makes the reader's (`aws.client`, KINESIS_MAX_ATTEMPTS attempts in
# botocore's standard mode): botocore's own retries absorb a short burst, and the reader backs off
# and retries what outlasts them, within its time bound. Faults botocore does not retry (expired
# iterators, vanished shards) are raised at the client boundary by `FaultyClient`, as botocore
# raises them.
@pytest.fixture
def wire(aws, kinesis, monkeypatch):
    """The fault proxy; `reader_client()` goes through it. The `kinesis` fixture's client, made
    before, reaches moto directly: what a test puts is never faulted."""
    proxy = FaultProxy(aws).start()
    monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
    yield proxy
    proxy.stop()


def reader_client():
    """The reader's client, made as the stream resource makes it."""
    return aws_client("kinesis", max_attempts=KINESIS_MAX_ATTEMPTS)


def wire_calls(proxy: FaultProxy) -> Counter[str]:
    """Kinesis calls that reached the proxy so far (answered or faulted), by operation."""
    return Counter(call.operation for call in list(proxy.calls) if call.service == "kinesis")


def throttle(operation: str, code: str, times: int | None) -> Fault:
    return Fault("kinesis", operation, status=400, code=code, times=times)


def assert_same_read(result, expected, puts: list[Put]) -> None:
    assert Counter(r.data for r in result.records) == Counter(p.data for p in puts)
    for shard_id in result.checkpoints:
        assert got_in_shard(result.records, shard_id) == got_in_shard(expected.records, shard_id)
    assert result.checkpoints == expected.checkpoints


def assert_reads_on_exactly_once(client, stream: str, kinesis, checkpoints: dict) -> None:
    """The following reads double nothing, and new records still come exactly once."""
    assert StreamReader(client, stream).read(checkpoints).records == []
    later = put(kinesis, stream, labelled("later", 20))
    more = StreamReader(client, stream).read(checkpoints)
    assert Counter(r.data for r in more.records) == Counter(p.data for p in later)


@pytest.mark.parametrize(
    ("operation", "code"),
    [
        ("GetRecords", THROTTLED),
        ("GetRecords", "ThrottlingException"),
        ("GetShardIterator", "LimitExceededException"),
        ("ListShards", "LimitExceededException"),
    ],
)
def test_a_throttled_call_is_retried_by_the_sdk_within_the_read(
    kinesis, settings, wire, operation, code
):
    stream = settings.stream_name
    puts = put(kinesis, stream, labelled("r", 40))
    client = reader_client()
    start = wire_calls(wire)
    expected = StreamReader(client, stream, sleep=pytest.fail).read({})
    clean = wire_calls(wire) - start

    (fault,) = wire.add(throttle(operation, code, times=1))
    start = wire_calls(wire)
    result = StreamReader(client, stream, sleep=pytest.fail).read({})
    calls = wire_calls(wire) - start

    # Retried in place by botocore: the same records and checkpoints as a read with no fault, one
    # more call of the throttled operation on the wire, and no back-off or retry of the reader's.
    assert fault.hits == 1
    assert_same_read(result, expected, puts)
    assert calls == clean + Counter({operation: 1})
    assert result.retries == 0
    wire.clear()
    assert_reads_on_exactly_once(client, stream, kinesis, result.checkpoints)


@pytest.mark.parametrize(
    ("operation", "code"),
    [
        ("GetRecords", THROTTLED),
        ("GetRecords", "ThrottlingException"),
        ("GetShardIterator", "LimitExceededException"),
    ],
)
def test_throttling_past_the_sdks_attempts_is_backed_off_and_retried_within_the_read(
    kinesis, settings, caplog, wire, operation, code
):
    stream = settings.stream_name
    puts = put(kinesis, stream, labelled("r", 40))
    client = reader_client()
    start = wire_calls(wire)
    expected = StreamReader(client, stream, sleep=pytest.fail).read({})
    clean = wire_calls(wire) - start

    # Every attempt botocore makes of one call is throttled: the reader gets the error.
    (fault,) = wire.add(throttle(operation, code, times=KINESIS_MAX_ATTEMPTS))
    sleeps: list[float] = []
    start = wire_calls(wire)
    result = StreamReader(client, stream, sleep=sleeps.append).read({})
    calls = wire_calls(wire) - start

    # Retried in the same read after one back-off of the reader's: the same records and
    # checkpoints as a read with no fault, and only the throttled calls added on the wire.
    assert fault.hits == KINESIS_MAX_ATTEMPTS
    assert_same_read(result, expected, puts)
    assert calls == clean + Counter({operation: KINESIS_MAX_ATTEMPTS})
    assert len(sleeps) == 1 and 0 < sleeps[0] <= 2.0
    assert result.retries == 1
    assert warnings_with(caplog, f"throttled ({code})")
    wire.clear()
    assert_reads_on_exactly_once(client, stream, kinesis, result.checkpoints)


def test_list_shards_throttled_past_the_sdks_attempts_fails_the_read_and_loses_nothing(
    kinesis, settings, wire
):
    """Listing the shards has no back-off of the reader's: past botocore's attempts the read
    fails, naming the error, before any record is read; the caller keeps its checkpoints, and
    the next read from them returns everything."""
    stream = settings.stream_name
    put(kinesis, stream, labelled("first", 20))
    client = reader_client()
    before = StreamReader(client, stream).read({}).checkpoints
    second = put(kinesis, stream, labelled("second", 20))

    (fault,) = wire.add(throttle("ListShards", "LimitExceededException", KINESIS_MAX_ATTEMPTS))
    start = wire_calls(wire)
    with pytest.raises(ClientError) as raised:
        StreamReader(client, stream, sleep=pytest.fail).read(before)
    assert error_code(raised.value) == "LimitExceededException"
    assert fault.hits == KINESIS_MAX_ATTEMPTS
    assert wire_calls(wire) - start == Counter({"ListShards": KINESIS_MAX_ATTEMPTS})

    wire.clear()
    again = StreamReader(client, stream).read(before)
    assert Counter(r.data for r in again.records) == Counter(p.data for p in second)


def test_persistent_throttling_ends_the_read_at_max_seconds_without_moving(kinesis, settings, wire):
    stream = settings.stream_name
    put(kinesis, stream, labelled("r", 20))
    client = reader_client()
    before = StreamReader(client, stream).read({}).checkpoints
    later = put(kinesis, stream, labelled("later", 20))

    (fault,) = wire.add(throttle("GetRecords", THROTTLED, times=None))  # until cleared
    clock = FakeClock()
    backoffs: list[float] = []

    def back_off(seconds: float) -> None:
        backoffs.append(seconds)
        clock.advance(seconds)

    reader = StreamReader(client, stream, max_seconds=5, sleep=back_off, clock=clock)
    start = wire_calls(wire)
    result = reader.read(before)  # would spin forever without the time bound
    calls = wire_calls(wire) - start
    wire.clear()

    assert result.records == [] and result.checkpoints == before
    assert 5 <= clock.now < 7
    # Every GetRecords on the wire was throttled, each of the reader's tries being botocore's
    # full attempts, and the reader backed off after each.
    assert len(backoffs) > 1 and result.retries == len(backoffs)
    assert calls["GetRecords"] == fault.hits == KINESIS_MAX_ATTEMPTS * len(backoffs)

    healthy = StreamReader(client, stream).read(result.checkpoints)
    assert Counter(r.data for r in healthy.records) == Counter(p.data for p in later)


# -- listing shards page by page ------------------------------------------------------------------
class PagedLikeAws(FaultProxy):
    """The proxy in front of moto, paging ListShards as AWS does where moto differs: a call with
    a `NextToken` must not name the stream (AWS answers InvalidArgumentException, "NextToken and
    StreamName cannot be provided together"), whereas moto wants it named, so the proxy names it
    for moto. And a page holds one shard (AWS's hold 1,000), so that two shards take two pages."""

    def __init__(self, upstream: str):
        super().__init__(upstream)
        self.list_requests: list[dict] = []  # ListShards parameters, as the client sent them
        self._streams: dict[str, str] = {}  # NextToken -> the stream it goes on listing

    def _forward(self, method: str, target: str, headers: dict, body: bytes):
        amz_target = next((v for k, v in headers.items() if k.lower() == "x-amz-target"), "")
        if not amz_target.endswith(".ListShards"):
            return super()._forward(method, target, headers, body)
        params = orjson.loads(body)
        self.list_requests.append(params)
        token = params.get("NextToken")
        if token and {"StreamName", "StreamARN"} & params.keys():
            error = {
                "__type": "InvalidArgumentException",
                "message": "NextToken and StreamName cannot be provided together.",
            }
            return 400, [("Content-Type", "application/x-amz-json-1.1")], orjson.dumps(error)
        stream = self._streams[token] if token else params["StreamName"]
        body = orjson.dumps({"MaxResults": 1, **params, "StreamName": stream})
        headers = {k: v for k, v in headers.items() if k.lower() != "content-length"}
        headers["Content-Length"] = str(len(body))
        status, answer_headers, payload = super()._forward(method, target, headers, body)
        if status == 200 and (following := orjson.loads(payload).get("NextToken")):
            self._streams[following] = stream
        return status, answer_headers, payload


def test_shards_are_listed_page_by_page_as_aws_pages_them(kinesis, settings, aws, monkeypatch):
    stream = settings.stream_name
    puts = put(kinesis, stream, labelled("r", 40))
    listed = kinesis.list_shards(StreamName=stream)["Shards"]
    assert len(listed) == 2
    proxy = PagedLikeAws(aws).start()
    try:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
        reader = StreamReader(reader_client(), stream)
        assert reader.list_shards() == listed
        # The first page names the stream, every later one only the token it was given.
        first, *later = proxy.list_requests
        assert first == {"StreamName": stream}
        assert len(later) == len(listed) - 1 and all(set(r) == {"NextToken"} for r in later)

        result = reader.read({})
        assert Counter(r.data for r in result.records) == Counter(p.data for p in puts)
        assert set(result.checkpoints) == {s["ShardId"] for s in listed}
    finally:
        proxy.stop()


def test_expired_iterator_is_renewed_from_the_checkpoint(kinesis, settings, caplog):
    stream = settings.stream_name
    puts = put(kinesis, stream, labelled("r", 60))
    shards = shard_ids(kinesis, stream)
    assert all(len(in_shard(puts, s)) > 10 for s in shards)

    # Five records per GetRecords call, so a shard takes several calls in one read. Calls 1 and 2
    # read five records from each shard; call 3 (the first shard's second) finds its iterator
    # expired, after the shard's checkpoint moved to its fifth record.
    client = FaultyClient(kinesis, on_call("get_records", 3, EXPIRED), records_per_call=5)
    result = StreamReader(client, stream).read({})

    assert Counter(r.data for r in result.records) == Counter(p.data for p in puts)
    for shard_id in shards:
        assert got_in_shard(result.records, shard_id) == in_shard(puts, shard_id)
    first_shard = shards[0]
    requests = client.iterator_requests(first_shard)
    assert [r["ShardIteratorType"] for r in requests] == ["TRIM_HORIZON", "AFTER_SEQUENCE_NUMBER"]
    assert requests[1]["StartingSequenceNumber"] == in_shard(puts, first_shard)[4][0]
    assert [r["ShardIteratorType"] for r in client.iterator_requests(shards[1])] == ["TRIM_HORIZON"]
    assert result.retries == 1
    assert warnings_with(caplog, "expired")

    assert StreamReader(client, stream).read(result.checkpoints).records == []


def test_expired_iterator_across_bounded_reads_loses_and_doubles_nothing(kinesis, settings):
    stream = settings.stream_name
    puts = put(kinesis, stream, labelled("r", 200))
    client = FaultyClient(
        kinesis,
        lambda op, n: EXPIRED if op == "get_records" and n % 4 == 0 else None,
        records_per_call=7,
    )
    results, _ = read_until_empty(StreamReader(client, stream, max_records=30), {})
    records = [r for result in results for r in result.records]
    assert Counter(r.data for r in records) == Counter(p.data for p in puts)
    for shard_id in shard_ids(kinesis, stream):
        assert got_in_shard(records, shard_id) == in_shard(puts, shard_id)
    assert sum(result.retries for result in results) > 0


@pytest.mark.parametrize("operation", ["get_shard_iterator", "get_records"])
def test_vanished_shard_is_skipped_for_the_read_with_its_checkpoint_unchanged(
    kinesis, settings, caplog, operation
):
    stream = settings.stream_name
    first = put(kinesis, stream, labelled("first", 30))
    reader = StreamReader(kinesis, stream)
    before = reader.read({}).checkpoints
    second = put(kinesis, stream, labelled("second", 30))
    vanished, other = shard_ids(kinesis, stream)  # the reader goes through shards in list order
    assert in_shard(second, vanished) and in_shard(second, other)

    client = FaultyClient(kinesis, on_call(operation, 1, NOT_FOUND))
    result = StreamReader(client, stream).read(before)

    assert got_in_shard(result.records, vanished) == []
    assert result.checkpoints[vanished] == before[vanished]
    assert got_in_shard(result.records, other) == in_shard(second, other)
    assert vanished not in result.first_read
    assert warnings_with(caplog, "vanished") and vanished in warnings_with(caplog, "vanished")[0]
    assert client.calls["get_records"] == (2 if operation == "get_records" else 1) + 1

    # The shard is back for the next read, which returns exactly what was skipped.
    results, checkpoints = read_until_empty(StreamReader(client, stream), result.checkpoints)
    records = result.records + [r for later in results for r in later.records]
    assert Counter(r.data for r in records) == Counter(p.data for p in second)
    assert not {r.data for r in records} & {p.data for p in first}
    assert checkpoints[vanished] == in_shard(second, vanished)[-1][0]


# -- 5. the time bound ----------------------------------------------------------------------------
def test_max_seconds_stops_the_read_and_checkpoints_cover_what_was_returned(kinesis, settings):
    stream = settings.stream_name
    puts = put(kinesis, stream, labelled("r", 80))
    clock = FakeClock()
    # Every GetRecords call takes one (fake) second, five records per call.
    client = FaultyClient(
        kinesis,
        records_per_call=5,
        before_call=lambda op: clock.advance(1.0) if op == "get_records" else None,
    )
    reader = StreamReader(client, stream, max_seconds=2.5, clock=clock)

    result = reader.read({})
    # Calls start at t=0, 1 and 2, before the 2.5 s deadline; at t=3 the second shard's turn
    # in the round is not taken.
    assert client.calls["get_records"] == 3
    assert len(result.records) == 15 < len(puts)
    assert_checkpoints_cover(result, {})
    for shard_id in shard_ids(kinesis, stream):
        returned = got_in_shard(result.records, shard_id)
        assert returned == in_shard(puts, shard_id)[: len(returned)]

    results, _ = read_until_empty(reader, result.checkpoints)
    records = result.records + [r for later in results for r in later.records]
    assert Counter(r.data for r in records) == Counter(p.data for p in puts)
    for shard_id in shard_ids(kinesis, stream):
        assert got_in_shard(records, shard_id) == in_shard(puts, shard_id)


def test_no_time_left_means_no_call_and_no_movement(kinesis, settings):
    stream = settings.stream_name
    put(kinesis, stream, labelled("r", 10))
    client = FaultyClient(kinesis)
    result = StreamReader(client, stream, max_seconds=0, clock=FakeClock()).read({"x": "1"})
    assert result.records == [] and result.checkpoints == {"x": "1"}
    assert client.calls["get_records"] == 0


# -- GetRecords parsed with orjson -----------------------------------------------------------------
def test_quick_parse_gives_what_botocores_parser_gives(aws, kinesis, settings):
    """The reader parses GetRecords bodies itself; a plain boto3 client reading the same shard
    must see exactly the same records, arrival times, iterator position and lag."""
    import boto3

    from demand_assets.stream.kinesis import parse_records_quickly

    stream = settings.stream_name
    put(kinesis, stream, generated(300, seed=31) + [(b"\x00\xff not utf-8", "k")])
    quick, plain = boto3.client("kinesis"), boto3.client("kinesis")
    parse_records_quickly(quick)
    parse_records_quickly(quick)  # registering twice parses once
    for shard_id in shard_ids(kinesis, stream):
        responses = []
        for client in (quick, plain):
            iterator = client.get_shard_iterator(
                StreamName=stream, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON"
            )["ShardIterator"]
            response = client.get_records(ShardIterator=iterator, Limit=1000)
            response.pop("ResponseMetadata")
            responses.append(response)
        mine, botocores = responses
        assert mine["Records"], shard_id
        assert [r["Data"] for r in mine["Records"]] == [r["Data"] for r in botocores["Records"]]
        assert mine["Records"] == botocores["Records"]
        assert mine["NextShardIterator"] == botocores["NextShardIterator"]
        assert mine.get("MillisBehindLatest") == botocores.get("MillisBehindLatest")


def test_quick_parse_leaves_errors_to_botocore(aws, kinesis, settings):
    import boto3

    from demand_assets.stream.kinesis import parse_records_quickly

    client = boto3.client("kinesis")
    parse_records_quickly(client)
    with pytest.raises(ClientError) as raised:
        client.get_records(ShardIterator="not-an-iterator" * 3)
    assert raised.value.response["Error"]["Code"]
