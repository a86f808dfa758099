"""Keeping up with the stream: single-flight archive runs with a follow-up, buffering hints,
re-deliveries in later batches, a bounded file count per partition, and materializations of
exactly the days a run wrote."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import dagster as dg
import orjson
import pytest

from demand_assets.defs.archive_job import ARCHIVE_JOB
from demand_assets.defs.buffering import Buffer, BufferingHints, decide
from demand_assets.storage.tiering import MAX_FILES
from demand_assets.traffic.generator import ChangeGenerator
from demand_assets_tests.defs.operating import data_files
from demand_assets_tests.defs.pipeline import (
    NOW,
    archived,
    drain,
    event_id_counts,
    execute,
    expected_records,
    generated,
    keys,
    put,
    tick,
)


def put_changes(kinesis, settings, changes) -> None:
    put(kinesis, settings.stream_name, [(c.data, c.partition_key) for c in changes])


def archive_run(defs, instance, status: dg.DagsterRunStatus) -> dg.DagsterRun:
    """An archive_batches run on the instance in `status`, as the daemon's queue holds one."""
    job = defs.resolve_job_def(ARCHIVE_JOB)
    run = instance.create_run_for_job(job_def=job, status=dg.DagsterRunStatus.NOT_STARTED)
    if status != dg.DagsterRunStatus.NOT_STARTED:
        instance.delete_run(run.run_id)
        run = instance.add_run(run.with_status(status))
    return run


# -- single flight -----------------------------------------------------------------------------


def test_no_second_run_is_requested_while_one_is_queued(defs, instance, settings, kinesis):
    put_changes(kinesis, settings, generated(100, seed=1))
    first = tick(defs, instance, None)
    assert [r.job_name for r in first.run_requests] == [ARCHIVE_JOB]
    # The daemon has created the run and not launched it yet (QUEUED needs a code location's
    # origin, which an in-process test has not; the sensor counts both as queued).
    archive_run(defs, instance, dg.DagsterRunStatus.NOT_STARTED)

    put_changes(kinesis, settings, generated(100, seed=2))
    second = tick(defs, instance, first.cursor)

    assert second.run_requests == []  # the queued run will take this batch too
    assert second.cursor != first.cursor  # the batch landed all the same


def test_one_follow_up_is_queued_while_a_run_is_in_progress_and_no_more(
    defs, instance, settings, kinesis
):
    put_changes(kinesis, settings, generated(100, seed=1))
    first = tick(defs, instance, None)
    archive_run(defs, instance, dg.DagsterRunStatus.STARTED)

    put_changes(kinesis, settings, generated(100, seed=2))
    second = tick(defs, instance, first.cursor)
    assert len(second.run_requests) == 1  # the follow-up
    archive_run(defs, instance, dg.DagsterRunStatus.NOT_STARTED)

    put_changes(kinesis, settings, generated(100, seed=3))
    third = tick(defs, instance, second.cursor)
    assert third.run_requests == []


def test_one_run_archives_every_type_and_every_pending_batch(defs, instance, settings, s3, kinesis):
    """Three ticks land three batches while no run executes; one run archives all of them."""
    changes = [generated(200, seed=s, other_type_share=0.0) for s in (1, 2, 3)]
    cursor, requests = None, []
    for part in changes:
        put_changes(kinesis, settings, part)
        result = tick(defs, instance, cursor)
        cursor = result.cursor or cursor
        requests += result.run_requests
    assert len(requests) == 3  # nothing was queued: the buffer asked each time

    assert execute(defs, instance, requests[0]).success
    everything = expected_records([c.data for part in changes for c in part])
    for fmt, rows in archived(s3, settings).items():
        assert event_id_counts(rows) == Counter(dict.fromkeys(everything, 1)), fmt
    assert {t for t, _, _ in everything.values()} == {"demand", "notification", "event", "sale"}
    for request in requests[1:]:  # the later runs find nothing pending
        assert execute(defs, instance, request).success
    assert not keys(s3, settings.bucket, f"{settings.prefix}/landing/_pending/")


def test_a_failed_run_leaves_its_batches_for_the_next_tick_to_request(
    defs, instance, settings, s3, kinesis
):
    put_changes(kinesis, settings, generated(300, seed=4))
    first = tick(defs, instance, None)
    (request,) = first.run_requests
    failed_run = archive_run(defs, instance, dg.DagsterRunStatus.FAILURE)
    assert failed_run.status == dg.DagsterRunStatus.FAILURE
    assert keys(s3, settings.bucket, f"{settings.prefix}/landing/_pending/")

    again = tick(defs, instance, first.cursor)  # no new changes, nothing queued or running

    (leftover,) = again.run_requests
    assert execute(defs, instance, leftover).success
    expected = expected_records([c.data for c in generated(300, seed=4)])
    for fmt, rows in archived(s3, settings).items():
        assert event_id_counts(rows) == Counter(dict.fromkeys(expected, 1)), fmt
    assert tick(defs, instance, again.cursor).run_requests == []


# -- buffering hints (no Dagster) --------------------------------------------------------------

HINTS = BufferingHints(interval_seconds=15, max_changes=1000)
T0 = datetime(2026, 11, 20, 12, tzinfo=UTC)


def _at(seconds: float) -> str:
    return (T0 + timedelta(seconds=seconds)).isoformat()


@pytest.mark.parametrize(
    ("changes", "oldest_age", "queued", "in_progress", "requested"),
    [
        (10, 5, 0, 0, False),  # young and small: keep buffering
        (10, 15, 0, 0, True),  # the interval is up
        (1000, 1, 0, 0, True),  # the size is reached
        (10, 60, 1, 0, False),  # a queued run will take them
        (10, 60, 0, 1, True),  # the follow-up behind the running one
        (0, 0, 0, 1, False),  # nothing new while one runs
        (0, 0, 0, 0, False),  # idle, nothing pending
    ],
)
def test_buffering_hints_decide(changes, oldest_age, queued, in_progress, requested):
    buffer = Buffer()
    buffer.add(changes, _at(-oldest_age) if changes else None)
    now = T0
    decision, why = decide(
        buffer, queued=queued, in_progress=in_progress, leftover_since=None, now=now, hints=HINTS
    )
    assert decision is requested, why
    if requested or queued:
        assert buffer.changes == 0  # what was asked for is no longer buffered
    else:
        assert buffer.changes == changes


def test_leftover_batches_are_requested_at_once_when_idle():
    buffer, oldest = Buffer(), "20261203T114722Z-ed04f67d4fac745aad0c"
    decision, why = decide(
        buffer, queued=0, in_progress=0, leftover_since=oldest, now=T0, hints=HINTS
    )
    assert decision
    assert oldest in why  # the tick's log line names where the leftovers start
    decision, _ = decide(
        buffer, queued=0, in_progress=1, leftover_since=oldest, now=T0, hints=HINTS
    )
    assert not decision  # the running run takes them


def test_the_buffer_keeps_the_oldest_arrival():
    buffer = Buffer()
    buffer.add(5, _at(-3))
    buffer.add(5, _at(-10))
    buffer.add(0, _at(-60))  # an empty batch brings nothing
    assert (buffer.changes, buffer.since) == (10, _at(-10))


# -- once, also when delivered again -----------------------------------------------------------


def test_a_change_redelivered_in_a_later_batch_is_archived_once(
    defs, instance, settings, s3, kinesis
):
    changes = generated(400, seed=5, other_type_share=0.0, malformed_share=0.0)
    put_changes(kinesis, settings, changes)
    cursor = drain(defs, instance).cursor
    again = changes[::7]  # delivered again: same eventID, a new sequence number
    put_changes(kinesis, settings, again + generated(50, seed=6, other_type_share=0.0))

    drain(defs, instance, cursor)

    expected = expected_records([c.data for c in changes + generated(50, seed=6)])
    for fmt, rows in archived(s3, settings).items():
        assert event_id_counts(rows) == Counter(dict.fromkeys(expected, 1)), fmt
    summaries = [
        orjson.loads(s3.get_object(Bucket=settings.bucket, Key=k)["Body"].read())
        for k in keys(s3, settings.bucket, f"{settings.prefix}/landing/_batches/")
        if k.endswith(".json")
    ]
    assert sum(s["duplicates"] for s in summaries) == len(again)


# -- few files ---------------------------------------------------------------------------------


def test_the_files_of_a_partition_stay_bounded_under_continuous_traffic(
    defs, instance, settings, s3, kinesis
):
    """Forty archive runs into the same partition: never more than MAX_FILES files per format,
    every change once, and the files merge (records per file grow)."""
    cursor, sent = None, []
    for seed in range(40):
        part = ChangeGenerator(
            seed=100 + seed,
            now=NOW,
            days=0,
            other_type_share=0.0,
            malformed_share=0.0,
            type_weights={"demand": 1.0},
        ).changes(15)
        sent += part
        put_changes(kinesis, settings, part)
        cursor = drain(defs, instance, cursor).cursor
        for day in {d for _, d, _ in expected_records([c.data for c in part]).values()}:
            for fmt in ("avro", "parquet"):
                files = data_files(s3, settings, fmt, "demand", day)
                assert 1 <= len(files) <= MAX_FILES, (fmt, day, len(files))

    expected = expected_records([c.data for c in sent])
    rows = archived(s3, settings)
    for fmt in rows:
        assert event_id_counts(rows[fmt]) == Counter(dict.fromkeys(expected, 1)), fmt
    days = {d for _, d, _ in expected.values()}
    files = sum(len(data_files(s3, settings, "parquet", "demand", d)) for d in days)
    assert len(expected) / files > 40  # 40 runs of ~15 changes did not leave 40 files a day


# -- the UI tells the truth --------------------------------------------------------------------


def test_a_run_over_scattered_days_materializes_exactly_the_days_it_wrote(
    defs, instance, settings, s3, kinesis
):
    """Sales months ahead, demand today: the partitions view holds the days with data, each
    with its own row count, and no day in between."""
    changes = ChangeGenerator(
        seed=8, now=NOW, days=1, other_type_share=0.0, malformed_share=0.0
    ).changes(600)
    put_changes(kinesis, settings, changes)
    drain(defs, instance)

    rows = archived(s3, settings)["parquet"]
    for record_type in ("demand", "notification", "event", "sale"):
        per_day = Counter(d for t, d, _ in rows if t == record_type)
        key = dg.AssetKey(record_type)
        assert instance.get_materialized_partitions(key) == set(per_day), record_type
        records = instance.fetch_materializations(key, limit=1000).records
        counts = {r.partition_key: r.asset_materialization.metadata for r in records}
        for day, count in per_day.items():
            assert counts[day]["dagster/row_count"].value == count, (record_type, day)
    sale_days = sorted({d for t, d, _ in rows if t == "sale"})
    assert len(sale_days) > 1
    first, last = datetime.fromisoformat(sale_days[0]), datetime.fromisoformat(sale_days[-1])
    assert (last - first).days + 1 > len(sale_days)  # scattered: days in between hold nothing
