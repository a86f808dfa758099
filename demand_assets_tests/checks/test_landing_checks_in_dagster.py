"""The two WARN checks read from the batch summaries in S3, run as Dagster runs them: the
`demand_quality` asset check of a partition executed on an instance, against an archive on the
moto server whose summaries for that day make it pass, then fail."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest

from demand_assets.definitions import build_definitions
from demand_assets.storage.batches import BatchSummary
from demand_assets.storage.layout import Layout
from demand_assets.traffic.generator import ChangeGenerator
from demand_assets_tests.defs.pipeline import NOW, archived, drain, keys, put

CHECKS = ("error_rate_below_0_1_percent", "newest_batch_archived")


@pytest.fixture
def archive(settings, s3, kinesis):
    """Demand changes drained through the pipeline; the day with the most of them."""
    defs = build_definitions(settings)
    instance = dg.DagsterInstance.ephemeral()
    changes = ChangeGenerator(seed=5, now=NOW, days=1, type_weights={"demand": 1.0}).changes(60)
    put(kinesis, settings.stream_name, [(c.data, c.partition_key) for c in changes])
    drain(defs, instance)
    days = [day for t, day, _ in archived(s3, settings)["parquet"] if t == "demand"]
    return defs, instance, max(set(days), key=days.count)


def write_summary(
    s3, settings, day: str, *, rejected: int, archivable: int, age: timedelta, batch=None
):
    """The summary of a batch that arrived on `day`, `age` ago: by default one whose changes
    never reached the archive."""
    batch = batch or f"{day.replace('-', '')}T120000Z-late"
    arrival = (datetime.now(UTC) - age).isoformat()
    body = BatchSummary(
        batch=batch,
        stream=settings.stream_name,
        records=rejected + archivable,
        archivable={f"demand/{day}": archivable},
        rejected={"demand": rejected},
        first_arrival=arrival,
        last_arrival=arrival,
    ).to_json()
    key = f"{Layout(settings.prefix).batch_summaries_prefix(day)}late.json"
    s3.put_object(Bucket=settings.bucket, Key=key, Body=body)
    return batch


def drained_batch(s3, settings, day: str) -> str:
    """A batch the pipeline landed and archived with changes of `day`."""
    for key in keys(s3, settings.bucket, f"{settings.prefix}/landing/_batches/"):
        if key.endswith(".json"):
            body = s3.get_object(Bucket=settings.bucket, Key=key)["Body"].read()
            summary = BatchSummary.from_json(body)
            if f"demand/{day}" in summary.archivable:
                return summary.batch
    raise AssertionError(f"no drained batch touched {day}")


def run_checks(defs, instance, day: str) -> tuple[dg.ExecuteInProcessResult, dict]:
    """The demand checks of partition `day` alone (the multi-check runs all of them)."""
    (quality,) = [c for c in defs.asset_checks if c.node_def.name == "demand_quality"]
    job = defs.resolve_implicit_global_asset_job_def().get_subset(
        asset_selection=set(), asset_check_selection=set(quality.check_keys)
    )
    result = job.execute_in_process(partition_key=day, instance=instance, raise_on_error=False)
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    return result, evaluations


def test_the_landing_checks_pass_then_fail_on_the_summaries_of_their_day(archive, settings, s3):
    defs, instance, day = archive

    # 1 of 1,001 rejected; the newest batch arrived an hour ago and is archived
    archived_one = drained_batch(s3, settings, day)
    write_summary(
        s3, settings, day, rejected=1, archivable=1000, age=timedelta(hours=1), batch=archived_one
    )
    result, evaluations = run_checks(defs, instance, day)
    assert result.success
    assert {name: evaluations[name].passed for name in CHECKS} == dict.fromkeys(CHECKS, True)
    assert evaluations["newest_batch_archived"].metadata["newest_batch"].value == archived_one

    # the newest batch is not archived, but arrived a minute ago
    write_summary(s3, settings, day, rejected=1, archivable=1000, age=timedelta(minutes=1))
    result, evaluations = run_checks(defs, instance, day)
    assert {name: evaluations[name].passed for name in CHECKS} == dict.fromkeys(CHECKS, True)

    # 1 of 1,000 rejected; the unarchived batch arrived an hour ago
    batch = write_summary(s3, settings, day, rejected=1, archivable=999, age=timedelta(hours=1))
    result, evaluations = run_checks(defs, instance, day)
    assert result.success  # WARN checks do not fail the run
    rate, newest = evaluations["error_rate_below_0_1_percent"], evaluations["newest_batch_archived"]
    assert not rate.passed and rate.severity == dg.AssetCheckSeverity.WARN
    assert rate.metadata["rejected"].value == 1 and rate.metadata["changes"].value == 1000
    assert not newest.passed and newest.severity == dg.AssetCheckSeverity.WARN
    assert newest.metadata["newest_batch"].value == batch
    assert newest.metadata["partitions_missing_it"].value == [day]
    assert newest.metadata["age_seconds"].value >= 3600
    # and the instance records them as the UI shows them
    for name in CHECKS:
        record = instance.event_log_storage.get_latest_asset_check_execution_by_key(
            [dg.AssetCheckKey(dg.AssetKey("demand"), name)]
        )[dg.AssetCheckKey(dg.AssetKey("demand"), name)]
        assert record.event.dagster_event.event_specific_data.passed is False
