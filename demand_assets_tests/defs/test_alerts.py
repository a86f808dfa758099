"""The alert sensors on real Dagster machinery (sensor ticks on an instance, failed runs and
check evaluations it recorded) and the emulated AWS account, with a publisher that records what
it was given: each alert fires when its condition holds, not when it does not, once until the
condition clears, and again after that. One test publishes to an SNS topic on the moto server
and reads the message back from a subscribed SQS queue."""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import re
from datetime import datetime, timedelta
from pathlib import Path

import boto3
import dagster as dg
import pyarrow.parquet as pq
import pytest
from dagster._core.storage.tags import (
    PARENT_RUN_ID_TAG,
    RETRY_NUMBER_TAG,
    ROOT_RUN_ID_TAG,
    WILL_RETRY_TAG,
)

from demand_assets import alerting
from demand_assets.alerting import Alert, AlertState, CheckResult, Thresholds
from demand_assets.config import Settings
from demand_assets.definitions import build_definitions
from demand_assets.defs.alerts import ALERT_SENSOR, RUN_FAILURE_SENSOR, alert_sensor
from demand_assets.defs.archive_job import ARCHIVE_JOB
from demand_assets.defs.partitions import partition_window
from demand_assets.defs.resources import AlertPublisher, LogAlertPublisher, SNSAlertPublisher
from demand_assets.defs.sensor import SENSOR_NAME
from demand_assets.environment import alert_thresholds, partitions_from_settings
from demand_assets.formats import encode_groups
from demand_assets.records.change import Change
from demand_assets.storage.batches import land_batch
from demand_assets.storage.layout import Layout
from demand_assets.stream.checkpoints import batch_name
from demand_assets_tests.builders import change, valid_item
from demand_assets_tests.defs.operating import SHARD, archive_of
from demand_assets_tests.defs.pipeline import NOW, drain, execute, generated, put

REPO = Path(__file__).resolve().parents[2]
THRESHOLDS = Thresholds(lag_seconds=300, error_rate=0.1, archive_minutes=15)
PUBLISHED: dict[str, list[Alert]] = {}


class RecordingPublisher(AlertPublisher):
    """The stub publisher: what the sensors published, under `book` in PUBLISHED (Dagster hands a
    sensor a copy of a resource, so the copy writes where the test can read)."""

    book: str

    def publish(self, alert: Alert, log: logging.Logger) -> None:
        PUBLISHED[self.book].append(alert)
        super().publish(alert, log)


@pytest.fixture
def publisher(request):
    PUBLISHED[request.node.name] = []
    yield RecordingPublisher(book=request.node.name, ui_url="https://dagster.example")
    del PUBLISHED[request.node.name]


def published(publisher: RecordingPublisher) -> list[Alert]:
    return PUBLISHED[publisher.book]


class Clock:
    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock():
    return Clock(NOW)


@pytest.fixture
def sensor(defs, clock):
    """demand_alert_sensor as definitions.py builds it, on the test's clock."""
    keys = [key for checks in defs.asset_checks for key in checks.check_keys]
    return alert_sensor(keys, THRESHOLDS, clock=clock)


class Ticks:
    """Ticks of a sensor on an instance, each from the cursor the previous one returned."""

    def __init__(self, sensor, instance, resources):
        self.sensor, self.instance, self.resources = sensor, instance, resources
        self.cursor = None

    def __call__(self):
        with dg.build_sensor_context(
            instance=self.instance, cursor=self.cursor, resources=self.resources
        ) as context:
            result = self.sensor.evaluate_tick(context)
        self.cursor = result.cursor or self.cursor
        return result


@pytest.fixture
def ticks(sensor, instance, defs, publisher):
    return Ticks(sensor, instance, {**defs.resources, "alert_publisher": publisher})


def arrived(minutes_ago: float) -> datetime:
    return NOW - timedelta(minutes=minutes_ago)


SEQ = iter(range(1000, 10**9, 1000))


def land(s3, settings, payloads, arrival: datetime, millis_behind_latest: int = 0):
    """Land payloads as the sensor lands a batch read `millis_behind_latest` behind the tip."""
    first = next(SEQ)
    batch = batch_name(settings.stream_name, {SHARD: str(first)}, arrival)
    changes = [
        Change(SHARD, str(first + i), arrival.isoformat(timespec="milliseconds"), data)
        for i, data in enumerate(payloads)
    ]
    window = partition_window(partitions_from_settings(settings))
    archive = archive_of(s3, settings)
    return land_batch(archive, settings.stream_name, batch, changes, window, millis_behind_latest)


IDS = iter(range(10**9))


def valid(n: int, record_type: str = "demand") -> list[bytes]:
    return [
        change("INSERT", valid_item(record_type, fanId=f"f-{i}"), event_id=f"ok-{i}")
        for i in (next(IDS) for _ in range(n))
    ]


def invalid(n: int) -> list[bytes]:
    """demand changes that go to errors: a systemUserId not of the form id.databaseId.memberId."""
    return [
        change("INSERT", valid_item("demand", systemUserId="nodots"), event_id=f"bad-{i}")
        for i in (next(IDS) for _ in range(n))
    ]


def kinds(alerts: list[Alert]) -> list[str]:
    return [a.kind for a in alerts]


# Stream lag --------------------------------------------------------------------------------------


def test_stream_lag_alerts_once_while_over_the_threshold_and_again_after_it_cleared(
    ticks, publisher, settings, s3, kinesis
):
    land(s3, settings, valid(3), arrived(5), millis_behind_latest=200_000)
    ticks()
    assert published(publisher) == []  # 200 s behind: under 300 s

    land(s3, settings, valid(3), arrived(4), millis_behind_latest=420_000)
    ticks()
    (alert,) = published(publisher)
    assert alert.key == "stream_lag"
    assert "420 s" in alert.title and settings.stream_name in alert.title
    assert f"/locations/demand_assets/sensors/{SENSOR_NAME}" in alert.pages
    assert alert.runbook == "README.md#stream-lag"

    land(s3, settings, valid(3), arrived(3), millis_behind_latest=900_000)
    ticks()
    ticks()
    assert len(published(publisher)) == 1  # still behind: no second alert

    land(s3, settings, valid(3), arrived(2), millis_behind_latest=1_000)
    ticks()
    assert "stream_lag" not in AlertState.load(ticks.cursor).active  # cleared, quietly
    assert len(published(publisher)) == 1

    land(s3, settings, valid(3), arrived(1), millis_behind_latest=301_000)
    ticks()
    assert kinds(published(publisher)) == ["stream_lag", "stream_lag"]


# Error rate --------------------------------------------------------------------------------------


def test_the_error_rate_alerts_once_per_type_and_day_until_it_falls_under_the_bound(
    ticks, publisher, settings, s3, kinesis
):
    land(s3, settings, valid(20), arrived(10))
    land(s3, settings, invalid(1), arrived(9))
    ticks()
    assert published(publisher) == []  # 1 of 21: 4.8 %, under 10 %

    land(s3, settings, invalid(2), arrived(8))
    ticks()
    (alert,) = published(publisher)  # 3 of 23: 13 %
    assert alert.key == f"error_rate:demand:{NOW.date()}"
    assert "13.04%" in alert.title
    assert "3 of the 23 demand changes" in alert.details[0]
    assert f"s3://{settings.bucket}/{settings.prefix}/errors/" in " ".join(alert.where)
    assert "/assets/demand?view=checks" in alert.pages

    land(s3, settings, invalid(1), arrived(7))
    ticks()
    assert len(published(publisher)) == 1  # 4 of 24, still over: no second alert

    land(s3, settings, valid(30), arrived(6))
    ticks()  # 4 of 54: 7.4 %, cleared
    land(s3, settings, invalid(3), arrived(5))
    ticks()  # 7 of 57: 12.3 %, again
    assert kinds(published(publisher)) == ["error_rate", "error_rate"]
    assert "12.28%" in published(publisher)[1].title


def test_error_rates_count_each_summary_once_across_ticks(ticks, settings, s3, kinesis):
    land(s3, settings, valid(5), arrived(3))
    ticks()
    land(s3, settings, valid(5) + invalid(2), arrived(2))
    ticks()
    ticks()
    assert AlertState.load(ticks.cursor).totals == {str(NOW.date()): {"demand": [2, 12]}}


# No batch archived -------------------------------------------------------------------------------


def test_a_batch_left_unarchived_alerts_once_and_again_after_a_run_archived_it(
    ticks, publisher, clock, defs, instance, settings, s3, kinesis
):
    land(s3, settings, valid(4), NOW)
    clock.now = NOW + timedelta(minutes=14)
    ticks()
    assert published(publisher) == []  # pending 14 minutes: under 15

    clock.now = NOW + timedelta(minutes=16)
    ticks()
    clock.now = NOW + timedelta(minutes=30)
    ticks()
    (alert,) = published(publisher)
    assert alert.key == "archive_stalled"
    assert "no batch archived for 16 min" in alert.title
    assert f"last successful {ARCHIVE_JOB} run ended never" in alert.details
    assert any(d.startswith("demand: batch ") for d in alert.details)
    assert f"/locations/demand_assets/jobs/{ARCHIVE_JOB}" in alert.pages

    assert execute(defs, instance, dg.RunRequest(job_name=ARCHIVE_JOB)).success
    ticks()
    assert AlertState.load(ticks.cursor).active == {}

    land(s3, settings, valid(4), NOW + timedelta(minutes=31))
    clock.now = NOW + timedelta(minutes=50)
    ticks()
    second = published(publisher)[1]
    assert second.key == "archive_stalled"
    assert "run ended never" not in " ".join(second.details)  # the run above succeeded


# Failed ERROR checks -----------------------------------------------------------------------------


def _busiest_demand_day(s3, settings) -> str:
    layout = Layout(settings.prefix)
    listing = s3.list_objects_v2(
        Bucket=settings.bucket, Prefix=layout.table_prefix("parquet", "demand")
    )
    days = [re.search(r"partition_date=([\d-]+)/", o["Key"])[1] for o in listing["Contents"]]
    return max(set(days), key=days.count)


def _leak_pii(s3, settings, day: str) -> list[str]:
    """A data file in both formats with a deleted row that keeps its email."""
    layout = Layout(settings.prefix)
    prefix = layout.partition_prefix("parquet", "demand", day)
    key = next(
        o["Key"]
        for o in s3.list_objects_v2(Bucket=settings.bucket, Prefix=prefix)["Contents"]
        if "/_" not in o["Key"]
    )
    row = pq.read_table(io.BytesIO(s3.get_object(Bucket=settings.bucket, Key=key)["Body"].read()))
    row = dict(row.to_pylist()[0])
    row.update(isDeleted=True, email="fan@example.com")
    row["provenance"] = {**row["provenance"], "eventID": "leaky-change"}
    ((avro, parquet),) = encode_groups("demand", [[row]])
    written = []
    for fmt, body in (("avro", avro), ("parquet", parquet)):
        written.append(layout.data_key(fmt, "demand", day, "intruder"))
        s3.put_object(Bucket=settings.bucket, Key=written[-1], Body=body)
    return written


def _check_demand(defs, instance, day: str):
    job = defs.resolve_implicit_global_asset_job_def()
    return job.execute_in_process(
        partition_key=day,
        asset_selection=[dg.AssetKey("demand")],
        instance=instance,
        raise_on_error=False,
    )


def test_a_failed_error_check_alerts_once_until_its_partition_passes(
    ticks, publisher, defs, instance, settings, s3, kinesis
):
    changes = generated(300, seed=5, type_weights={"demand": 1.0})
    put(kinesis, settings.stream_name, [(c.data, c.partition_key) for c in changes])
    drain(defs, instance)
    day = _busiest_demand_day(s3, settings)
    assert _check_demand(defs, instance, day).success
    ticks()
    assert published(publisher) == []  # every check passed

    intruders = _leak_pii(s3, settings, day)
    result = _check_demand(defs, instance, day)
    failed = {e.check_name: e for e in result.get_asset_check_evaluations() if not e.passed}
    assert failed["deleted_rows_keep_no_pii"].severity == dg.AssetCheckSeverity.ERROR
    ticks()
    alerts = {a.key: a for a in published(publisher)}
    error_checks = {n for n, e in failed.items() if e.severity == dg.AssetCheckSeverity.ERROR}
    assert set(alerts) == {f"check:demand:{name}" for name in error_checks}  # no WARN check
    pii = alerts["check:demand:deleted_rows_keep_no_pii"]
    assert pii.kind == "check_failed" and pii.runbook == "README.md#error-check-failed"
    assert f"demand {day}" in pii.title and "failing 2" in pii.details[0]
    assert "blocking" in pii.details[1]
    assert f"/assets/demand?view=checks&partition={day}" in pii.pages
    assert f"/runs/{result.run_id}" in pii.pages

    assert not _check_demand(defs, instance, day).success  # fails again: no second alert
    ticks()
    assert len(published(publisher)) == len(error_checks)

    s3.delete_objects(Bucket=settings.bucket, Delete={"Objects": [{"Key": k} for k in intruders]})
    assert _check_demand(defs, instance, day).success
    ticks()
    assert AlertState.load(ticks.cursor).active == {}
    assert len(published(publisher)) == len(error_checks)

    _leak_pii(s3, settings, day)
    _check_demand(defs, instance, day)
    ticks()
    assert [a.key for a in published(publisher)].count(pii.key) == 2  # cleared, so again


def test_check_scopes_a_pass_clears_only_what_it_covered():
    failing: dict[str, dict] = {}

    def result(passed, scope, severity="ERROR", failed_days=()):
        return CheckResult("demand", "c", passed, severity, "run-1", scope, failed_days)

    alerting.take_check_result(failing, result(False, ("2026-11-19", "2026-11-19")))
    alerting.take_check_result(
        failing, result(False, ("2026-11-01", "2026-11-30"), failed_days=("2026-11-03",))
    )
    alerting.take_check_result(
        failing, result(False, ("2026-11-25", "2026-11-25"), severity="WARN")
    )
    assert failing["check:demand:c"]["scopes"] == [
        ["2026-11-03", "2026-11-03"],
        ["2026-11-19", "2026-11-19"],
    ]

    alerting.take_check_result(failing, result(True, ("2026-11-20", "2026-11-20")))  # another day
    alerting.take_check_result(failing, result(True, ("2026-11-19", "2026-11-19")))
    assert failing["check:demand:c"]["scopes"] == [["2026-11-03", "2026-11-03"]]
    alerting.take_check_result(failing, result(True, ("2026-11-01", "2026-11-10")))
    assert failing == {}

    alerting.take_check_result(failing, result(False, None))  # scope not known
    alerting.take_check_result(failing, result(True, ("2026-11-01", "2026-11-10")))
    assert failing["check:demand:c"]["scopes"] == [["*", "*"]]
    alerting.take_check_result(failing, result(True, None))
    assert failing == {}


# Failed runs -------------------------------------------------------------------------------------


@pytest.fixture
def failure_ticks(defs, publisher):
    """demand_run_failure_sensor's ticks on an instance (the first one only sets its cursor)."""

    def make(instance):
        sensor = defs.resolve_sensor_def(RUN_FAILURE_SENSOR)
        ticks = Ticks(sensor, instance, {"alert_publisher": publisher})
        ticks()
        return ticks

    return make


def _break_pending_marks(s3, settings):
    layout = Layout(settings.prefix)
    listing = s3.list_objects_v2(Bucket=settings.bucket, Prefix=layout.pending_prefix("demand"))
    for o in listing["Contents"]:
        s3.put_object(Bucket=settings.bucket, Key=o["Key"], Body=b"{not json")
    return [o["Key"] for o in listing["Contents"]]


def test_a_failed_run_alerts_once_per_job_until_a_run_of_it_succeeds(
    failure_ticks, publisher, instance, settings, s3, kinesis
):
    defs = build_definitions(settings, retry_policy=None)
    ticks = failure_ticks(instance)
    request = dg.RunRequest(job_name=ARCHIVE_JOB)
    land(s3, settings, valid(3), arrived(1))
    marks = _break_pending_marks(s3, settings)

    first = execute(defs, instance, request, raise_on_error=False)
    assert not first.success
    ticks()
    (alert,) = published(publisher)
    assert alert.key == f"run_failed:{ARCHIVE_JOB}" and alert.runbook == "README.md#run-failed"
    assert f"run of {ARCHIVE_JOB} failed" in alert.title
    assert f"/runs/{first.run_id}" in alert.pages
    assert any(d.startswith("step archive_demand: ") for d in alert.details), alert.details
    assert f"job {ARCHIVE_JOB}, run {first.run_id}" in alert.where

    assert not execute(defs, instance, request, raise_on_error=False).success
    ticks()
    assert len(published(publisher)) == 1  # the job is still failing: no second alert

    s3.delete_objects(Bucket=settings.bucket, Delete={"Objects": [{"Key": k} for k in marks]})
    assert execute(defs, instance, request).success
    land(s3, settings, valid(3), arrived(1))
    _break_pending_marks(s3, settings)
    third = execute(defs, instance, request, raise_on_error=False)
    ticks()
    assert [a.pages[0] for a in published(publisher)] == [
        f"/runs/{first.run_id}",
        f"/runs/{third.run_id}",
    ]


@dg.op
def flaky_step():
    raise RuntimeError("the worker's disk filled up")


@dg.job(executor_def=dg.in_process_executor)
def flaky():
    flaky_step()


def test_a_run_dagster_will_retry_does_not_alert_its_last_attempt_does(failure_ticks, publisher):
    retries = {"run_retries": {"enabled": True, "max_retries": 1}}
    with dg.instance_for_test(overrides=retries) as instance:
        ticks = failure_ticks(instance)
        job = dg.reconstructable(flaky)
        with dg.execute_job(job, instance, raise_on_error=False) as root:
            assert not root.success
        assert instance.get_run_by_id(root.run_id).tags[WILL_RETRY_TAG] == "true"
        ticks()
        assert published(publisher) == []

        # The retry as Dagster's daemon launches it: from the failure, in the root's run group.
        options = dg.ReexecutionOptions.from_failure(root.run_id, instance)
        group = {
            PARENT_RUN_ID_TAG: root.run_id,
            ROOT_RUN_ID_TAG: root.run_id,
            RETRY_NUMBER_TAG: "1",
        }
        with dg.execute_job(
            job, instance, tags=group, reexecution_options=options, raise_on_error=False
        ) as last:
            assert not last.success
        assert instance.get_run_by_id(last.run_id).tags[WILL_RETRY_TAG] == "false"
        ticks()
        (alert,) = published(publisher)
        assert alert.key == "run_failed:flaky" and f"/runs/{last.run_id}" in alert.pages
        assert "step flaky_step: RuntimeError: the worker's disk filled up" in alert.details
        assert "it was retry 1: Dagster does not retry it again" in alert.details


def test_the_retry_tags_are_dagsters():
    assert (alerting.WILL_RETRY_TAG, alerting.RETRY_NUMBER_TAG) == (
        WILL_RETRY_TAG,
        RETRY_NUMBER_TAG,
    )
    assert alerting.ARCHIVE_JOB == ARCHIVE_JOB and alerting.STREAM_SENSOR == SENSOR_NAME


# The bookkeeping ---------------------------------------------------------------------------------


def test_settle_alerts_a_condition_once_until_it_clears():
    a, b = Alert("a", "stream_lag", "A"), Alert("b", "error_rate", "B")
    new, cleared, active = alerting.settle({}, [a, b], NOW)
    assert new == [a, b] and cleared == []
    new, cleared, active = alerting.settle(active, [a, b], NOW + timedelta(minutes=1))
    assert new == [] and active == {"a": NOW.isoformat(), "b": NOW.isoformat()}
    new, cleared, active = alerting.settle(active, [b], NOW)
    assert new == [] and cleared == ["a"]
    new, cleared, active = alerting.settle(active, [a, b], NOW)
    assert new == [a] and cleared == []


def test_a_publisher_that_fails_leaves_the_condition_to_alert_on_the_next_tick(
    sensor, defs, instance, publisher, settings, s3, kinesis
):
    class Failing(AlertPublisher):
        def publish(self, alert, log):
            raise RuntimeError("SNS is down")

    land(s3, settings, valid(3), arrived(1), millis_behind_latest=900_000)
    failing = Ticks(sensor, instance, {**defs.resources, "alert_publisher": Failing()})
    failing()
    assert AlertState.load(failing.cursor).active == {}
    working = Ticks(sensor, instance, {**defs.resources, "alert_publisher": publisher})
    working.cursor = failing.cursor
    working()
    assert kinds(published(publisher)) == ["stream_lag"]


# Messages and the runbook ------------------------------------------------------------------------


def github_anchor(heading: str) -> str:
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def runbook_anchors() -> set[str]:
    readme = (REPO / "README.md").read_text()
    runbook = readme.split("\n## Runbook\n", 1)[1].split("\n## ", 1)[0]
    return {github_anchor(h) for h in re.findall(r"^### (.+)$", runbook, flags=re.M)}


def test_every_alert_names_a_runbook_subsection_that_exists():
    assert set(alerting.RUNBOOK.values()) <= runbook_anchors()


def test_a_message_says_what_failed_where_to_look_and_the_runbook():
    alert = alerting.run_failed(
        "compact_partitions",
        "r-1",
        {"dagster/partition": "2026-11-19", RETRY_NUMBER_TAG: "2"},
        'Execution of run for "compact_partitions" failed.',
        [("rebuild_demand", "botocore.exceptions.ClientError: AccessDenied")],
    )
    text = alert.message("https://dagster.example/")
    assert text.splitlines()[0] == "run of compact_partitions failed (2026-11-19)"
    assert "What: step rebuild_demand: botocore.exceptions.ClientError: AccessDenied" in text
    assert "Where: partition 2026-11-19" in text
    assert "UI: https://dagster.example/runs/r-1" in text
    assert "Runbook: README.md#run-failed" in text
    assert "retry 2" in text
    assert alert.subject() == "demand-assets: run of compact_partitions failed (2026-11-19)"
    assert "\n" not in alert.line("https://dagster.example")
    long = Alert("k", "stream_lag", "x" * 300 + "\u00e9")
    assert len(long.subject()) == 100 and long.subject().isascii()


# Settings and publishers -------------------------------------------------------------------------


def test_the_thresholds_and_the_topic_come_from_the_environment():
    settings = Settings.from_env(
        {
            "DEMAND_ALERT_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:alerts",
            "DEMAND_UI_URL": "https://dagster.example",
            "DEMAND_ALERT_LAG_SECONDS": "120",
            "DEMAND_ALERT_ERROR_RATE": "0.01",
            "DEMAND_ALERT_ARCHIVE_MINUTES": "5",
        }
    )
    assert alert_thresholds(settings) == Thresholds(120, 0.01, 5)
    publisher = build_definitions(settings).resources["alert_publisher"]
    assert isinstance(publisher, SNSAlertPublisher)
    assert publisher.topic_arn.endswith(":alerts") and publisher.ui_url == "https://dagster.example"
    local = build_definitions(Settings()).resources["alert_publisher"]
    assert type(local) is LogAlertPublisher
    assert alert_thresholds(Settings()) == Thresholds(300, 0.001, 15)


def test_the_alert_sensors_run_by_default(defs):
    for name in (ALERT_SENSOR, RUN_FAILURE_SENSOR):
        assert defs.resolve_sensor_def(name).default_status == dg.DefaultSensorStatus.RUNNING


def test_the_log_publisher_writes_one_line_per_alert(caplog):
    alert = Alert("stream_lag", "stream_lag", "stream lag 900 s", ("d",), ("w",), ("/p",))
    with caplog.at_level(logging.WARNING):
        LogAlertPublisher(ui_url="http://127.0.0.1:3000").publish(alert, logging.getLogger("t"))
    (record,) = caplog.records
    assert record.getMessage() == (
        "ALERT stream lag 900 s | d | w | http://127.0.0.1:3000/p | runbook README.md#stream-lag"
    )


def test_an_alert_reaches_a_queue_subscribed_to_the_sns_topic(
    sensor, instance, settings, s3, kinesis
):
    sns, sqs = boto3.client("sns"), boto3.client("sqs")
    topic = sns.create_topic(Name="demand-assets-test-alerts")["TopicArn"]
    queue = sqs.create_queue(QueueName="alerts")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn["Attributes"]["QueueArn"])
    with_topic = dataclasses.replace(settings, alert_topic_arn=topic)
    defs = build_definitions(with_topic)
    assert isinstance(defs.resources["alert_publisher"], SNSAlertPublisher)
    land(s3, settings, valid(3), arrived(1), millis_behind_latest=600_000)

    Ticks(sensor, instance, defs.resources)()

    messages = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=2)["Messages"]
    (envelope,) = [json.loads(m["Body"]) for m in messages]
    assert envelope["TopicArn"] == topic
    assert (
        envelope["Subject"]
        == f"demand-assets: stream lag 600 s on {settings.stream_name} (over 300 s)"
    )
    body = envelope["Message"]
    assert body.startswith(f"stream lag 600 s on {settings.stream_name}")
    assert f"UI: http://127.0.0.1:3000/locations/demand_assets/sensors/{SENSOR_NAME}" in body
    assert "Runbook: README.md#stream-lag" in body
    assert envelope["MessageAttributes"]["condition"]["Value"] == "stream_lag"
