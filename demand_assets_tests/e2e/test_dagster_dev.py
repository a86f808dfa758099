"""The real `dagster dev`, driven over the webserver's GraphQL API.

1. The demo end to end, as a user meets it: `demand-assets demo` starts a moto server, traffic
   and `dagster dev`; the sensor (on by default) lands batches and launches `archive_batches`
   runs; then, with the sensor stopped so that the partitions hold still for their checks, a
   backfill of `demand` (the mutation the UI's "Materialize" sends) rebuilds every partition
   that has data into one `part-*` file per format, covering every landed batch, and runs the
   asset's checks; S3 then holds every landed change once in each format. SIGTERM to the demo
   process must stop every process it started.
2. `dagster dev` SIGKILLed whole (its process group) while traffic flows and an archive run is
   writing, then started again on the same instance: the run the kill left STARTED is failed by
   run monitoring after its `dagster/max_runtime` and frees the stream path's run slot; the
   pipeline resumes by itself and, once the traffic has stopped and it has drained, every
   change put is in both formats exactly once, with the record the rules derive from it.

Slow (each two to five minutes on two cores): `pytest demand_assets_tests/e2e -m slow`. The
demo's Dagster instance is `.local/dagster_home`, wiped on start: do not run this next to a
demo. The restart test keeps its instance in a temporary directory.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import boto3
import dagster as dg
import fastavro
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import requests

from demand_assets.config import Settings
from demand_assets.defs.archive_job import ARCHIVE_JOB
from demand_assets.local.demo import DEMO_SETTINGS, _reset_sigint
from demand_assets.local.stack import MotoServer, free_port, provision, stop_process_group
from demand_assets.traffic.generator import ChangeGenerator
from demand_assets.traffic.producer import write_file
from demand_assets_tests.defs.pipeline import (
    archived,
    event_id_counts,
    expected_records,
    without_position,
)

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
BUCKET = "demand-archive-local"
PREFIX = "demand"
RECORD_TYPE = "demand"
LOCATION = "demand_assets"
REPOSITORY = "__repository__"
SENSOR = "demand_stream_sensor"
READY_LINE = re.compile(r"Dagster UI: (http://127\.0\.0\.1:\d+)\s+\(AWS emulator: (http://\S+)\)")
START_TIMEOUT = 180
STOP_TIMEOUT = 60
BACKFILL_DONE = {"COMPLETED_SUCCESS", "COMPLETED_FAILED", "COMPLETED", "FAILED", "CANCELED"}
RUN_QUEUED = ["NOT_STARTED", "QUEUED", "STARTING"]
RUN_IN_PROGRESS = ["STARTED", "CANCELING"]
RUN_DONE = {"SUCCESS", "FAILURE", "CANCELED"}


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
    log: Path | None = None  # where the process writes, when not to `output`

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
        if self.log is not None and self.log.exists():
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-40:])
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
    ... on Runs {
      results { runId jobName status creationTime startTime endTime tags { key value } }
    }
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


def _archive_runs(demo: Demo, *statuses: str) -> list[dict]:
    run_filter = {"pipelineName": ARCHIVE_JOB}
    if statuses:
        run_filter["statuses"] = list(statuses)
    return _runs(demo, **run_filter)


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


def _covered_batches(s3, data_key: str) -> set[str]:
    """The batches a data file holds, from its `_covers-` sidecar."""
    folder, leaf = data_key.rsplit("/", 1)
    sidecar = f"{folder}/_covers-{leaf.rsplit('.', 1)[0]}.json"
    return set(json.loads(_body(s3, sidecar))["batches"])


def _body(s3, key: str) -> bytes:
    return s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()


def _avro_event_ids(s3, key: str) -> list[str]:
    return [r["provenance"]["eventID"] for r in fastavro.reader(io.BytesIO(_body(s3, key)))]


def _parquet_event_ids(s3, key: str) -> list[str]:
    table = pq.read_table(io.BytesIO(_body(s3, key)), columns=["provenance"])
    provenance = table.column("provenance").combine_chunks()
    return pc.struct_field(provenance, "eventID").to_pylist()


def _landed_batches(s3) -> dict[str, set[str]]:
    """{partition date: names of the batches landed there} for the record type."""
    landed: dict[str, set[str]] = {}
    for key in _keys(s3, f"{PREFIX}/landing/{RECORD_TYPE}/"):
        landed.setdefault(_day(key), set()).add(key.rsplit("/", 1)[1].split(".", 1)[0])
    return landed


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

    s3 = demo.s3()

    def an_archive_run_succeeded():
        runs = _sensor_runs(demo)
        failed = [r for r in runs if r["status"] == "FAILURE"]
        assert not failed, f"sensor runs failed: {failed}"
        assert {r["jobName"] for r in runs} <= {ARCHIVE_JOB}, runs
        succeeded = any(r["status"] == "SUCCESS" for r in runs)
        return succeeded and _keys(s3, f"{PREFIX}/parquet/{RECORD_TYPE}/")

    _wait("a successful archive_batches run that wrote demand", 150, an_archive_run_succeeded)

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

    landed = _landed_event_ids(s3)
    batches = _landed_batches(s3)
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

    # An archive run may have run next to the backfill; none is left once it is done.
    _wait(
        "the archive runs to finish",
        120,
        lambda: not _archive_runs(demo, *RUN_QUEUED, *RUN_IN_PROGRESS),
        interval=1.0,
    )

    # The backfill rebuilt each partition from every landed batch into one file per format
    # (what an archive run wrote there is subsumed and gone): each change landed before it
    # is there once in each format, and the two formats hold the same changes.
    landed_now = _landed_event_ids(s3)
    assert _landed_batches(s3) == batches, "batches landed after the sensor stopped"
    for day in days:
        ids = {}
        for fmt, read in (("avro", _avro_event_ids), ("parquet", _parquet_event_ids)):
            files = _data_files(s3, fmt, day)
            assert len(files) == 1, f"{fmt} {day}: not rebuilt into one file: {files}"
            assert files[0].rsplit("/", 1)[1].startswith("part-"), files
            covered = _covered_batches(s3, files[0])
            assert covered == batches[day], (
                f"{fmt} {day}: the rebuilt file covers {sorted(covered ^ batches[day])} "
                "differently from the landed batches"
            )
            counts = Counter(i for f in files for i in read(s3, f))
            doubled = [i for i, n in counts.items() if n > 1]
            assert not doubled, f"{fmt} {day}: {len(doubled)} changes twice, e.g. {doubled[:3]}"
            ids[fmt] = set(counts)
        assert ids["avro"] == ids["parquet"], (
            f"{day}: {len(ids['avro'] - ids['parquet'])} only in Avro, "
            f"{len(ids['parquet'] - ids['avro'])} only in Parquet"
        )
        assert landed[day] == ids["avro"] == landed_now[day], day
    print(f"{len(days)} days rebuilt, {sum(map(len, landed.values()))} changes, one file each")

    # Nothing the sensor launched failed, including what ran next to the backfill.
    failed_runs = [r for r in _sensor_runs(demo) if r["status"] == "FAILURE"]
    assert not failed_runs, failed_runs
    print(f"done after {time.monotonic() - began:.0f} s")


# --- `dagster dev` SIGKILLed mid-run, then started again on the same instance -------------

# The archive runs' `dagster/max_runtime` in this test (DEMAND_ARCHIVE_MAX_RUNTIME_SECONDS): short
# enough to wait for, long enough for the run that archives the backlog after the restart.
RESTART_MAX_RUNTIME = 90
RUN_MONITORING_INTERVAL = 30  # dagster.yaml's run_monitoring.poll_interval_seconds
TRAFFIC_RATE = 40.0  # changes a second
TRAFFIC_CHANGES = 4000  # about 100 s of traffic
REDELIVERED_EVERY = 50  # every 50th change, if valid, is put again 2.5 to 25 s later

RUN_QUERY = """
query ($runId: ID!) {
  runOrError(runId: $runId) {
    __typename
    ... on Run {
      runId status startTime endTime
      stepStats { stepKey status materializations { partition } }
      eventConnection(afterCursor: null) {
        events { __typename ... on MessageEvent { message } }
      }
    }
    ... on Error { message }
  }
}"""


def _run(demo: Demo, run_id: str) -> dict:
    run = demo.graphql(RUN_QUERY, runId=run_id)["runOrError"]
    assert run["__typename"] == "Run", run
    return run


def _traffic_changes():
    """The changes the traffic puts, in order: generated ones with a little noise, and some
    valid ones put again (a re-delivery: the same eventID at a new sequence number)."""
    changes = ChangeGenerator(
        seed=11, rate_per_second=TRAFFIC_RATE, other_type_share=0.02, malformed_share=0.005
    ).changes(TRAFFIC_CHANGES)
    again: dict[int, list] = {}
    sent = []
    for i, change in enumerate(changes):
        sent.append(change)
        if change.kind == "valid" and i % REDELIVERED_EVERY == 0:
            again.setdefault(i + 100 + (i % 7) * 150, []).append(change)
        sent += again.pop(i, [])
    return sent + [c for i in sorted(again) for c in again[i]]


def _start_dagster(env: dict[str, str], port: int, log) -> Demo:
    """`dagster dev` leading its own process group, as the demo starts it."""
    process = subprocess.Popen(
        [str(Path(sys.executable).with_name("dagster")), "dev", "-w", "workspace.yaml"]
        + ["-h", "127.0.0.1", "-p", str(port)],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=_reset_sigint,
    )
    started = Demo(
        process, ui=f"http://127.0.0.1:{port}", aws=env["AWS_ENDPOINT_URL"], log=Path(log.name)
    )
    _wait_for_webserver(started, time.monotonic() + START_TIMEOUT)
    return started


def _sigkill_group(process: subprocess.Popen) -> dict[tuple[int, int], str]:
    """SIGKILL to every process of the group `process` leads, all at once; returns them."""
    tree = descendants(process.pid)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(10)
    survivors, deadline = alive(tree), time.monotonic() + 5
    while survivors and time.monotonic() < deadline:
        time.sleep(0.2)
        survivors = alive(survivors)
    assert not survivors, f"outside dagster dev's process group, alive after it: {survivors}"
    return tree


def _writing_run(demo: Demo) -> dict | None:
    """A STARTED archive run with an `archive_{type}` step in progress (writing partitions)."""
    for found in _archive_runs(demo, "STARTED"):
        run = _run(demo, found["runId"])
        steps = run["stepStats"]
        if run["status"] == "STARTED" and any(
            s["stepKey"].startswith("archive_") and s["status"] == "IN_PROGRESS" for s in steps
        ):
            return run
    return None


def _changes_read(s3) -> int:
    """The changes of every landed batch (each batch's summary is written last)."""
    keys = [k for k in _keys(s3, f"{PREFIX}/landing/_batches/") if k.endswith(".json")]
    return sum(json.loads(_body(s3, k))["records"] for k in keys)


def _steps(run: dict) -> str:
    return ", ".join(
        f"{s['stepKey']} {s['status']} ({len(s['materializations'])} days)"
        for s in run["stepStats"]
    )


def test_dagster_dev_sigkilled_mid_run_resumes_on_the_same_instance(tmp_path, monkeypatch):
    began = time.monotonic()
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
    handles = []

    def log(name: str):
        handles.append(open(tmp_path / f"{name}.log", "wb"))  # noqa: SIM115
        return handles[-1]

    moto = MotoServer.start(log=log("moto"))
    processes: list[subprocess.Popen] = [moto.process]
    timeline: dict[str, float] = {}
    try:
        for name, value in moto.environment().items():
            monkeypatch.setenv(name, value)
        env = {
            **os.environ,
            **DEMO_SETTINGS,
            "DAGSTER_HOME": str(home),
            "DEMAND_BUFFER_SECONDS": "0",
            "DEMAND_ARCHIVE_MAX_RUNTIME_SECONDS": str(RESTART_MAX_RUNTIME),
            "PYTHONUNBUFFERED": "1",
        }
        settings = Settings.from_env(env)
        provision(settings)
        sent = _traffic_changes()
        write_file(tmp_path / "traffic.txt", sent)
        expected = expected_records([c.data for c in sent])
        assert len(expected) < len(sent) - 50, "no noise, or no re-deliveries"

        first = _start_dagster(env, free_port(), log("dagster-first"))
        processes.append(first.process)
        s3 = first.s3()
        timeline["first dagster dev up"] = time.monotonic() - began
        traffic = subprocess.Popen(
            [sys.executable, "-m", "demand_assets.cli", "traffic"]
            + ["--replay", str(tmp_path / "traffic.txt"), "--rate", str(TRAFFIC_RATE)],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log("traffic"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        processes.append(traffic)

        # The kill: once an archive run has succeeded, while the next one writes partitions.
        _wait("a successful archive run", 150, lambda: _archive_runs(first, "SUCCESS"))
        victim = _wait("an archive run writing partitions", 120, lambda: _writing_run(first), 0.3)
        assert traffic.poll() is None, "the traffic ended before the kill"
        queued_at_kill = [r["runId"] for r in _archive_runs(first, *RUN_QUEUED)]
        killed = _sigkill_group(first.process)
        killed_at = time.time()
        timeline["killed"] = time.monotonic() - began
        kinds = " | ".join(cmd[:120] for cmd in killed.values())
        for part in ("dagster_webserver", "dagster._daemon", "dagster api grpc", "spawn_main"):
            assert part in kinds, f"{part} was not among the processes killed: {kinds}"
        with dg.DagsterInstance.from_config(str(home)) as instance:
            left = instance.get_run_by_id(victim["runId"])
        assert left.status == dg.DagsterRunStatus.STARTED, left.status
        print(f"killed {len(killed)} processes during run {victim['runId']}: {_steps(victim)}")

        # The same instance again. The run the kill left STARTED holds the stream path's run
        # slot until run monitoring fails it, after its max runtime.
        second = _start_dagster(env, free_port(), log("dagster-second"))
        processes.append(second.process)
        timeline["second dagster dev up"] = time.monotonic() - began

        def orphan_ended():
            run = _run(second, victim["runId"])
            return run if run["status"] in RUN_DONE else None

        orphan = _wait(
            "the run the kill left STARTED to end",
            victim["startTime"]
            + RESTART_MAX_RUNTIME
            + 2 * RUN_MONITORING_INTERVAL
            + 60
            - time.time(),
            orphan_ended,
        )
        timeline["orphan ended"] = time.monotonic() - began
        said = [e["message"] for e in orphan["eventConnection"]["events"] if e.get("message")]
        print(f"the orphaned run ended {orphan['status']}: {said[-3:]}")
        assert orphan["status"] == "FAILURE", orphan["status"]
        assert orphan["endTime"] - orphan["startTime"] >= RESTART_MAX_RUNTIME, orphan

        # The traffic stops; the pipeline drains by itself: every change put was read into
        # exactly one landed batch, no batch is pending and no archive run is queued or running.
        traffic.wait(TRAFFIC_CHANGES / TRAFFIC_RATE + 120)
        assert traffic.returncode == 0, second.says()
        timeline["traffic ended"] = time.monotonic() - began

        def drained():
            read = _changes_read(s3)
            assert read <= len(sent), f"{read} changes landed of {len(sent)}: one landed twice"
            if read < len(sent) or _archive_runs(second, *RUN_QUEUED, *RUN_IN_PROGRESS):
                return False
            return not _keys(s3, f"{PREFIX}/landing/_pending/")

        _wait("the pipeline to drain", 180, drained, interval=3.0)
        timeline["drained"] = time.monotonic() - began

        # Every change put is in both formats exactly once, as the record rules derive it.
        rows = archived(s3, settings)
        for fmt in ("avro", "parquet"):
            counts = event_id_counts(rows[fmt])
            doubled = [i for i, n in counts.items() if n > 1]
            assert not doubled, f"{fmt}: {len(doubled)} changes twice, e.g. {doubled[:3]}"
            missing, extra = set(expected) - set(counts), set(counts) - set(expected)
            assert not missing, f"{fmt}: {len(missing)} changes lost, e.g. {sorted(missing)[:3]}"
            assert not extra, f"{fmt}: {len(extra)} unexpected changes, e.g. {sorted(extra)[:3]}"
            for record_type, day, record in rows[fmt]:
                want_type, want_day, want = expected[record["provenance"]["eventID"]]
                assert (record_type, day) == (want_type, want_day), record["provenance"]
                assert without_position(record) == without_position(want), record["provenance"]

        # The runs: only the orphan failed; those after it ran one at a time, the first of them
        # once run monitoring had freed the slot.
        runs = _archive_runs(second)
        failed = [r for r in runs if r["status"] != "SUCCESS" and r["runId"] != victim["runId"]]
        assert not failed, failed
        resumed = [r for r in runs if r["startTime"] and r["startTime"] > killed_at]
        assert resumed, "no archive run after the restart"
        assert min(r["startTime"] for r in resumed) >= orphan["endTime"], resumed
        spans = sorted((r["startTime"], r["endTime"], r["runId"]) for r in runs if r["startTime"])
        overlapping = [(a[2], b[2]) for a, b in itertools.pairwise(spans) if b[0] < a[1]]
        assert not overlapping, f"archive runs in flight together: {overlapping}"
        retries = [
            r["runId"]
            for r in runs
            if {"key": "dagster/parent_run_id", "value": victim["runId"]} in r["tags"]
        ]
        print(
            f"{len(expected)} changes ({len(sent)} put) in both formats once; "
            f"{len(runs)} archive runs, {len(resumed)} after the restart (queued at the kill: "
            f"{len(queued_at_kill)}, retries of the orphan: {len(retries)}); the first resumed "
            f"{min(r['startTime'] for r in resumed) - orphan['endTime']:.0f} s after the "
            f"orphan ended, {orphan['endTime'] - killed_at:.0f} s after the kill"
        )
    finally:
        print({what: round(at) for what, at in timeline.items()})
        tree = {k: v for p in processes for k, v in descendants(p.pid).items()}
        for process in reversed(processes):
            stop_process_group(process)
        for pid, _ in alive(tree):  # only processes this test started
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for handle in handles:
            handle.close()
        for name in ("dagster-first", "dagster-second"):
            if (tmp_path / f"{name}.log").exists():
                tail = (tmp_path / f"{name}.log").read_text(errors="replace").splitlines()
                print(f"--- {name}.log, last lines:", *tail[-25:], sep="\n")
