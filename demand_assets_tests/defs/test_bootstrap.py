"""Bootstrap from the table on the moto server's DynamoDB: every item of the four types is
landed as a snapshot change, pending, and archived once by the archive run the stream sensor's
next tick requests; other item types are skipped, an invalid item goes to errors, and the same
snapshot again doubles nothing. `land_segment` (one Scan segment) is tested without Dagster."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import boto3
import dagster as dg
import orjson
import pytest

from demand_assets.definitions import build_definitions
from demand_assets.defs.archive_job import ARCHIVE_JOB
from demand_assets.defs.operations import BOOTSTRAP_JOB
from demand_assets.records import RECORD_TYPES
from demand_assets.records.snapshot import snapshot_event_id
from demand_assets.records.timestamps import format_instant
from demand_assets.storage.batches import BatchSummary
from demand_assets.storage.landing import landed_batches, read_landed
from demand_assets.storage.pending import pending_batches
from demand_assets.storage.table_snapshot import SegmentScan, land_segment
from demand_assets.stream.table_scan import key_names
from demand_assets_tests.builders import create_keyed_table, image, valid_item
from demand_assets_tests.defs.operating import archive_of, archived_event_ids
from demand_assets_tests.defs.pipeline import WINDOW, archived, drain, keys


def _items() -> tuple[list[dict], list[dict], dict]:
    """(items to archive, items of other types, an invalid demand)."""
    archivable = []
    for i in range(6):
        archivable.append(
            valid_item(
                "demand",
                sk=f"demand#e-1#s-{i}",
                saleId=f"s-{i}",
                date={"requested": f"2026-11-1{i % 3}T09:00:00.000Z"},
            )
        )
        archivable.append(valid_item("notification", pk=f"fan#f-{i}", fanId=f"f-{i}"))
        archivable.append(valid_item("sale", sk=f"sale#s-{i}", id=f"s-{i}"))
    archivable += [valid_item("event", pk=f"event#e-{i}", id=f"e-{i}") for i in range(3)]
    others = [
        {"pk": f"FAN#{i}", "sk": "PROFILE", "type": "fanProfile", "name": "x"} for i in range(3)
    ]
    others.append({"pk": "CONFIG#1", "sk": "CONFIG", "type": "config"})
    invalid = valid_item("demand", sk="demand#e-9#s-9", systemUserId="not-three-parts")
    return archivable, others, invalid


@pytest.fixture
def table(settings, aws):
    client = boto3.client("dynamodb")
    create_keyed_table(client, settings.table_name)
    archivable, others, invalid = _items()
    for item in [*archivable, *others, invalid]:
        client.put_item(TableName=settings.table_name, Item=image(item))
    return archivable


def _bootstrap(defs, instance, as_of: str = ""):
    config = {"segments": 3, "page_size": 4, "items_per_batch": 5, "as_of": as_of}
    return defs.resolve_job_def(BOOTSTRAP_JOB).execute_in_process(
        run_config={"ops": {"plan_table_snapshot": {"config": config}}}, instance=instance
    )


def _landing(s3, settings) -> dict[str, str]:
    """Landing key -> ETag (the content's digest)."""
    paginator = s3.get_paginator("list_objects_v2")
    return {
        o["Key"]: o["ETag"]
        for page in paginator.paginate(Bucket=settings.bucket, Prefix=f"{settings.prefix}/landing/")
        for o in page.get("Contents", [])
    }


def _pending(s3, settings) -> dict[str, dict[str, dict[str, int]]]:
    """record type -> {pending batch: {day: changes}}, for the types with any."""
    archive = archive_of(s3, settings)
    return {
        t: pending.batches for t in RECORD_TYPES if (pending := pending_batches(archive, t)).batches
    }


def _data_files(s3, settings) -> dict[str, str]:
    """Data file key -> ETag, both formats."""
    return {
        key: etag
        for fmt in ("avro", "parquet")
        for key, etag in _objects(s3, settings, f"{settings.prefix}/{fmt}/").items()
    }


def _objects(s3, settings, prefix: str) -> dict[str, str]:
    paginator = s3.get_paginator("list_objects_v2")
    return {
        o["Key"]: o["ETag"]
        for page in paginator.paginate(Bucket=settings.bucket, Prefix=prefix)
        for o in page.get("Contents", [])
    }


def _expected(settings, table, as_of_ms: int) -> set[str]:
    return {
        snapshot_event_id(settings.table_name, image({"pk": i["pk"], "sk": i["sk"]}), as_of_ms)
        for i in table
    }


def test_every_item_is_archived_once_and_a_repeated_snapshot_doubles_nothing(
    settings, s3, kinesis, table
):
    defs = build_definitions(settings)
    instance = dg.DagsterInstance.ephemeral()

    first = _bootstrap(defs, instance)
    assert first.success

    # The snapshot time defaults to when the run was created.
    created = instance.get_run_record_by_id(first.run_id).create_timestamp
    summaries = [
        BatchSummary.from_json(s3.get_object(Bucket=settings.bucket, Key=k)["Body"].read())
        for k in keys(s3, settings.bucket, f"{settings.prefix}/landing/_batches/")
        if k.endswith(".json")
    ]
    assert len(summaries) >= 5  # pages of 4 in batches of 5 items, per segment
    assert {s.first_arrival for s in summaries} == {format_instant(created)}
    as_of_ms = int(created.timestamp() * 1000)
    assert sum(sum(s.skipped.values()) for s in summaries) == 4
    assert sum(sum(s.rejected.values()) for s in summaries) == 1

    # Landed, not archived: every batch with archivable items is pending for its types.
    touched = first.output_for_node("snapshot_partitions")
    assert sorted(touched) == ["demand", "event", "notification", "sale"]
    pending = _pending(s3, settings)
    assert sorted(pending) == sorted(touched)
    for record_type, batches in pending.items():
        assert sorted({d for days in batches.values() for d in days}) == touched[record_type]
    assert {b for batches in pending.values() for b in batches} == {
        s.batch for s in summaries if s.archivable
    }
    assert not keys(s3, settings.bucket, f"{settings.prefix}/parquet/")
    landing = _landing(s3, settings)

    # The stream sensor's next tick: nothing queued or running, batches pending -> one run.
    drained = drain(defs, instance)
    assert [r.job_name for r in drained.requests] == [ARCHIVE_JOB]
    assert _pending(s3, settings) == {}

    expected = _expected(settings, table, as_of_ms)
    for fmt, counts in archived_event_ids(s3, settings).items():
        assert counts == Counter(dict.fromkeys(expected, 1)), fmt
    for _, _, record in archived(s3, settings)["parquet"]:
        provenance = record["provenance"]
        assert provenance["eventName"] == "INSERT"
        assert provenance["changeTime"] == format_instant(created)
        assert provenance["shardId"].startswith(f"scan:{settings.table_name}:")
    (error,) = keys(s3, settings.bucket, f"{settings.prefix}/errors/")
    assert b"systemUserId" in s3.get_object(Bucket=settings.bucket, Key=error)["Body"].read()

    # The same snapshot again (a retry, a re-execution): the same keys, the same bytes, the
    # same batches pending again; archiving them again changes no data file.
    files = _data_files(s3, settings)
    again = _bootstrap(defs, instance, as_of=format_instant(created))
    assert again.success
    assert again.output_for_node("snapshot_partitions") == touched
    assert _landing(s3, settings) == landing
    assert _pending(s3, settings) == pending
    assert len(keys(s3, settings.bucket, f"{settings.prefix}/errors/")) == 1
    repeated = drain(defs, instance, drained.cursor)
    assert [r.job_name for r in repeated.requests] == [ARCHIVE_JOB]
    assert _pending(s3, settings) == {}
    assert _data_files(s3, settings) == files
    for fmt, counts in archived_event_ids(s3, settings).items():
        assert counts == Counter(dict.fromkeys(expected, 1)), fmt


AS_OF = datetime(2026, 11, 20, 8, 30, tzinfo=UTC)


def _scan(settings, client, as_of: datetime = AS_OF, **overrides) -> SegmentScan:
    fields = {
        "table": settings.table_name,
        "region": client.meta.region_name,
        "key_names": tuple(key_names(client, settings.table_name)),
        "as_of_ms": int(as_of.timestamp() * 1000),
        "segment": 0,
        "total_segments": 1,
        "page_size": 4,
        "items_per_batch": 5,
        **overrides,
    }
    return SegmentScan(**fields)


def test_a_segment_lands_whole_pages_as_batches_named_by_position(settings, s3, table):
    """`land_segment` alone: every item once, at a position of its own, in batches of whole
    pages named after where they start; the same scan again rewrites the same objects."""
    client = boto3.client("dynamodb")
    archive = archive_of(s3, settings)
    scan = _scan(settings, client)
    items = len(table) + 4 + 1  # archivable, other types, the invalid demand

    report = land_segment(archive, client, scan, WINDOW)

    pages = -(-items // scan.page_size)
    assert report.counts["items"] == items
    assert report.counts["pages"] in (pages, pages + 1)  # an empty last page, or not
    assert (report.counts["archivable"], report.counts["skipped"]) == (len(table), 4)
    assert report.counts["rejected"] == 1
    assert report.counts["batches"] == -(-pages // 2)  # 2 pages of 4 reach 5 items
    assert sorted(report.touched) == ["demand", "event", "notification", "sale"]

    summaries = [
        BatchSummary.from_json(s3.get_object(Bucket=settings.bucket, Key=k)["Body"].read())
        for k in keys(s3, settings.bucket, f"{settings.prefix}/landing/_batches/")
        if k.endswith(".json")
    ]
    names = {s.batch for s in summaries}
    assert len(names) == report.counts["batches"]
    assert scan.batch_name(None) in names  # the first batch starts at the segment's start
    arrival = format_instant(AS_OF)
    for summary in summaries:
        assert summary.stream == f"table:{settings.table_name}"
        assert (summary.first_arrival, summary.last_arrival) == (arrival, arrival)
        assert list(summary.shards) == [scan.shard]
    assert sum(s.records for s in summaries) == items
    pending = _pending(s3, settings)
    assert {t: {d for days in b.values() for d in days} for t, b in pending.items()} == (
        report.touched
    )

    changes = [
        change
        for record_type, days in report.touched.items()
        for day in days
        for change in read_landed(archive, record_type, day, names)
    ]
    assert sorted(orjson.loads(c.data)["eventID"] for c in changes) == sorted(
        _expected(settings, table, scan.as_of_ms)
    )
    assert len({(c.shard, c.seq) for c in changes}) == len(changes)  # positions of their own
    assert {c.shard for c in changes} == {scan.shard}

    landing = _landing(s3, settings)
    again = land_segment(archive, client, scan, WINDOW)
    assert (again.counts, again.touched) == (report.counts, report.touched)
    assert _landing(s3, settings) == landing  # the same names, the same bytes

    # Another snapshot time: other names, so it overwrites nothing of this one.
    later = _scan(settings, client, datetime(2026, 11, 21, tzinfo=UTC))
    assert land_segment(archive, client, later, WINDOW).counts == report.counts
    after = _landing(s3, settings)
    assert {k: after[k] for k in landing} == landing
    assert len(after) == 2 * len(landing)


def test_segments_split_the_table_between_them(settings, s3, table):
    """Each item is landed by exactly one of the segments."""
    client = boto3.client("dynamodb")
    archive = archive_of(s3, settings)
    reports = [
        land_segment(archive, client, _scan(settings, client, segment=s, total_segments=3), WINDOW)
        for s in range(3)
    ]
    assert sum(r.counts["items"] for r in reports) == len(table) + 5
    assert sum(r.counts["archivable"] for r in reports) == len(table)
    changes = [
        change
        for record_type in RECORD_TYPES
        for day in {d for r in reports for d in r.touched.get(record_type, ())}
        for change in read_landed(
            archive, record_type, day, landed_batches(archive, record_type, day)
        )
    ]
    assert Counter(orjson.loads(c.data)["eventID"] for c in changes) == Counter(
        dict.fromkeys(_expected(settings, table, int(AS_OF.timestamp() * 1000)), 1)
    )
