"""The daily compaction on the moto server: a schedule tick at 00:30 UTC requests rebuilds of
every partition that yesterday's batches touched (yesterday's own, a late change's old day, a
sale's day months ahead); after those runs each holds one data file per format, every change is
still there exactly once, and a repeated tick requests nothing."""

from __future__ import annotations

import os
import tempfile
from collections import Counter
from dataclasses import replace
from datetime import UTC, date, datetime

import dagster as dg
import pytest

from demand_assets.definitions import build_definitions
from demand_assets.defs.archive_job import ARCHIVE_JOB
from demand_assets.defs.inprocess import evaluate_schedule
from demand_assets.defs.rebuilds import COMPACT_JOB, consecutive_runs, split_by_window
from demand_assets.defs.schedules import COMPACTION_SCHEDULE
from demand_assets.defs.tags import TYPE_TAG
from demand_assets.records import PartitionWindow
from demand_assets.traffic.generator import ChangeGenerator
from demand_assets_tests.builders import change, valid_item
from demand_assets_tests.defs.operating import (
    archived_event_ids,
    data_files,
    land,
    run_all,
    touched,
)
from demand_assets_tests.defs.pipeline import expected_records

YESTERDAY = datetime(2026, 11, 20, tzinfo=UTC)
TICK = datetime(2026, 11, 21, 0, 30, tzinfo=UTC)
LATE_DAY = "2026-11-12"
SALE_DAY = "2027-02-10"


@pytest.fixture
def instance():
    """A persistent instance (schedules need one), its SQLite files in memory where possible:
    it writes an event per materialized partition, which costs a sync each on a disk."""
    shm = "/dev/shm" if os.path.isdir("/dev/shm") else None
    with tempfile.TemporaryDirectory(dir=shm) as home, dg.instance_for_test(temp_dir=home) as i:
        yield i


def _traffic() -> tuple[list[bytes], list[bytes], list[bytes]]:
    """Two batches of a day's demand traffic, and a third with a late change to an old demand
    and sales that start months ahead."""
    generated = ChangeGenerator(
        seed=41, now=YESTERDAY.replace(hour=22), days=1, type_weights={"demand": 1.0}
    ).changes(160)
    payloads = [c.data for c in generated]
    late = change(
        "MODIFY",
        valid_item("demand", date={"requested": f"{LATE_DAY}T10:00:00.000Z"}),
        change_time_ms=int(YESTERDAY.replace(hour=19).timestamp() * 1000),
        event_id="late-change",
    )
    sales = [
        change(
            "INSERT",
            valid_item("sale", id=f"s-{i}", saleStartDateTime=f"{SALE_DAY}T1{i}:00:00.000Z"),
            change_time_ms=int(YESTERDAY.replace(hour=19).timestamp() * 1000),
            event_id=f"sale-{i}",
        )
        for i in range(3)
    ]
    return payloads[:80], payloads[80:], [late, *sales]


def test_the_nightly_compaction_leaves_one_file_per_format_in_each_touched_partition(
    settings, s3, instance
):
    defs = build_definitions(settings)
    first, second, third = _traffic()
    summaries = [
        land(s3, settings, first, YESTERDAY.replace(hour=8), 100),
        land(s3, settings, second, YESTERDAY.replace(hour=20), 500),
    ]
    # The archive run: one file per partition holding both batches.
    run_all(defs, instance, [dg.RunRequest(job_name=ARCHIVE_JOB)])
    summaries.append(land(s3, settings, third, YESTERDAY.replace(hour=23), 800))  # pending
    land(s3, settings, [second[0]], TICK.replace(minute=5), 900)  # today's: tomorrow's work
    land(s3, settings, first[40:50], YESTERDAY.replace(hour=21), 600)  # a later run's file
    run_all(defs, instance, [dg.RunRequest(job_name=ARCHIVE_JOB)])
    summaries.append(land(s3, settings, third, YESTERDAY.replace(hour=23, minute=5), 850))
    before = {
        (t, d): len(data_files(s3, settings, "parquet", t, d)) for t, d in touched(summaries[:2])
    }
    assert max(before.values()) == 2  # two archive runs wrote to some partitions

    requests = evaluate_schedule(defs, instance, COMPACTION_SCHEDULE, TICK)

    # Runs of consecutive days only: a late change's old day, yesterday's days, a sale's day
    # months ahead; each the rebuild of exactly the days yesterday's batches touched.
    assert {r.job_name for r in requests} == {COMPACT_JOB}
    covered = {(r.tags[TYPE_TAG], day) for r in requests for day in _days_of(*_range(r))}
    assert covered == touched(summaries)
    assert (("demand", LATE_DAY) in covered) and (("sale", SALE_DAY) in covered)
    assert ("demand", LATE_DAY, LATE_DAY) in {(r.tags[TYPE_TAG], *_range(r)) for r in requests}
    results = run_all(defs, instance, requests)

    for record_type, day in touched(summaries):
        for fmt in ("avro", "parquet"):
            files = data_files(s3, settings, fmt, record_type, day)
            assert len(files) == 1, (record_type, day, files)
    expected = expected_records(first + second + third)
    for fmt, counts in archived_event_ids(s3, settings).items():
        assert counts == Counter(dict.fromkeys(expected, 1)), fmt
    # Registered and checked in the same runs.
    checks = [e for r in results for e in r.get_asset_check_evaluations()]
    assert checks and all(e.passed for e in checks if e.severity == dg.AssetCheckSeverity.ERROR)
    registered = {
        e.asset_key.to_user_string() for r in results for e in r.get_asset_materialization_events()
    }
    assert {"demand_glue_partitions", "sale_glue_partitions"} <= registered

    # The same tick again (a daemon restart, a re-evaluation): nothing is requested twice.
    assert evaluate_schedule(defs, instance, COMPACTION_SCHEDULE, TICK) == []
    # After the stream was re-read (a rewound cursor lands yesterday's changes in new
    # batches), the same tick requests the rebuild of just what got new batches.
    land(s3, settings, first[:10], YESTERDAY.replace(hour=8, minute=1), 101)
    again = evaluate_schedule(defs, instance, COMPACTION_SCHEDULE, TICK)
    assert again and {r.tags[TYPE_TAG] for r in again} == {"demand"}
    redone = {("demand", d) for r in again for d in _days_of(*_range(r))}
    # the ranges holding a day that got a new batch, whole: no more, no less
    new_days = expected_days(first[:10])
    assert {_range(r) for r in again} == {
        _range(r)
        for r in requests
        if r.tags[TYPE_TAG] == "demand" and set(_days_of(*_range(r))) & new_days
    }
    assert new_days <= {d for _, d in redone}
    assert not {r.run_key for r in again} & {r.run_key for r in requests}


def _days_of(first: str, last: str) -> list[str]:
    start, end = date.fromisoformat(first), date.fromisoformat(last)
    return [date.fromordinal(n).isoformat() for n in range(start.toordinal(), end.toordinal() + 1)]


def expected_days(payloads) -> set[str]:
    return {day for _, day, _ in expected_records(payloads).values()}


def _range(request) -> tuple[str, str]:
    if request.partition_key:
        return request.partition_key, request.partition_key
    tags = request.tags
    return tags["dagster/asset_partition_range_start"], tags["dagster/asset_partition_range_end"]


def test_days_go_in_runs_of_consecutive_days_of_at_most_31():
    days = ["2026-11-20", "2026-11-19", "2026-11-02", "2026-11-21", "2027-02-10", "2026-11-20"]
    assert consecutive_runs(days) == [
        ("2026-11-02", "2026-11-02"),  # a day that holds no data is never in a run's range
        ("2026-11-19", "2026-11-21"),
        ("2027-02-10", "2027-02-10"),
    ]
    month = [date.fromordinal(date(2026, 1, 1).toordinal() + n).isoformat() for n in range(40)]
    assert consecutive_runs(month) == [("2026-01-01", "2026-01-31"), ("2026-02-01", "2026-02-09")]
    assert consecutive_runs([]) == []


def test_days_outside_the_partitions_are_not_requested(settings, s3, instance):
    window = PartitionWindow(date(2020, 1, 1), date(2027, 6, 30))
    assert split_by_window(["2019-12-31", "2020-01-01", "2027-06-30", "2027-07-01"], window) == (
        ["2020-01-01", "2027-06-30"],
        ["2019-12-31", "2027-07-01"],
    )
    # Batches landed under wider partitions than the definitions have now.
    sales = [
        change(
            "INSERT",
            valid_item("sale", id=f"s-{d}", saleStartDateTime=f"{d}T10:00:00Z"),
            event_id=f"sale-{d}",
        )
        for d in ("2024-05-01", "2025-05-01")
    ]
    land(s3, settings, sales, YESTERDAY.replace(hour=3), 1)
    narrowed = replace(settings, first_partition=date(2025, 1, 1))
    requests = evaluate_schedule(build_definitions(narrowed), instance, COMPACTION_SCHEDULE, TICK)
    assert [_range(r) for r in requests] == [("2025-05-01", "2025-05-01")]
    assert requests[0].run_key.startswith("compaction:2026-11-20:sale:2025-05-01:2025-05-01:")
