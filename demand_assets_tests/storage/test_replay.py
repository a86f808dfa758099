"""Replaying error documents on the moto server's S3: what now passes is landed once, with its
provenance; what still fails is kept under its current message; replaying twice, or crashing
between landing and rewriting the documents, lands nothing twice."""

from __future__ import annotations

import json
from datetime import date

import boto3
import orjson
import pytest

from demand_assets.records import PartitionWindow, Rejected, decode_change
from demand_assets.records.change import Change
from demand_assets.records.errors import error_document
from demand_assets.storage.archive import Archive
from demand_assets.storage.batches import land_batch
from demand_assets.storage.landing import landed_batches, read_landed
from demand_assets.storage.layout import Layout
from demand_assets.storage.pending import pending_batches
from demand_assets.storage.replay import error_keys, replay_errors
from demand_assets.storage.s3 import Bucket
from demand_assets_tests.builders import change, valid_item

NARROW = PartitionWindow(date(2020, 1, 1), date(2024, 12, 31))
WIDE = PartitionWindow(date(2020, 1, 1), date(2027, 12, 31))
TIME = "2024-01-15T10:20:30.123Z"


@pytest.fixture
def bucket(s3, settings) -> Bucket:
    return Bucket(s3, settings.bucket)


@pytest.fixture
def layout(settings) -> Layout:
    return Layout(settings.prefix)


@pytest.fixture
def archive(bucket, layout) -> Archive:
    return Archive(bucket, layout)


def sale(i: int, day: str = "2026-06-01") -> bytes:
    item = valid_item("sale", sk=f"sale#s-{i}", id=f"s-{i}", saleStartDateTime=f"{day}T10:00:00Z")
    return change("INSERT", item, event_id=f"sale-{i}")


def bad_demand(i: int) -> bytes:
    item = valid_item("demand", sk=f"demand#e-1#s-{i}", systemUserId="nope")
    return change("INSERT", item, event_id=f"bad-{i}")


def current_message(data: bytes, window: PartitionWindow = WIDE) -> str:
    """What the current rules say about a change that fails them."""
    result = decode_change(data, "shardId-7", "1", window)
    assert type(result) is Rejected
    return result.message


def put_document(bucket, layout, name, message, events, positions=True) -> str:
    texts = [e.decode() for e in events]
    where = (
        [
            {"shardId": "shardId-7", "sequenceNumber": str(100 + i), "arrival": TIME}
            for i in range(len(events))
        ]
        if positions
        else None
    )
    key = layout.error_key(TIME, name)
    bucket.put(key, orjson.dumps(error_document(message, texts, TIME, where, "b-1")))
    return key


def document(bucket, key) -> dict:
    return json.loads(bucket.get(key))


def landed(archive, record_type, day) -> list[Change]:
    return list(read_landed(archive, record_type, day, landed_batches(archive, record_type, day)))


def test_what_passes_now_is_landed_with_its_position_and_what_fails_is_kept(archive):
    bucket, layout = archive.bucket, archive.layout
    message = "sale record: saleStartDateTime: outside the partitions (an older window)"
    mixed = put_document(bucket, layout, "a", message, [sale(1), bad_demand(2), sale(3)])
    other = put_document(bucket, layout, "b", message, [sale(4, "2026-06-02")])

    report = replay_errors(archive, WIDE)

    assert (report.documents, report.events, report.archivable, report.still_failing) == (
        2,
        4,
        3,
        1,
    )
    assert report.touched() == {"sale": ["2026-06-01", "2026-06-02"]}
    (batch,) = report.batches
    changes = landed(archive, "sale", "2026-06-01")
    assert sorted(orjson.loads(c.data)["eventID"] for c in changes) == ["sale-1", "sale-3"]
    assert {(c.shard, c.seq, c.arrival) for c in changes} == {
        ("shardId-7", "100", TIME),
        ("shardId-7", "102", TIME),
    }
    assert landed_batches(archive, "sale", "2026-06-02") == [batch]
    # Pending for the next archive run, like a batch the stream sensor lands; nothing else is.
    assert pending_batches(archive, "sale").batches == {batch: {"2026-06-01": 2, "2026-06-02": 1}}
    assert not pending_batches(archive, "demand").batches
    # The demand fails for another reason than the document said: it moves to its own
    # document, with its position; the documents replayed in full are gone.
    assert error_keys(archive) == report.written
    (kept,) = (document(bucket, k) for k in report.written)
    assert "systemUserId" in kept["error"]["message"]
    assert kept["events"] == [bad_demand(2).decode()]
    assert kept["positions"] == [{"shardId": "shardId-7", "sequenceNumber": "101", "arrival": TIME}]
    assert kept["timestamp"] == TIME
    assert set(report.deleted) == {mixed, other}


def test_replaying_twice_lands_nothing_twice(archive):
    bucket, layout = archive.bucket, archive.layout
    message = "sale record: saleStartDateTime: outside the partitions (an older window)"
    put_document(bucket, layout, "a", message, [sale(1), sale(2, "2026-07-01")])
    still = put_document(bucket, layout, "c", current_message(bad_demand(3)), [bad_demand(3)])
    body = bucket.get(still)

    first = replay_errors(archive, WIDE)
    before = {k: bucket.get(k) for k in bucket.keys(layout.prefix + "/")}
    second = replay_errors(archive, WIDE)

    assert first.archivable == 2 and second.archivable == 0 and second.batches == []
    assert len(pending_batches(archive, "sale").batches) == 1
    # Nothing written at all: no landing object, pending mark or document.
    assert {k: bucket.get(k) for k in bucket.keys(layout.prefix + "/")} == before
    assert error_keys(archive) == [still]
    assert bucket.get(still) == body  # a document that still fails alike is left alone


def test_a_replay_that_dies_after_landing_is_repeated_without_doubling(aws, archive, settings):
    bucket, layout = archive.bucket, archive.layout
    message = "sale record: saleStartDateTime: outside the partitions (an older window)"
    key = put_document(bucket, layout, "a", message, [sale(1), bad_demand(2), sale(3)])
    dying = boto3.client("s3")

    def die(params, **_):
        if "/errors/" in f"/{params.get('Key', '')}" or "Delete" in params:
            raise ConnectionError("the replay died before rewriting its documents")

    dying.meta.events.register("provide-client-params.s3.PutObject", die)
    dying.meta.events.register("provide-client-params.s3.DeleteObjects", die)

    with pytest.raises(ConnectionError):
        replay_errors(Archive(Bucket(dying, settings.bucket), layout), WIDE)
    assert [orjson.loads(c.data)["eventID"] for c in landed(archive, "sale", "2026-06-01")]
    (batch,) = pending_batches(archive, "sale").batches  # landed whole, pending
    assert error_keys(archive) == [key]  # landed, but the document is untouched
    landing = sorted(bucket.keys(f"{settings.prefix}/landing/"))

    report = replay_errors(archive, WIDE)

    assert sorted(bucket.keys(f"{settings.prefix}/landing/")) == landing  # the same batch
    assert report.batches == [batch]
    ids = [orjson.loads(c.data)["eventID"] for c in landed(archive, "sale", "2026-06-01")]
    assert sorted(ids) == ["sale-1", "sale-3"]
    assert report.archivable == 2 and key not in error_keys(archive)


def test_events_that_still_fail_the_same_way_keep_their_document(archive):
    bucket, layout = archive.bucket, archive.layout
    key = put_document(bucket, layout, "a", current_message(sale(1), NARROW), [sale(1)])
    report = replay_errors(archive, NARROW)  # the window has not moved yet
    assert (report.archivable, report.still_failing, report.written, report.deleted) == (
        0,
        1,
        [],
        [],
    )
    assert error_keys(archive) == [key]
    assert not bucket.keys(f"{layout.prefix}/landing/")


def test_documents_without_positions_replay_with_unknown_provenance(archive):
    put_document(archive.bucket, archive.layout, "a", "old message", [sale(1)], positions=False)
    replay_errors(archive, WIDE)
    (landed_change,) = landed(archive, "sale", "2026-06-01")
    assert (landed_change.shard, landed_change.seq, landed_change.arrival) == (
        "unknown",
        "unknown",
        TIME,
    )


def test_a_dry_run_writes_nothing(archive):
    bucket, layout = archive.bucket, archive.layout
    key = put_document(bucket, layout, "a", "old", [sale(1), bad_demand(2)])
    other = change("INSERT", {"pk": "c", "sk": "c", "type": "config"}, event_id="c-1")
    put_document(bucket, layout, "b", "old", [other])
    before = {k: bucket.get(k) for k in bucket.keys(layout.prefix + "/")}

    report = replay_errors(archive, WIDE, dry_run=True)

    assert (report.archivable, report.skipped, report.still_failing) == (1, 1, 1)
    assert {k: bucket.get(k) for k in bucket.keys(layout.prefix + "/")} == before
    assert key in error_keys(archive)


def test_events_of_skipped_types_are_dropped(archive):
    other = change("INSERT", {"pk": "c", "sk": "c", "type": "config"}, event_id="c-1")
    key = put_document(archive.bucket, archive.layout, "a", "old", [other])
    report = replay_errors(archive, WIDE)
    assert report.skipped == 1 and report.deleted == [key] and report.batches == []
    assert error_keys(archive) == []


def test_rejected_changes_keep_their_stream_position(archive):
    changes = [
        Change("shardId-1", "41", TIME, bad_demand(1)),
        Change("shardId-2", "42", TIME, bad_demand(2)),
        Change("shardId-2", "43", TIME, b"not json"),
    ]
    summary = land_batch(archive, "s", "20240115T102030Z-b1", changes, WIDE)
    documents = sorted((document(archive.bucket, k) for k in summary.error_keys), key=len)
    for found in documents:
        assert found["batch"] == "20240115T102030Z-b1"
        assert len(found["positions"]) == len(found["events"])
    positions = [p for found in documents for p in found["positions"]]
    assert sorted((p["shardId"], p["sequenceNumber"]) for p in positions) == [
        ("shardId-1", "41"),
        ("shardId-2", "42"),
        ("shardId-2", "43"),
    ]
