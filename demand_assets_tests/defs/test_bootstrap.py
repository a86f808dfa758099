"""Bootstrap from the table on the moto server's DynamoDB: every item of the four types is
archived once as a snapshot change, other item types are skipped, an invalid item goes to
errors, and the same snapshot again doubles nothing."""

from __future__ import annotations

from collections import Counter

import boto3
import dagster as dg
import pytest

from demand_assets.definitions import build_definitions
from demand_assets.defs.inprocess import evaluate_run_status_sensor
from demand_assets.defs.operations import BOOTSTRAP_JOB
from demand_assets.defs.rebuilds import COMPACT_JOB, REBUILD_SENSOR
from demand_assets.defs.sensor import TYPE_TAG
from demand_assets.records.snapshot import snapshot_event_id
from demand_assets.records.timestamps import format_instant
from demand_assets.storage.batches import BatchSummary
from demand_assets_tests.builders import create_keyed_table, image, valid_item
from demand_assets_tests.defs.operating import archived_event_ids, run_all
from demand_assets_tests.defs.pipeline import archived, keys


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


def test_every_item_is_archived_once_and_a_repeated_snapshot_doubles_nothing(settings, s3, table):
    defs = build_definitions(settings)
    instance = dg.DagsterInstance.ephemeral()

    first = _bootstrap(defs, instance)
    assert first.success

    # The snapshot time defaults to when the run was created.
    created = instance.get_run_record_by_id(first.run_id).create_timestamp
    summaries = [
        BatchSummary.from_json(s3.get_object(Bucket=settings.bucket, Key=k)["Body"].read())
        for k in keys(s3, settings.bucket, f"{settings.prefix}/landing/_batches/")
    ]
    assert len(summaries) >= 5  # pages of 4 in batches of 5 items, per segment
    assert {s.first_arrival for s in summaries} == {format_instant(created)}
    as_of_ms = int(created.timestamp() * 1000)
    assert sum(sum(s.skipped.values()) for s in summaries) == 4
    assert sum(sum(s.rejected.values()) for s in summaries) == 1

    requests = evaluate_run_status_sensor(defs, instance, REBUILD_SENSOR, first.dagster_run)
    assert {r.job_name for r in requests} == {COMPACT_JOB}
    assert sorted(r.tags[TYPE_TAG] for r in requests) == ["demand", "event", "notification", "sale"]
    run_all(defs, instance, requests)

    expected = {
        snapshot_event_id(settings.table_name, image({"pk": i["pk"], "sk": i["sk"]}), as_of_ms)
        for i in table
    }
    for fmt, counts in archived_event_ids(s3, settings).items():
        assert counts == Counter(dict.fromkeys(expected, 1)), fmt
    for _, _, record in archived(s3, settings)["parquet"]:
        provenance = record["provenance"]
        assert provenance["eventName"] == "INSERT"
        assert provenance["changeTime"] == format_instant(created)
        assert provenance["shardId"].startswith(f"scan:{settings.table_name}:")
    (error,) = keys(s3, settings.bucket, f"{settings.prefix}/errors/")
    assert b"systemUserId" in s3.get_object(Bucket=settings.bucket, Key=error)["Body"].read()

    # The same snapshot again (a retry, a re-execution): the same keys, the same bytes.
    landing = _landing(s3, settings)
    again = _bootstrap(defs, instance, as_of=format_instant(created))
    assert again.success
    assert _landing(s3, settings) == landing
    assert len(keys(s3, settings.bucket, f"{settings.prefix}/errors/")) == 1
    repeated = evaluate_run_status_sensor(defs, instance, REBUILD_SENSOR, again.dagster_run)
    assert sorted(map(_scope, repeated)) == sorted(map(_scope, requests))
    run_all(defs, instance, [r for r in repeated if r.tags[TYPE_TAG] == "demand"])
    for fmt, counts in archived_event_ids(s3, settings).items():
        assert counts == Counter(dict.fromkeys(expected, 1)), fmt


def _scope(request) -> tuple:
    tags = request.tags
    return (
        tags[TYPE_TAG],
        request.partition_key or tags["dagster/asset_partition_range_start"],
        request.partition_key or tags["dagster/asset_partition_range_end"],
    )
