"""The alert sensors (README, "Alerts"): demand_assets/alerting.py's conditions, on Dagster.

- `demand_run_failure_sensor`: a run that failed for good (not one Dagster's run retries will
  run again) alerts, once per job (and record type) until a run of it succeeds: the job's
  earlier finished runs are that condition's state.
- `demand_alert_sensor`, every minute: the stream sensor's lag and the day's error rate (from
  the batch summaries landed since its last tick), the oldest batch not yet archived (the
  pending marks), and the ERROR-severity checks failing (the instance's check evaluations). A
  condition alerts when it starts to hold, and again only after it has cleared; which ones hold
  is kept in the cursor with what it has read.

Both publish through the `alert_publisher` resource: SNS in AWS, a log line locally (each tick's
log is on the sensor's page in the UI).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import dagster as dg
import orjson

from demand_assets import alerting
from demand_assets.alerting import AlertState, CheckResult, Thresholds
from demand_assets.defs.archive_job import ARCHIVE_JOB
from demand_assets.defs.resources import AlertPublisher, ArchiveResource, KinesisStreamResource
from demand_assets.defs.tags import TYPE_TAG
from demand_assets.records import RECORD_TYPES
from demand_assets.storage.archive import Archive
from demand_assets.storage.batches import BatchSummary
from demand_assets.storage.layout import name_of

ALERT_SENSOR = "demand_alert_sensor"
RUN_FAILURE_SENSOR = "demand_run_failure_sensor"
ALERT_INTERVAL_SECONDS = 60
RUN_FAILURE_INTERVAL_SECONDS = 30
SUMMARIES_PER_TICK = 2000  # a first tick late in a busy day catches up over a few ticks
CHECK_PAGE = 50
CHECK_PAGES = 4
# Check evaluations are read again this far back: one written late (clocks of other tasks) is
# not missed, and reading one again changes nothing.
CHECK_OVERLAP_SECONDS = 120.0
# An evaluation is planned when its run starts: look back this far for runs still evaluating.
CHECK_LOOKBACK_SECONDS = 6 * 3600.0


def now_utc() -> datetime:
    return datetime.now(UTC)


# demand_run_failure_sensor -------------------------------------------------------------------


def run_failure_sensor(
    minimum_interval_seconds: int = RUN_FAILURE_INTERVAL_SECONDS,
) -> dg.SensorDefinition:
    @dg.run_failure_sensor(
        name=RUN_FAILURE_SENSOR,
        description=(
            "Alerts on a run that failed after its retries (not one Dagster will retry), once "
            "per job and record type until a run of it succeeds."
        ),
        minimum_interval_seconds=minimum_interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
    )
    def demand_run_failure_sensor(
        context: dg.RunFailureSensorContext, alert_publisher: AlertPublisher
    ) -> None:
        run = context.dagster_run
        if alerting.will_retry(run.tags):
            context.log.info("run %s of %s failed; Dagster retries it", run.run_id, run.job_name)
            return
        failing_since = earlier_final_failure(context.instance, run)
        if failing_since is not None:
            context.log.info(
                "run %s of %s failed; alerted already: the job fails since run %s",
                run.run_id,
                run.job_name,
                failing_since,
            )
            return
        steps = [
            (event.step_key or "?", alerting.first_line(_error_message(event)))
            for event in context.get_step_failure_events()
        ]
        alert = alerting.run_failed(
            run.job_name, run.run_id, run.tags, context.failure_event.message or "", steps
        )
        alert_publisher.publish(alert, context.log)

    return demand_run_failure_sensor


def earlier_final_failure(instance: dg.DagsterInstance, run: dg.DagsterRun) -> str | None:
    """The run id of the job's last finished run before this one if that failed for good too
    (then this failure was alerted already); None after a success, or with no earlier run.
    Runs of another record type (rebuilds) are another condition."""
    record = instance.get_run_record_by_id(run.run_id)
    tags = {TYPE_TAG: run.tags[TYPE_TAG]} if TYPE_TAG in run.tags else None
    earlier = instance.get_run_records(
        dg.RunsFilter(
            job_name=run.job_name,
            statuses=[dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE],
            tags=tags,
            created_before=record.create_timestamp if record else None,
        ),
        limit=20,
    )
    for other in earlier:
        previous = other.dagster_run
        if previous.run_id == run.run_id:
            continue
        if previous.status == dg.DagsterRunStatus.SUCCESS:
            return None
        if not alerting.will_retry(previous.tags):
            return previous.run_id
    return None


def _error_message(event) -> str:
    """The step's own error: the innermost cause under Dagster's wrapping errors."""
    error = getattr(event.event_specific_data, "error", None)
    while error is not None and error.cause is not None:
        error = error.cause
    return error.message if error is not None else (event.message or "")


# demand_alert_sensor ---------------------------------------------------------------------------


def alert_sensor(
    check_keys: Sequence[dg.AssetCheckKey],
    thresholds: Thresholds,
    minimum_interval_seconds: int = ALERT_INTERVAL_SECONDS,
    clock: Callable[[], datetime] = now_utc,
) -> dg.SensorDefinition:
    check_keys = list(check_keys)

    @dg.sensor(
        name=ALERT_SENSOR,
        description=(
            f"Alerts once per condition until it clears: stream lag over "
            f"{thresholds.lag_seconds:g} s, a type's error rate of the day at or over "
            f"{thresholds.error_rate:.2%}, a batch not archived after "
            f"{thresholds.archive_minutes:g} min, a failed ERROR-severity check."
        ),
        minimum_interval_seconds=minimum_interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
    )
    def demand_alert_sensor(
        context: dg.SensorEvaluationContext,
        archive: ArchiveResource,
        stream: KinesisStreamResource,
        alert_publisher: AlertPublisher,
    ):
        state = AlertState.load(context.cursor)
        now = clock()
        store = archive.archive()
        read_summaries(store, state, now)
        read_checks(context.instance, check_keys, state)
        root = f"s3://{store.bucket.name}/{store.layout.prefix}"
        holding = [
            alerting.stream_lag(state, thresholds, stream.stream_name),
            *alerting.error_rates(state, thresholds, f"{root}/errors/"),
            alerting.archive_stalled(
                oldest_pending(store),
                now,
                thresholds,
                last_archive_success(context.instance),
                f"{root}/landing/_pending/",
            ),
            *(alerting.check_failed(key, entry) for key, entry in sorted(state.failing.items())),
        ]
        new, cleared, active = alerting.settle(
            state.active, [a for a in holding if a is not None], now
        )
        state.active = active
        for alert in new:
            try:
                alert_publisher.publish(alert, context.log)
            except Exception as exc:  # noqa: BLE001 (the next tick tries it again)
                context.log.error("could not publish alert %s: %r", alert.key, exc)
                del state.active[alert.key]
        for key in cleared:
            context.log.info("cleared: %s", key)
        cursor = state.dump()
        if not new and not cleared and cursor == context.cursor:
            return dg.SkipReason(f"{len(state.active)} conditions holding, alerted already")
        return dg.SensorResult(cursor=cursor)

    return demand_alert_sensor


def read_summaries(archive: Archive, state: AlertState, now: datetime) -> None:
    """The batch summaries landed since the last tick, yesterday's and today's: into the day's
    totals, and the newest one's lag."""
    today = now.date().isoformat()
    keys: list[str] = []
    after = state.summaries_after
    for day in alerting.summary_days(today):
        prefix = archive.layout.batch_summaries_prefix(day)
        if after and not after.startswith(prefix) and after > prefix:
            continue  # read past this day already
        start = after if after and after.startswith(prefix) else None
        keys += [k for k in archive.bucket.keys(prefix, start_after=start) if k.endswith(".json")]
    if not keys:
        return
    batch = keys[:SUMMARIES_PER_TICK]
    with ThreadPoolExecutor(8) as pool:
        summaries = [BatchSummary.from_json(b) for b in pool.map(archive.bucket.get, batch)]
    alerting.take_summaries(state, summaries, today, batch[-1])
    newest = summaries[-1] if batch[-1] == keys[-1] else None
    newest = newest or BatchSummary.from_json(archive.bucket.get(keys[-1]))
    alerting.take_newest(state, newest)


def oldest_pending(archive: Archive) -> dict[str, tuple[str, str]]:
    """record type -> (its oldest pending batch, when its first change arrived)."""
    oldest = {}
    for record_type in RECORD_TYPES:
        keys = archive.bucket.keys(archive.layout.pending_prefix(record_type), limit=1)
        if not keys:
            continue
        batch = name_of(keys[0])
        arrival = alerting.batch_arrival(batch)
        if arrival is None:  # a table scan's or a replay's batch: its mark says when
            body = archive.bucket.get_or_none(keys[0])
            arrival = orjson.loads(body).get("arrival") if body else None
        if arrival:
            oldest[record_type] = (batch, arrival)
    return oldest


def last_archive_success(instance: dg.DagsterInstance) -> str | None:
    records = instance.get_run_records(
        dg.RunsFilter(job_name=ARCHIVE_JOB, statuses=[dg.DagsterRunStatus.SUCCESS]), limit=1
    )
    if not records or records[0].end_time is None:
        return None
    return datetime.fromtimestamp(records[0].end_time, UTC).isoformat()


def read_checks(
    instance: dg.DagsterInstance, check_keys: Sequence[dg.AssetCheckKey], state: AlertState
) -> None:
    """Apply the check evaluations written since the last tick, in the order they were written,
    to the failing ERROR checks."""
    since = state.checks_after - CHECK_OVERLAP_SECONDS
    evaluated = []
    runs: dict[str, dict[str, str]] = {}
    for key in check_keys:
        cursor = None
        for _ in range(CHECK_PAGES):
            records = instance.event_log_storage.get_asset_check_execution_history(
                key, limit=CHECK_PAGE, cursor=cursor
            )
            for record in records:
                if record.status.value == "PLANNED" or record.event is None:
                    continue
                if record.event.timestamp > since:
                    evaluated.append(record)
            if len(records) < CHECK_PAGE or records[-1].create_timestamp < (
                since - CHECK_LOOKBACK_SECONDS
            ):
                break
            cursor = records[-1].id
    for record in sorted(evaluated, key=lambda r: (r.event.timestamp, r.id)):
        if record.run_id not in runs:
            run = instance.get_run_by_id(record.run_id)
            runs[record.run_id] = dict(run.tags) if run else {}
        alerting.take_check_result(state.failing, check_result(record, runs[record.run_id]))
        state.checks_after = max(state.checks_after, record.event.timestamp)


def check_result(record, run_tags: dict[str, str]) -> CheckResult:
    evaluation = record.evaluation
    metadata = {k: getattr(v, "value", v) for k, v in evaluation.metadata.items()}
    if record.partition:
        scope = (record.partition, record.partition)
    elif alerting.RANGE_START_TAG in run_tags:
        scope = (run_tags[alerting.RANGE_START_TAG], run_tags[alerting.RANGE_END_TAG])
    else:
        scope = None
    failed = metadata.get("failed_partitions") or ()
    measured = ", ".join(
        f"{name} {metadata[name]}"
        for name in ("failing", "avro_rows", "parquet_rows", "landed_changes", "error_rate")
        if name in metadata
    )
    return CheckResult(
        asset=evaluation.asset_key.to_user_string(),
        check=evaluation.check_name,
        passed=evaluation.passed,
        severity=evaluation.severity.value,
        run_id=record.run_id,
        scope=scope,
        failed_days=tuple(failed) if isinstance(failed, list | tuple) else (),
        blocking=bool(evaluation.blocking),
        summary=measured,
    )
