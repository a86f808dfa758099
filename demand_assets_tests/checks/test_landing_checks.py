"""The two WARN checks that read the batch summaries rather than the archive, on summaries and a
clock a test gives: `error_rate_below_0_1_percent` and `newest_batch_archived`, each passing and
failing at its bound."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from demand_assets.checks.evaluate import (
    error_rate,
    newest_batch_archived,
)
from demand_assets.storage.batches import BatchSummary

DAY = "2026-11-20"
NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)


def summary(batch: str, *, archivable=None, rejected=None, last_arrival=None) -> BatchSummary:
    return BatchSummary(
        batch=batch,
        stream="demand-capture",
        archivable=dict(archivable or {}),
        rejected=dict(rejected or {}),
        last_arrival=None if last_arrival is None else last_arrival.isoformat(),
    )


# -- error_rate_below_0_1_percent -------------------------------------------------------------


def rate_of(rejected: int, archivable: int, **more) -> object:
    summaries = [
        summary(
            "20261120T100000Z-a",
            archivable={f"demand/{DAY}": archivable},
            rejected={"demand": rejected},
        ),
        *more.get("others", []),
    ]
    return error_rate(summaries, "demand", DAY)


@pytest.mark.parametrize(
    ("rejected", "archivable", "passed"),
    [
        (0, 1000, True),
        (1, 1000, True),  # 1 of 1,001: 0.0999 %, just under
        (1, 999, False),  # 1 of 1,000: exactly 0.1 % is not below it
        (3, 2997, False),  # 3 of 3,000: exactly 0.1 % again
        (2, 1997, False),  # 2 of 1,999: 0.10005 %, just over
        (5, 95, False),
    ],
)
def test_error_rate_at_its_bound(rejected, archivable, passed):
    outcome = rate_of(rejected, archivable)
    assert outcome.passed is passed, outcome.metadata
    assert outcome.severity == "WARN"
    assert outcome.metadata["rejected"] == rejected
    assert outcome.metadata["changes"] == rejected + archivable
    assert outcome.metadata["error_rate"] == pytest.approx(rejected / (rejected + archivable))


def test_a_day_without_changes_of_the_type_passes():
    outcome = error_rate([], "demand", DAY)
    assert outcome.passed and outcome.metadata["changes"] == 0
    assert outcome.metadata["error_rate"] == 0.0


def test_error_rate_sums_every_batch_of_the_day_and_each_partition_it_touched():
    summaries = [
        summary("20261120T100000Z-a", archivable={"demand/2026-11-19": 400}, rejected={}),
        summary(
            "20261120T110000Z-b",
            archivable={"demand/2026-11-20": 300, "demand/2026-11-21": 299},
            rejected={"demand": 1},
        ),
    ]
    # 1 of 1,000 in all: exactly at the bound
    outcome = error_rate(summaries, "demand", DAY)
    assert not outcome.passed
    assert outcome.metadata["changes"] == 1000
    # a batch more, with 1 clean change: 1 of 1,001
    summaries.append(summary("20261120T120000Z-c", archivable={"demand/2026-11-20": 1}))
    assert error_rate(summaries, "demand", DAY).passed


def test_error_rate_counts_only_its_own_type():
    others = [
        summary(
            "20261120T110000Z-n",
            archivable={f"notification/{DAY}": 10},
            rejected={"notification": 10, "unknown": 50},
        )
    ]
    demand = rate_of(0, 100, others=others)
    assert demand.passed and demand.metadata["changes"] == 100
    notification = error_rate(
        [summary("20261120T100000Z-a", archivable={f"demand/{DAY}": 5000}), *others],
        "notification",
        DAY,
    )
    assert not notification.passed
    assert notification.metadata["rejected"] == 10 and notification.metadata["changes"] == 20


# -- newest_batch_archived --------------------------------------------------------------------


def archived_in(held: dict[str, set[str]]):
    return lambda day: held.get(day, set())


def fresh(summaries, held=None, now=NOW, record_type="demand"):
    return newest_batch_archived(summaries, record_type, now=now, archived=archived_in(held or {}))


def newest(age: timedelta, days=(DAY,), batch="20261120T115000Z-new") -> BatchSummary:
    return summary(batch, archivable={f"demand/{d}": 3 for d in days}, last_arrival=NOW - age)


@pytest.mark.parametrize(
    ("age", "passed"),
    [
        (timedelta(0), True),
        (timedelta(minutes=14, seconds=59), True),  # just inside
        (timedelta(minutes=15), False),  # at the bound: no longer within it
        (timedelta(minutes=15, seconds=1), False),  # just outside
        (timedelta(hours=6), False),
    ],
)
def test_an_unarchived_newest_batch_at_the_bound(age, passed):
    outcome = fresh([newest(age)])
    assert outcome.passed is passed, outcome.metadata
    assert outcome.severity == "WARN"
    assert outcome.metadata["stream_traffic"] is True
    assert outcome.metadata["newest_batch"] == "20261120T115000Z-new"
    assert outcome.metadata["age_seconds"] == age.total_seconds()
    assert outcome.metadata["partitions_missing_it"] == [DAY]


def test_an_archived_newest_batch_passes_whatever_its_age():
    old = newest(timedelta(hours=6), days=(DAY, "2026-11-19"))
    held = {DAY: {old.batch}, "2026-11-19": {"other", old.batch}}
    outcome = fresh([old], held)
    assert outcome.passed
    assert outcome.metadata["partitions_missing_it"] == []


def test_a_newest_batch_missing_from_one_of_its_partitions_fails_once_too_old():
    batch = newest(timedelta(minutes=15, seconds=1), days=(DAY, "2026-11-19"))
    outcome = fresh([batch], {DAY: {batch.batch}})
    assert not outcome.passed
    assert outcome.metadata["partitions_missing_it"] == ["2026-11-19"]
    inside = newest(timedelta(minutes=14, seconds=59), days=(DAY, "2026-11-19"))
    assert fresh([inside], {DAY: {inside.batch}}).passed


def test_only_the_newest_batch_counts():
    stale = newest(timedelta(hours=2), batch="20261120T095000Z-old")
    latest = newest(timedelta(minutes=1))
    # the stale one is not archived, but a newer batch is archived: passes
    assert fresh([latest, stale], {DAY: {latest.batch}}).passed
    # the newest one is unarchived but young, an older one archived: passes
    assert fresh([stale, latest], {DAY: {stale.batch}}).passed
    # the newest, unarchived, is old: fails, whichever order the summaries come in
    late = newest(timedelta(minutes=16))
    for order in ([late, stale], [stale, late]):
        outcome = fresh(order, {DAY: {stale.batch}})
        assert not outcome.passed and outcome.metadata["newest_batch"] == late.batch


def test_newest_is_by_arrival_time_not_by_the_text_of_the_timestamp():
    # 12:40+01:00 is 11:40 UTC: older than 11:50 UTC, though its text sorts later
    earlier = summary(
        "20261120T114000Z-earlier",
        archivable={f"demand/{DAY}": 1},
        last_arrival=datetime.fromisoformat("2026-11-20T12:40:00+01:00"),
    )
    later = summary(
        "20261120T115000Z-later",
        archivable={f"demand/{DAY}": 1},
        last_arrival=datetime(2026, 11, 20, 11, 50, tzinfo=UTC),
    )
    outcome = fresh([earlier, later], {DAY: {earlier.batch}}, now=NOW + timedelta(minutes=10))
    assert outcome.metadata["newest_batch"] == later.batch
    assert not outcome.passed  # 20 minutes old, unarchived


def test_without_traffic_of_the_type_it_passes():
    other = summary(
        "20261120T100000Z-n",
        archivable={f"notification/{DAY}": 4},
        last_arrival=NOW - timedelta(hours=3),
    )
    no_arrival = summary("20261120T100000Z-x", archivable={f"demand/{DAY}": 4})
    for summaries in ([], [other], [no_arrival]):
        outcome = fresh(summaries)
        assert outcome.passed and outcome.metadata == {"stream_traffic": False}
    assert not fresh([other], record_type="notification").passed
