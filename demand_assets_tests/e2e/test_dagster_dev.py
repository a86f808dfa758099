"""The demo end to end, as a user meets it: `demand-assets demo` starts a moto server, traffic
and `dagster dev`; the sensor (on by default) archives batches; then, with the sensor stopped
so that the partitions hold still for their checks, a backfill of `demand` launched through
the webserver's GraphQL API (the mutation the UI's "Materialize" sends) rebuilds every
partition that has data and runs the asset's checks; S3 then holds every landed change once in
each format. SIGTERM to the demo process must stop every process it started.

Slow (two to three minutes on two cores): `pytest demand_assets_tests/e2e -m slow`. The demo's
Dagster instance is `.local/dagster_home`, wiped on start: do not run this next to a demo.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import boto3
import fastavro
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import requests

from demand_assets.local.stack import free_port

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
BUCKET = "demand-archive-local"
PREFIX = "demand"
RECORD_TYPE = "demand"
LOCATION = "demand_assets"
REPOSITORY = "__repository__"
SENSOR = "demand_stream_sensor"
ARCHIVE_JOBS = [f"archive_{t}_batches" for t in ("demand", "notification", "event", "sale")]
READY_LINE = re.compile(r"Dagster UI: (http://127\.0\.0\.1:\d+)\s+\(AWS emulator: (http://\S+)\)")
START_TIMEOUT = 180
STOP_TIMEOUT = 60
BACKFILL_DONE = {"COMPLETED_SUCCESS", "COMPLETED_FAILED", "COMPLETED", "FAILED", "CANCELED"}


# --- processes -----------------------------------------------------------------------------


def _stat(pid: int) -> tuple[int, int] | None:
    """(parent pid, start time in clock ticks) of a live process, None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()  # the command may hold spaces and parens
    if fields[0] == "Z":
        return None  # a zombie has exited; only its parent's wait is missing
    return int(fields[1]), int(fields[19])


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return "?"


def descendants(root: int) -> dict[tuple[int, int], str]:
    """Every live process below `root`, keyed by (pid, start time) so that a reused pid is
    not mistaken for a survivor; values are command lines."""
    parent_of, started = {}, {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (stat := _stat(int(entry))) is not None:
            parent_of[int(entry)], started[int(entry)] = stat
    children: dict[int, list[int]] = {}
    for pid, parent in parent_of.items():
        children.setdefault(parent, []).append(pid)
    found, todo = {}, [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found[(child, started[child])] = _cmdline(child)
            todo.append(child)
    return found


def alive(processes: dict[tuple[int, int], str]) -> dict[tuple[int, int], str]:
    return {
        (pid, start): cmd
        for (pid, start), cmd in processes.items()
        if (stat := _stat(pid)) is not None and stat[1] == start
    }


@dataclass
class Demo:
    process: subprocess.Popen
    ui: str = ""
    aws: str = ""
    output: list[str] = field(default_factory=list)

    def graphql(self, query: str, **variables) -> dict:
        response = requests.post(
            f"{self.ui}/graphql", json={"query": query, "variables": variables}, timeout=60
        )
        response.raise_for_status()
        body = response.json()
        assert not body.get("errors"), body["errors"]
        return body["data"]

    def s3(self):
        return boto3.client(
            "s3",
            endpoint_url=self.aws,
            aws_access_key_id="local",
            aws_secret_access_key="local",
            region_name="us-east-1",
        )

    def says(self) -> str:
        return "".join(self.output[-40:])


def _read_output(demo: Demo, ready: threading.Event) -> None:
    for line in demo.process.stdout:
        demo.output.append(line)
        if (match := READY_LINE.search(line)) and not ready.is_set():
            demo.ui, demo.aws = match.groups()
            ready.set()
    ready.set()  # the demo ended: stop waiting


def _wait_for_webserver(demo: Demo, deadline: float) -> None:
    """Until the webserver answers and has loaded the code location (the sensor resolves)."""
    last = None
    while time.monotonic() < deadline:
        assert demo.process.poll() is None, f"demo exited early:\n{demo.says()}"
        try:
            sensor = _sensor(demo)
            if sensor["__typename"] == "Sensor":
                return
            last = sensor
        except (requests.RequestException, AssertionError) as exc:
            last = exc
        time.sleep(1)
    raise AssertionError(f"webserver not ready after {START_TIMEOUT} s: {last}\n{demo.says()}")


def _stop(demo: Demo, started_up: bool) -> None:
    """SIGTERM to the demo process only (not its group): it must stop everything it started."""
    started = descendants(demo.process.pid)
    kinds = " | ".join(started.values())
    try:
        demo.process.send_signal(signal.SIGTERM)
        try:
            demo.process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the demo did not exit within {STOP_TIMEOUT} s of SIGTERM")
        survivors = alive(started)
        deadline = time.monotonic() + 5  # a grandchild may take a moment after its parent
        while survivors and time.monotonic() < deadline:
            time.sleep(0.2)
            survivors = alive(survivors)
        assert not survivors, f"still running after the demo exited: {survivors}"
        if started_up:  # the walk through /proc found what the demo starts
            for child in ("moto_server", "demand_assets.cli traffic", "dagster dev"):
                assert child in kinds, f"{child} was not among the demo's processes: {kinds}"
        assert demo.process.returncode == 0, demo.says()
    finally:
        for pid, _ in alive(started):  # only processes this test started
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if demo.process.poll() is None:
            demo.process.kill()
            demo.process.wait()


@pytest.fixture
def demo():
    process = subprocess.Popen(
        [sys.executable, "-m", "demand_assets.cli", "demo", "--port", str(free_port())]
        + ["--rate", "50"],
        cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    running = Demo(process)
    ready = threading.Event()
    reader = threading.Thread(target=_read_output, args=(running, ready), daemon=True)
    reader.start()
    started_up = False
    try:
        deadline = time.monotonic() + START_TIMEOUT
        ready.wait(START_TIMEOUT)
        assert running.ui, f"no 'Dagster UI:' line after {START_TIMEOUT} s:\n{running.says()}"
        _wait_for_webserver(running, deadline)
        started_up = True
        yield running
    finally:
        _stop(running, started_up)
        reader.join(5)
        print(running.says())


# --- GraphQL -------------------------------------------------------------------------------

SENSOR_QUERY = """
query ($selector: SensorSelector!) {
  sensorOrError(sensorSelector: $selector) {
    __typename
    ... on Sensor { id name sensorState { id status ticks(limit: 1) { status } } }
    ... on Error { message }
  }
}"""

STOP_SENSOR = """
mutation ($id: String!) {
  stopSensor(id: $id) {
    __typename
    ... on StopSensorMutationResult { instigationState { status } }
    ... on PythonError { message }
  }
}"""

RUNS_QUERY = """
query ($filter: RunsFilter, $limit: Int) {
  runsOrError(filter: $filter, limit: $limit) {
    __typename
    ... on Runs { results { runId jobName status tags { key value } } }
    ... on Error { message }
  }
}"""

# What the UI sends for "Materialize" of selected partitions of an asset outside any job.
LAUNCH_BACKFILL = """
mutation LaunchPartitionBackfill($backfillParams: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $backfillParams) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PartitionKeysNotFoundError { message partitionKeys }
    ... on Error { message }
  }
}"""

BACKFILL_QUERY = """
query ($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    __typename
    ... on PartitionBackfill {
      status
      partitionNames
      error { message }
      runs { runId status assetCheckSelection { name } }
    }
    ... on Error { message }
  }
}"""

CHECK_EXECUTIONS = """
query ($asset: AssetKeyInput!, $check: String!) {
  assetCheckExecutions(assetKey: $asset, checkName: $check, limit: 100) {
    runId
    status
    partition
    evaluation { checkName severity success partition }
  }
}"""


def _sensor(demo: Demo) -> dict:
    selector = {"repositoryName": REPOSITORY, "repositoryLocationName": LOCATION}
    return demo.graphql(SENSOR_QUERY, selector={**selector, "sensorName": SENSOR})["sensorOrError"]


def _runs(demo: Demo, **run_filter) -> list[dict]:
    result = demo.graphql(RUNS_QUERY, filter=run_filter, limit=500)["runsOrError"]
    assert result["__typename"] == "Runs", result
    return result["results"]


def _sensor_runs(demo: Demo) -> list[dict]:
    return _runs(demo, tags=[{"key": "dagster/sensor_name", "value": SENSOR}])


def _wait(what: str, timeout: float, probe, interval: float = 2.0):
    """`probe()` until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        if result := probe():
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not after {timeout:.0f} s")
        time.sleep(interval)


# --- S3 ------------------------------------------------------------------------------------


def _keys(s3, prefix: str) -> list[str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
    return [o["Key"] for page in pages for o in page.get("Contents", [])]


def _day(key: str) -> str:
    return re.search(r"/partition_date=(\d{4}-\d{2}-\d{2})/", key).group(1)


def _data_files(s3, fmt: str, day: str) -> list[str]:
    """A partition's data files; names starting with `_` or `.` are not data."""
    keys = _keys(s3, f"{PREFIX}/{fmt}/{RECORD_TYPE}/partition_date={day}/")
    return [k for k in keys if k.endswith(f".{fmt}") and k.rsplit("/", 1)[1][0] not in "_."]


def _body(s3, key: str) -> bytes:
    return s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()


def _avro_event_ids(s3, key: str) -> list[str]:
    return [r["provenance"]["eventID"] for r in fastavro.reader(io.BytesIO(_body(s3, key)))]


def _parquet_event_ids(s3, key: str) -> list[str]:
    table = pq.read_table(io.BytesIO(_body(s3, key)), columns=["provenance"])
    provenance = table.column("provenance").combine_chunks()
    return pc.struct_field(provenance, "eventID").to_pylist()


def _landed_event_ids(s3) -> dict[str, set[str]]:
    """{partition date: eventIDs} of every change landed for the record type."""
    landed: dict[str, set[str]] = {}
    for key in _keys(s3, f"{PREFIX}/landing/{RECORD_TYPE}/"):
        lines = gzip.decompress(_body(s3, key)).splitlines()
        ids = landed.setdefault(_day(key), set())
        ids.update(json.loads(json.loads(line)["data"])["eventID"] for line in lines if line)
    return landed


# --- the test ------------------------------------------------------------------------------


def test_demo_archives_the_stream_and_a_ui_backfill_rebuilds_demand(demo):
    began = time.monotonic()
    # The sensor is on by default and its runs archive batches.
    sensor = _sensor(demo)
    assert sensor["sensorState"]["status"] == "RUNNING", sensor

    def every_archive_job_succeeded():
        runs = _sensor_runs(demo)
        failed = [r for r in runs if r["status"] == "FAILURE"]
        assert not failed, f"sensor runs failed: {failed}"
        assert {r["jobName"] for r in runs} <= set(ARCHIVE_JOBS), runs
        return {r["jobName"] for r in runs if r["status"] == "SUCCESS"} == set(ARCHIVE_JOBS)

    _wait("a successful sensor run of each archive job", 150, every_archive_job_succeeded)

    # The checks compare the archive with what has landed, so the partitions must hold still
    # while they run: no more batches land once the sensor is stopped and its tick is done.
    stopped = demo.graphql(STOP_SENSOR, id=sensor["id"])["stopSensor"]
    assert stopped["__typename"] == "StopSensorMutationResult", stopped
    assert stopped["instigationState"]["status"] == "STOPPED", stopped
    _wait(
        "the sensor's last tick to finish",
        60,
        lambda: all(t["status"] != "STARTED" for t in _sensor(demo)["sensorState"]["ticks"]),
        interval=1.0,
    )

    s3 = demo.s3()
    landed = _landed_event_ids(s3)
    print(f"sensor stopped after {time.monotonic() - began:.0f} s")
    days = sorted(landed)
    assert days, "nothing landed for demand"

    # "Materialize" of those partitions of `demand` in the UI: an asset backfill.
    launched = demo.graphql(
        LAUNCH_BACKFILL,
        backfillParams={
            "tags": [],
            "assetSelection": [{"path": [RECORD_TYPE]}],
            "partitionNames": days,
            "fromFailure": False,
        },
    )["launchPartitionBackfill"]
    assert launched["__typename"] == "LaunchBackfillSuccess", launched

    def finished_backfill():
        found = demo.graphql(BACKFILL_QUERY, id=launched["backfillId"])
        backfill = found["partitionBackfillOrError"]
        assert backfill["__typename"] == "PartitionBackfill", backfill
        return backfill if backfill["status"] in BACKFILL_DONE else None

    backfill = _wait("the backfill to complete", 150, finished_backfill)
    assert backfill["status"] == "COMPLETED_SUCCESS", backfill
    assert backfill["partitionNames"] == days
    assert backfill["runs"], backfill
    assert all(r["status"] == "SUCCESS" for r in backfill["runs"]), backfill["runs"]
    backfill_runs = {r["runId"] for r in backfill["runs"]}
    print(f"backfill of {days} done after {time.monotonic() - began:.0f} s")

    # The backfill ran the asset's checks; the ERROR ones passed.
    check_names = {c["name"] for r in backfill["runs"] for c in r["assetCheckSelection"]}
    assert {"row_counts_agree", "each_change_once", "deleted_rows_keep_no_pii"} <= check_names
    evaluations = {}
    for name in sorted(check_names):
        executions = demo.graphql(CHECK_EXECUTIONS, asset={"path": [RECORD_TYPE]}, check=name)[
            "assetCheckExecutions"
        ]
        evaluations[name] = [
            e["evaluation"] for e in executions if e["runId"] in backfill_runs and e["evaluation"]
        ]
    missing = [name for name, found in evaluations.items() if not found]
    assert not missing, f"checks without an evaluation in the backfill: {missing}"
    failed = [
        (name, e)
        for name, found in evaluations.items()
        for e in found
        if e["severity"] == "ERROR" and not e["success"]
    ]
    assert not failed, f"ERROR checks failed: {failed}"
    print(
        {
            name: [(e["severity"], e["success"]) for e in found]
            for name, found in evaluations.items()
        }
    )

    # Every change landed before the backfill is archived once in each format, and the two
    # formats hold the same changes.
    landed_now = _landed_event_ids(s3)
    for day in days:
        ids = {}
        for fmt, read in (("avro", _avro_event_ids), ("parquet", _parquet_event_ids)):
            files = _data_files(s3, fmt, day)
            assert any("/compacted-" in f for f in files), f"{fmt} {day}: no rebuild in {files}"
            counts = Counter(i for f in files for i in read(s3, f))
            doubled = [i for i, n in counts.items() if n > 1]
            assert not doubled, f"{fmt} {day}: {len(doubled)} changes twice, e.g. {doubled[:3]}"
            ids[fmt] = set(counts)
        assert ids["avro"] == ids["parquet"], (
            f"{day}: {len(ids['avro'] - ids['parquet'])} only in Avro, "
            f"{len(ids['parquet'] - ids['avro'])} only in Parquet"
        )
        assert landed[day] <= ids["avro"] <= landed_now[day], day
        print(f"{day}: {len(ids['avro'])} changes in {len(files)} files per format")

    # Nothing the sensor launched failed, including what ran next to the backfill.
    failed_runs = [r for r in _sensor_runs(demo) if r["status"] == "FAILURE"]
    assert not failed_runs, failed_runs
