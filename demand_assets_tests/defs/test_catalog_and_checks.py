"""Glue registration and the data-quality checks on the moto server: checks pass on clean
data and fail, each for its own reason, on data a test corrupts."""

from __future__ import annotations

import io

import boto3
import dagster as dg
import fastavro
import pyarrow.parquet as pq
import pytest

from demand_assets.checks.engines import DuckDBEngine, s3_filesystem
from demand_assets.checks.evaluate import landed_changes, sql_outcomes
from demand_assets.definitions import build_definitions
from demand_assets.formats import encode_groups
from demand_assets.storage.layout import Layout
from demand_assets.traffic.generator import ChangeGenerator
from demand_assets_tests.defs.pipeline import NOW, WINDOW, archived, drain, keys, put


@pytest.fixture
def archive(settings, s3, kinesis):
    """A small archive of demand and notification changes, drained through the pipeline."""
    defs = build_definitions(settings)
    instance = dg.DagsterInstance.ephemeral()
    changes = ChangeGenerator(
        seed=21, now=NOW, days=1, type_weights={"demand": 0.6, "notification": 0.4}
    ).changes(400)
    put(kinesis, settings.stream_name, [(c.data, c.partition_key) for c in changes])
    drain(defs, instance)
    return defs, instance


def test_partitions_with_data_are_registered_in_both_tables(archive, settings, s3):
    glue = boto3.client("glue")
    rows = archived(s3, settings)["parquet"]
    for record_type in ("demand", "notification"):
        days = {day for t, day, _ in rows if t == record_type}
        for fmt in ("avro", "parquet"):
            paginator = glue.get_paginator("get_partitions")
            registered = {
                p["Values"][0]
                for page in paginator.paginate(
                    DatabaseName=settings.glue_database, TableName=f"{record_type}_{fmt}"
                )
                for p in page["Partitions"]
            }
            assert registered == days, (record_type, fmt)
            location = glue.get_table(
                DatabaseName=settings.glue_database, Name=f"{record_type}_{fmt}"
            )["Table"]["StorageDescriptor"]["Location"]
            assert location == f"s3://{settings.bucket}/{settings.prefix}/{fmt}/{record_type}/"


def _outcomes(settings, record_type: str, day: str) -> dict:
    engine = DuckDBEngine(s3_filesystem(), settings.bucket, Layout(settings.prefix))
    archive = build_definitions(settings).resources["archive"].archive()
    landed = landed_changes(archive, record_type, day, WINDOW)
    outcomes = sql_outcomes(engine, settings.glue_database, record_type, day, landed)
    return {o.name: o for o in outcomes}


def _busiest_day(s3, settings, record_type: str) -> str:
    days = [day for t, day, _ in archived(s3, settings)["parquet"] if t == record_type]
    return max(set(days), key=days.count)


def _write_extra(s3, settings, record_type: str, day: str, records: list[dict]) -> None:
    """An extra data file in both formats, as a faulty writer would leave one."""
    ((avro, parquet),) = encode_groups(record_type, [records])
    for fmt, body in (("avro", avro), ("parquet", parquet)):
        key = Layout(settings.prefix).data_key(fmt, record_type, day, "intruder")
        s3.put_object(Bucket=settings.bucket, Key=key, Body=body)


def _records(s3, settings, record_type: str, day: str) -> list[dict]:
    prefix = Layout(settings.prefix).partition_prefix("parquet", record_type, day)
    out = []
    for key in keys(s3, settings.bucket, prefix):
        if "/_" not in key:
            body = s3.get_object(Bucket=settings.bucket, Key=key)["Body"].read()
            out += pq.read_table(io.BytesIO(body)).to_pylist()
    return out


def test_checks_pass_on_clean_data(archive, settings, s3):
    for record_type in ("demand", "notification"):
        day = _busiest_day(s3, settings, record_type)
        outcomes = _outcomes(settings, record_type, day)
        failed = {name: o.metadata for name, o in outcomes.items() if not o.passed}
        assert not failed, failed
        assert outcomes["row_counts_agree"].metadata["landed_changes"] > 0


def test_a_duplicated_row_fails_uniqueness_and_row_counts(archive, settings, s3):
    day = _busiest_day(s3, settings, "demand")
    twin = _records(s3, settings, "demand", day)[0]
    _write_extra(s3, settings, "demand", day, [twin])

    outcomes = _outcomes(settings, "demand", day)
    assert not outcomes["each_change_once"].passed
    assert outcomes["each_change_once"].metadata["failing"] == 2  # one per format
    assert outcomes["each_change_once"].metadata["sample_reference_ids"] == [
        twin["reference"]["id"]
    ]
    assert not outcomes["row_counts_agree"].passed
    assert outcomes["deleted_rows_keep_no_pii"].passed
    assert outcomes["reference_and_partition_follow_the_rules"].passed


def test_an_unredacted_email_on_a_deleted_row_fails_the_pii_check(archive, settings, s3):
    day = _busiest_day(s3, settings, "demand")
    row = dict(_records(s3, settings, "demand", day)[0])
    row["isDeleted"] = True
    row["email"] = "fan@example.com"
    row["provenance"] = {**row["provenance"], "eventID": "leaky-change"}
    _write_extra(s3, settings, "demand", day, [row])

    outcomes = _outcomes(settings, "demand", day)
    pii = outcomes["deleted_rows_keep_no_pii"]
    assert not pii.passed and pii.severity == "ERROR"
    assert pii.metadata["failing"] == 2
    assert pii.metadata["sample_reference_ids"] == [row["reference"]["id"]]
    assert outcomes["each_change_once"].passed


def test_a_row_in_the_wrong_partition_fails_the_partition_rule(archive, settings, s3):
    day = _busiest_day(s3, settings, "notification")
    row = dict(_records(s3, settings, "notification", day)[0])
    row["provenance"] = {**row["provenance"], "eventID": "misplaced-change"}
    elsewhere = "2026-01-01"
    _write_extra(s3, settings, "notification", elsewhere, [row])

    outcomes = _outcomes(settings, "notification", elsewhere)
    rule = outcomes["reference_and_partition_follow_the_rules"]
    assert not rule.passed and rule.severity == "WARN"
    assert rule.metadata["failing"] == 2
    assert outcomes["each_change_once"].passed


def test_a_failing_blocking_check_stops_partition_registration(archive, settings, s3):
    defs, instance = archive
    day = _busiest_day(s3, settings, "demand")
    row = dict(_records(s3, settings, "demand", day)[0])
    row.update(isDeleted=True, phoneNumber="+15550100")
    row["provenance"] = {**row["provenance"], "eventID": "leaky-change"}
    _write_extra(s3, settings, "demand", day, [row])
    boto3.client("glue").batch_delete_partition(
        DatabaseName=settings.glue_database,
        TableName="demand_parquet",
        PartitionsToDelete=[{"Values": [day]}],
    )

    job = defs.resolve_implicit_global_asset_job_def()
    result = job.execute_in_process(
        partition_key=day,
        asset_selection=[dg.AssetKey("demand_glue_partitions")],
        instance=instance,
        raise_on_error=False,
    )
    assert result.success  # registration alone runs; now with the checks in front of it:
    boto3.client("glue").batch_delete_partition(
        DatabaseName=settings.glue_database,
        TableName="demand_parquet",
        PartitionsToDelete=[{"Values": [day]}],
    )
    result = job.execute_in_process(
        partition_key=day,
        asset_selection=[dg.AssetKey("demand"), dg.AssetKey("demand_glue_partitions")],
        instance=instance,
        raise_on_error=False,
    )
    assert not result.success
    assert "demand_glue_partitions" not in {
        e.asset_key.to_user_string() for e in result.get_asset_materialization_events()
    }
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert not evaluations["deleted_rows_keep_no_pii"].passed
    registered = boto3.client("glue").get_partitions(
        DatabaseName=settings.glue_database, TableName="demand_parquet"
    )["Partitions"]
    assert day not in {p["Values"][0] for p in registered}


def test_the_avro_tables_schema_literal_reads_the_archived_files(archive, settings, s3):
    import json

    table = boto3.client("glue").get_table(DatabaseName=settings.glue_database, Name="demand_avro")
    literal = json.loads(table["Table"]["Parameters"]["avro.schema.literal"])
    prefix = f"{settings.prefix}/avro/demand/"
    for key in keys(s3, settings.bucket, prefix):
        if "/_" in key:
            continue
        body = s3.get_object(Bucket=settings.bucket, Key=key)["Body"].read()
        rows = list(fastavro.reader(io.BytesIO(body), reader_schema=literal))
        assert rows and all(r["type"] == "demand" for r in rows)


def test_a_range_run_records_each_checks_outcome_per_day(archive, settings, s3):
    """A backfill over several days (one run, a partition range) records every check once per
    day with data, each day's own outcome: the UI's partitions of a check show the truth."""
    defs, instance = archive
    days = sorted({day for t, day, _ in archived(s3, settings)["parquet"] if t == "demand"})
    assert len(days) >= 2, days
    leaky, clean = days[0], days[-1]
    row = dict(_records(s3, settings, "demand", leaky)[0])
    row.update(isDeleted=True, phoneNumber="+15550100")
    row["provenance"] = {**row["provenance"], "eventID": "leaky-change"}
    _write_extra(s3, settings, "demand", leaky, [row])
    result = defs.resolve_implicit_global_asset_job_def().execute_in_process(
        tags={
            "dagster/asset_partition_range_start": days[0],
            "dagster/asset_partition_range_end": days[-1],
        },
        asset_selection=[dg.AssetKey("demand")],
        instance=instance,
        raise_on_error=False,
    )
    evaluations = [e for e in result.get_asset_check_evaluations() if e.partition in days]
    by_check: dict[str, dict[str, bool]] = {}
    for e in evaluations:
        assert e.partition not in by_check.setdefault(e.check_name, {}), "evaluated twice"
        by_check[e.check_name][e.partition] = e.passed
    assert len(by_check) == 6
    assert all(set(per_day) == set(days) for per_day in by_check.values()), by_check
    pii = by_check["deleted_rows_keep_no_pii"]
    assert pii[leaky] is False and pii[clean] is True
