"""Resharding under the whole pipeline: changes put, ticked and archived; a shard split while
more changes sit unread in it; more put into the children; then ticks and archive runs until
idle, every file read back: each change once in each format. And the tick that reads the
parent to its end (and the children after it) SIGKILLed before its cursor is stored: the next
tick lands the very same batch, nothing lost, nothing doubled.

moto and resharding (moto 5.2.5; see also stream/test_kinesis.py, section 3):
- `split_shard` closes the parent, empties it and puts its records again through moto's own
  routing, which picks the first shard whose hash range holds the key, open or closed: the
  parent. So the parent keeps its records, numbered 1..n in the same order as before (the
  checkpoints the pipeline holds stay valid), with new arrival times, and its
  `EndingSequenceNumber` is its last record's.
- After the split moto still routes every put to the closed parent, never to the children;
  and since a closed shard's ending is its last record's, the parent's end would move with
  every put. On AWS a closed shard takes no more records. So, once the shard is split,
  `route_puts_to_open_shards` patches moto (the emulator, not the pipeline) to route each put
  to the open shard whose range holds its key, as AWS does. Patched before the split, it
  would move the parent's records into the children.
- moto never ends a closed shard's iterator; the reader knows a parent is done from its
  `EndingSequenceNumber`.
"""

from __future__ import annotations

import pytest
from moto.kinesis import models as moto_kinesis

from demand_assets.defs.sensor import load_cursor
from demand_assets.storage.intents import read_intent
from demand_assets.stream.checkpoints import SHARD_END
from demand_assets_tests.defs.operating import archive_of
from demand_assets_tests.faults.pipeline import FaultPipeline as Pipeline
from demand_assets_tests.faults.processes import Child, kill_when_held
from demand_assets_tests.faults.proxy import Fault
from demand_assets_tests.hardening import generated, table

PARENT = "shardId-000000000000"
HOLD = 120  # seconds a held call waits: far past the kill


@pytest.fixture
def pipeline(proxy, settings, s3, kinesis):
    return Pipeline.build(settings, s3, kinesis)


def route_puts_to_open_shards(monkeypatch) -> None:
    """moto routes a put to the open shard whose hash range holds its key, as AWS does."""
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


def records_in(kinesis, stream: str, shard: str, after: str | None = None) -> list[dict]:
    kwargs = (
        {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "StartingSequenceNumber": after}
        if after
        else {"ShardIteratorType": "TRIM_HORIZON"}
    )
    iterator = kinesis.get_shard_iterator(StreamName=stream, ShardId=shard, **kwargs)
    return kinesis.get_records(ShardIterator=iterator["ShardIterator"], Limit=10_000)["Records"]


def resharded(pipeline: Pipeline, monkeypatch, how: str, tail: int) -> dict[str, str]:
    """Changes put and landed by a tick (their run is left for later); `tail` more put into
    the shards (unread at the reshard); the reshard; more put, into the open shards.
    Returns child -> parent."""
    kinesis, stream = pipeline.kinesis, pipeline.settings.stream_name
    pipeline.put(generated(60, seed=61))
    assert pipeline.tick().run_requests
    checkpoints, _ = load_cursor(pipeline.cursor)
    if tail:
        pipeline.put(generated(tail, seed=62))
    reshard(kinesis, stream, how)
    route_puts_to_open_shards(monkeypatch)
    pipeline.put(generated(60, seed=63))

    listed = kinesis.list_shards(StreamName=stream)["Shards"]
    children = {s["ShardId"]: s["ParentShardId"] for s in listed if "ParentShardId" in s}
    ending = {
        s["ShardId"]: s["SequenceNumberRange"]["EndingSequenceNumber"]
        for s in listed
        if "EndingSequenceNumber" in s["SequenceNumberRange"]
    }
    # The case is what we meant: each parent closed, holding `tail`'s records unread past its
    # checkpoint (the pipeline's checkpoints still valid after moto's renumbering), and
    # ending at its last record; every child got records put after the reshard.
    assert set(ending) == set(children.values()) and PARENT in ending
    for parent, last in ending.items():
        held = records_in(kinesis, stream, parent)
        assert held[-1]["SequenceNumber"] == last
        unread = records_in(kinesis, stream, parent, checkpoints[parent])
        assert bool(unread) == bool(tail), (parent, len(unread))
    for child in children:
        assert records_in(kinesis, stream, child), child
    return children


def test_a_reshard_is_followed_by_the_pipeline_each_change_once(pipeline, monkeypatch):
    how = "split"  # the reader's tests cover update_shard_count (two parents) as well
    children = resharded(pipeline, monkeypatch, how, tail=30)

    runs = pipeline.settle()

    checkpoints, _ = load_cursor(pipeline.cursor)
    assert {checkpoints[p] for p in children.values()} == {SHARD_END}
    assert set(children) <= set(checkpoints)
    assert runs >= 1
    table(
        "Reshard under the pipeline",
        ("reshard", "then", "archive"),
        [
            (
                f"{how}: {len(set(children.values()))} parent(s) closed with 30 changes unread",
                f"ticks and {runs} archive run(s) until idle",
                pipeline.drained(),
            )
        ],
    )


# Where the tick that reads the parent to its end dies: after its intent (which holds the
# parent's end and the children's ranges), so that the next tick reads exactly that extent
# again across the reshard; or after landing whole, before the cursor that says so is stored.
# (Kills at the other points of a tick, mid-landing among them, are in test_killed_processes.)
RESHARD_KILLS = [
    pytest.param(
        30,
        Fault("s3", "PutObject", key_contains="/_batches/", action="hold", hold_seconds=HOLD),
        id="after-intent",
    ),
    pytest.param(
        0,  # the parent was read to its last record before the split: its end comes alone
        Fault("s3", "PutObject", key_contains="/_batches/", action="hold", hold_seconds=HOLD),
        id="after-intent-parent-without-records",
    ),
    pytest.param(
        30,
        Fault(
            "s3",
            "PutObject",
            key_contains="/_batches/",
            nth=2,
            action="hold",
            hold_seconds=HOLD,
            forward_first=True,
        ),
        id="after-landing",
    ),
]


@pytest.mark.parametrize(("tail", "fault"), RESHARD_KILLS)
def test_a_tick_killed_after_a_parent_reached_its_end_is_done_again(
    tail, fault, pipeline, proxy, monkeypatch
):
    children = resharded(pipeline, monkeypatch, "split", tail)
    (parent,) = set(children.values())
    before = pipeline.cursor
    (fault,) = proxy.add(fault)

    with Child(pipeline.settings, "tick", before) as tick:
        assert kill_when_held(tick, fault) == ""
    proxy.clear()
    assert pipeline.cursor == before  # nothing stored it
    start, _ = load_cursor(before)
    intent = read_intent(
        archive_of(pipeline.s3, pipeline.settings), pipeline.settings.stream_name, start
    )
    assert intent is not None
    assert intent.checkpoints[parent] == SHARD_END  # the killed tick had read the parent out
    assert set(children) <= set(intent.ranges)  # and then its children
    assert (parent in intent.ranges) is bool(tail)
    landed = set(pipeline.landing_objects())

    again = pipeline.tick()  # from the cursor the killed tick never stored
    assert set(landed) <= set(pipeline.landing_objects()), "the tick landed other objects"
    checkpoints, _ = load_cursor(again.cursor)
    assert checkpoints == intent.checkpoints  # where the killed tick would have left it
    runs = pipeline.settle()
    assert len(pipeline.summaries()) == 2  # the batch before the split, and this one
    table(
        "Tick killed after a parent shard reached its end",
        ("killed", "left behind", "then", "archive"),
        [
            (
                fault.describe(),
                f"intent: {parent} at its end, {len(children)} children read; "
                f"{len(landed)} landing objects",
                f"the next tick landed the same batch; {runs} more run(s)",
                pipeline.drained(),
            )
        ],
    )
