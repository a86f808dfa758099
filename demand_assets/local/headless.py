"""The demo without the UI: the same stack and pipeline in process. A line per sensor tick and
a summary on the console (stdout); Dagster's own output in a log file; an exit code that says
whether an ERROR check failed or a change was lost (`report.verdict`)."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import boto3
import orjson

from demand_assets.config import Settings
from demand_assets.local.demo import demo_environment
from demand_assets.local.observe import ArchiveWatcher, BatchWatcher, inventory, percentile
from demand_assets.local.report import CheckOutcome, plural, tick_line, verdict
from demand_assets.local.stack import MotoServer, provision

HEADLESS_LOG = Path(".local") / "logs" / "headless-dagster.log"


def run_headless(
    root: Path,
    *,
    records: int,
    rate: float,
    interval: float,
    types: list[str] | None = None,
    log_path: Path | None = None,
) -> int:
    """The same stack without the UI: N changes (of `types`, default all) through the pipeline,
    a line per sensor tick, then the nightly compaction with its checks and a summary. Dagster's
    own output (its event log, warnings) goes to `log_path` (default HEADLESS_LOG under `root`);
    the exit code follows `report.verdict`."""
    log_path = log_path or root / HEADLESS_LOG
    print(f"headless: {records:,} changes at {rate:g}/s; Dagster's event log: {log_path}")
    moto = MotoServer.start()
    try:
        with dagster_output_to(log_path):
            stack = _Stack.provision(moto)
            traffic = _Traffic.start(stack, records, rate, types)
            defs, instance = _dagster(stack)
            drained = _drain(defs, instance, stack, traffic, interval)
            print("compacting every partition with data, with its checks (as nightly) ...")
            outcomes = _run_checks(defs, instance)
        return _report(stack, traffic, drained, outcomes, interval, log_path)
    finally:
        moto.stop()


@contextlib.contextmanager
def dagster_output_to(path: Path):
    """Everything written to sys.stderr meanwhile goes to `path`: the in-process runs' and the
    sensor's Dagster console logger (DEBUG events, run logs; it writes to the current
    sys.stderr) and Python's warnings. The console keeps sys.stdout."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", buffering=1) as log, contextlib.redirect_stderr(log):
        yield log


@dataclass
class _Stack:
    settings: Settings
    s3: object
    kinesis: object

    @classmethod
    def provision(cls, moto: MotoServer) -> _Stack:
        env = demo_environment(moto)
        os.environ.update(env)
        settings = Settings.from_env(env)
        provision(settings)
        return cls(settings, boto3.client("s3"), boto3.client("kinesis"))


@dataclass
class _Traffic:
    """Generated changes put on the stream by a thread; the eventIDs of the valid ones, and
    when each was put."""

    changes: list
    valid: set[str]
    put_at: dict[str, float] = field(default_factory=dict)
    thread: threading.Thread | None = None

    @classmethod
    def start(cls, stack: _Stack, records: int, rate: float, types=None) -> _Traffic:
        from demand_assets.traffic.generator import DEFAULT_TYPE_WEIGHTS, ChangeGenerator

        weights = {t: w for t, w in DEFAULT_TYPE_WEIGHTS.items() if t in (types or [t])}
        changes = ChangeGenerator(
            seed=int(time.time()),
            type_weights=weights,
            other_type_share=0.02,
            malformed_share=0.005,
        ).changes(records)
        valid = {orjson.loads(c.data)["eventID"] for c in changes if c.kind == "valid"}
        traffic = cls(changes, valid)
        traffic.thread = threading.Thread(target=traffic._produce, args=(stack, rate), daemon=True)
        traffic.thread.start()
        return traffic

    def _produce(self, stack: _Stack, rate: float) -> None:
        from demand_assets.traffic.producer import paced, put

        for chunk in paced(self.changes, rate):
            put(stack.kinesis, stack.settings.stream_name, chunk)
            now = time.monotonic()
            for change in chunk:
                if change.kind == "valid":
                    self.put_at[orjson.loads(change.data)["eventID"]] = now


def _dagster(stack: _Stack):
    import dagster as dg

    from demand_assets.definitions import build_definitions

    return build_definitions(stack.settings), dg.DagsterInstance.ephemeral()


@dataclass
class _Drained:
    seconds: float
    ticks: int
    runs: int
    watcher: ArchiveWatcher


def _drain(defs, instance, stack: _Stack, traffic: _Traffic, interval: float) -> _Drained:
    """Sensor ticks and their archive runs, in process, until every valid change is visible;
    a line per tick."""
    from demand_assets.defs.inprocess import evaluate_sensor, execute_request

    bucket, prefix = stack.settings.bucket, stack.settings.prefix
    watcher, batches = (
        ArchiveWatcher(stack.s3, bucket, prefix),
        BatchWatcher(stack.s3, bucket, prefix),
    )
    valid = len(traffic.valid)
    cursor, ticks, runs, started = None, 0, 0, time.monotonic()
    while True:
        cycle = time.monotonic()
        result = evaluate_sensor(defs, instance, cursor)
        cursor = result.cursor or cursor
        ran = [
            execute_request(defs, instance, request, raise_on_error=False).success
            for request in result.run_requests
        ]
        ticks, runs = ticks + 1, runs + len(ran)
        watcher.poll()
        line = tick_line(f"tick {ticks:3d}", batches.poll(), ran, len(watcher.visible_at), valid)
        print(line, flush=True)
        if not traffic.thread.is_alive() and len(watcher.visible_at) >= valid:
            break
        if time.monotonic() - started > DRAIN_TIMEOUT:
            print(f"gave up waiting after {DRAIN_TIMEOUT} s", flush=True)
            break
        time.sleep(max(0.0, interval - (time.monotonic() - cycle)))
    return _Drained(time.monotonic() - started, ticks, runs, watcher)


DRAIN_TIMEOUT = 600


def _run_checks(defs, instance) -> list[CheckOutcome]:
    """Every record type's days with data compacted as the nightly run does, with its checks:
    one outcome per check and partition."""
    import dagster as dg

    from demand_assets.defs.inprocess import execute_request
    from demand_assets.defs.rebuilds import check_keys_by_type, consecutive_runs, rebuild_request
    from demand_assets.records import RECORD_TYPES
    from demand_assets.storage.landing import landed_days

    glue_job = defs.resolve_implicit_global_asset_job_def()
    glue_job.execute_in_process(asset_selection=[dg.AssetKey("glue_tables")], instance=instance)
    archive = defs.resources["archive"].archive()
    check_keys = check_keys_by_type(defs.asset_checks or [])
    outcomes: list[CheckOutcome] = []
    for record_type in RECORD_TYPES:
        days = sorted(landed_days(archive, record_type))
        for first, last in consecutive_runs(days):
            request = rebuild_request(
                record_type, first, last, f"headless:{record_type}:{first}", check_keys, "demo"
            )
            result = execute_request(defs, instance, request, raise_on_error=False)
            covered = [d for d in days if first <= d <= last]
            outcomes += _outcomes_of(result, record_type, covered, check_keys.get(record_type, []))
    return outcomes


def _outcomes_of(result, record_type: str, days: list[str], expected) -> list[CheckOutcome]:
    """A range run reports a check once: failed on the days its metadata names (all of them if
    it names none), passed on the others. Checks the run never reported count as failed."""
    import dagster as dg

    outcomes, reported = [], set()
    for evaluation in result.get_asset_check_evaluations():
        reported.add(evaluation.check_name)
        failed_days = set()
        if not evaluation.passed:
            named = evaluation.metadata.get("failed_partitions")
            failed_days = set(named.value) if named is not None else set(days)
        severity = "WARN" if evaluation.severity == dg.AssetCheckSeverity.WARN else "ERROR"
        on = [evaluation.partition] if evaluation.partition else days
        outcomes += [
            CheckOutcome(record_type, evaluation.check_name, d, severity, d not in failed_days)
            for d in on
        ]
    for key in expected:
        if key.name not in reported:
            outcomes += [
                CheckOutcome(record_type, key.name, d, "ERROR", False, evaluated=False)
                for d in days
            ]
    return outcomes


def _report(stack, traffic, drained, outcomes, interval, log_path) -> int:
    settings, watcher = stack.settings, drained.watcher
    valid = traffic.valid
    lost = len(valid - set(watcher.visible_at))
    latencies = [
        watcher.visible_at[e] - traffic.put_at[e] for e in watcher.visible_at if e in traffic.put_at
    ]
    summary = inventory(stack.s3, settings.bucket, settings.prefix)
    lines = [
        f"records in: {len(traffic.changes):,} ({len(valid):,} valid) over "
        f"{drained.seconds:.0f} s: {plural(drained.ticks, 'sensor tick')}, "
        f"{plural(drained.runs, 'archive run')}",
        *(
            f"{fmt:8s} {summary[fmt]['files']:,} files, {summary[fmt]['bytes']:,} bytes, "
            f"{summary[fmt]['partitions']} partitions"
            for fmt in ("avro", "parquet")
        ),
        f"errors:  {summary['error_documents']} error documents",
        f"archived: {len(watcher.visible_at):,} changes visible in Parquet, {lost:,} lost",
    ]
    if latencies:
        lines.append(
            f"latency: p50 {percentile(latencies, 0.5):.1f} s, "
            f"p95 {percentile(latencies, 0.95):.1f} s (sensor every {interval:g} s)"
        )
    result = verdict(outcomes, lost)
    print("\n".join([*lines, *result.lines, f"Dagster's event log: {log_path}"]), flush=True)
    return result.exit_code
