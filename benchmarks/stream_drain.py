"""Stream path run in one process tree on the local stack: backlog drain and steady latency.

In-process figures (the README's second column); the daemon's, where each run is a process
of its own, come from benchmarks/daemon_keepup.py. A moto server (a separate process, as on
the local stack) holds a 2-shard stream and the bucket. This process evaluates
`demand_stream_sensor` ticks at the sensor's interval on a Dagster instance, as the daemon
does, with the default buffering hints (15 s or 5,000 changes). The `archive_batches` runs it
requests go to a run queue shaped like dagster.yaml's for the stream path (one run at a time):
one long-lived worker process, which loaded the definitions once, executes them one after
another, in process, each with an instance of its own. The sensor counts the archive runs on
its instance, so each request is mirrored there, queued, then in progress, then finished, as
the daemon's queue shows it: at most one queued and one in progress. What the daemon adds, a
process start and the code location's import per run and its queue's polling, is not in
these figures.

1. Drain: `--backlog` records wait on the stream; records/s from the first tick until the last
   archive run has written the last partition. Baseline, same run: reading the same backlog
   from the stream with GetRecords alone (no landing, no runs).
2. Latency: a producer puts `--rate` records/s for `--seconds`; the sensor ticks every
   `--interval` seconds (the sensor's default); each record's latency is from its put to the
   first listing of the archive that shows it in Parquet. p50/p95/max printed.

Both print the ticks, the archive runs (and the worker's time in them), the most runs queued
and in progress at once, and the data files (the most in one partition, per format).

    .venv/bin/python benchmarks/stream_drain.py [--backlog 200000] [--rate 200] [--seconds 60]

Targets (issue 3): drain >= 10,000 records/s; p95 latency < 30 s.
"""

from __future__ import annotations

import argparse
import itertools
import os
import threading
import time
import warnings
from collections import Counter, deque
from datetime import UTC, datetime

from demand_assets.defs.inprocess import evaluate_sensor, execute_request
from demand_assets.local.observe import ArchiveWatcher, percentile
from demand_assets.local.stack import MotoServer
from demand_assets.traffic.producer import paced, put

warnings.filterwarnings("ignore")

# How long the latency part waits, after the producer stops, for the last records to show.
LATENCY_DRAIN_SECONDS = 120


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backlog", type=int, default=200_000)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--interval", type=float, default=None)
    args = parser.parse_args()

    moto = MotoServer.start()
    os.environ.update(moto.environment())
    try:
        drain_figures = drain(args.backlog)
        latency_figures = latency(args.rate, args.seconds, args.interval)
    finally:
        moto.stop()

    print(f"backlog drain: {args.backlog:,} records (in process, one archive worker)")
    print(f"  baseline (GetRecords only):    {drain_figures['read_rate']:>10,.0f} records/s")
    print(f"  pipeline (tick, land, runs):   {drain_figures['rate']:>10,.0f} records/s")
    print(f"  ratio pipeline/baseline: {drain_figures['rate'] / drain_figures['read_rate']:.2f}")
    print(f"  {queue_line(drain_figures)}")
    print(f"  {files_line(drain_figures)}")
    print(
        f"steady {args.rate:.0f} records/s for {args.seconds:.0f} s, "
        f"sensor every {latency_figures['interval']:.0f} s:"
    )
    print(
        f"  latency p50 {latency_figures['p50']:.1f} s, p95 {latency_figures['p95']:.1f} s, "
        f"max {latency_figures['max']:.1f} s over {latency_figures['records']:,} records "
        f"({latency_figures['put'] - latency_figures['records']:,} archivable put, not visible)"
    )
    print(f"  {queue_line(latency_figures)}")
    print(f"  {files_line(latency_figures)}")
    ok = (
        drain_figures["rate"] >= 10_000
        and latency_figures["p95"] < 30
        and latency_figures["records"] == latency_figures["put"]
    )
    print("targets met (drain >= 10,000 records/s, p95 < 30 s)" if ok else "targets NOT met")


def queue_line(figures: dict) -> str:
    return (
        f"ticks {figures['ticks']} ({figures['tick_seconds']:.1f} s), archive runs "
        f"{figures['runs']} ({figures['run_seconds']:.1f} s in the worker); at most "
        f"{figures['max_queued']} queued and {figures['max_in_progress']} in progress"
    )


def files_line(figures: dict) -> str:
    files = figures["files"]
    total = ", ".join(f"{fmt} {n}" for fmt, n in files["total"].items())
    most = ", ".join(f"{fmt} {n}" for fmt, n in files["most"].items())
    return f"data files: {total} in {files['partitions']} partitions; at most {most} in one"


def setup(stream: str, bucket: str, shards: int = 2):
    import boto3

    kinesis, s3 = boto3.client("kinesis"), boto3.client("s3")
    kinesis.create_stream(StreamName=stream, ShardCount=shards)
    s3.create_bucket(Bucket=bucket)
    return kinesis, s3


def data_files(s3, bucket: str, prefix: str) -> dict:
    """Data files per format: in all, and the most in one partition."""
    total, most, partitions = {}, {}, set()
    for fmt in ("avro", "parquet"):
        per_partition: Counter = Counter()
        for page in s3.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix=f"{prefix}/{fmt}/"
        ):
            for obj in page.get("Contents", []):
                if "/_" not in obj["Key"]:
                    per_partition[tuple(obj["Key"].split("/")[-3:-1])] += 1
        total[fmt] = sum(per_partition.values())
        most[fmt] = max(per_partition.values(), default=0)
        partitions |= set(per_partition)
    return {"total": total, "most": most, "partitions": len(partitions)}


def buffered(cursor: str | None) -> int:
    """Changes landed since the sensor last requested a run (its cursor's buffer)."""
    from demand_assets.defs.sensor import load_cursor

    return load_cursor(cursor)[1].changes


def tick(defs, instance, cursor: str | None, runner: RunQueue):
    """One sensor tick as the daemon evaluates it: the instance first shows the archive runs
    as they are now; the tick's run request, if any, goes to the queue."""
    runner.reflect()
    result = evaluate_sensor(defs, instance, cursor)
    runner.submit(result.run_requests)
    return result


def drain(backlog: int) -> dict:
    import dagster as dg

    from demand_assets.config import Settings
    from demand_assets.definitions import build_definitions
    from demand_assets.defs.sensor import DEFAULT_INTERVAL_SECONDS
    from demand_assets.stream.kinesis import StreamReader
    from demand_assets.traffic.generator import ChangeGenerator

    settings = Settings(bucket="bench-drain", stream_name="bench-drain")
    kinesis, s3 = setup(settings.stream_name, settings.bucket)
    changes = ChangeGenerator(seed=11, days=3).changes(backlog)
    put(kinesis, settings.stream_name, changes)

    start = time.perf_counter()
    read = StreamReader(kinesis, settings.stream_name, max_records=backlog + 1, max_seconds=600)
    assert len(read.read({}).records) == backlog
    read_rate = backlog / (time.perf_counter() - start)

    defs = build_definitions(settings)
    instance = dg.DagsterInstance.ephemeral()
    runner = RunQueue(defs, instance, settings)
    cursor, ticks, tick_seconds = None, 0, 0.0
    start = time.perf_counter()
    try:
        while True:
            tick_started = time.perf_counter()
            idle = runner.idle  # no archive run queued or in progress when the tick starts
            result = tick(defs, instance, cursor, runner)
            tick_seconds += time.perf_counter() - tick_started
            ticks += 1
            cursor = result.cursor or cursor
            # Drained: nothing ran, nothing was requested, nothing is buffered (and with
            # nothing running the sensor requests a run for any batch left pending).
            if idle and not result.run_requests and not buffered(cursor):
                break
            runner.wait_until(tick_started + DEFAULT_INTERVAL_SECONDS)
        runner.join()
    finally:
        runner.close()
    elapsed = (runner.last_finished or time.perf_counter()) - start
    return {
        "rate": backlog / elapsed,
        "read_rate": read_rate,
        "ticks": ticks,
        "tick_seconds": tick_seconds,
        "files": data_files(s3, settings.bucket, settings.prefix),
        **runner.figures(),
    }


class RunQueue:
    """The daemon's run queue for the stream path, in miniature. dagster.yaml lets one run
    tagged `demand/stream_path` run at a time, so one long-lived worker process (definitions
    loaded once) executes the archive runs one after another, each with an instance of its own,
    as a run the daemon launches has. Runs are dequeued by a thread of their own while the
    sensor ticks, so a slow tick does not leave the worker idle.

    The sensor decides from the archive runs on its instance (queued, in progress), so each
    request is mirrored there: created NOT_STARTED (queued) when submitted, STARTED when the
    worker takes it, SUCCESS or FAILURE when it ends. The dequeuing thread only notes these
    changes; `reflect`, in the ticking thread, puts them on the instance before each tick."""

    def __init__(self, defs, instance, settings) -> None:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        from demand_assets.defs.archive_job import ARCHIVE_JOB

        self.job = defs.resolve_job_def(ARCHIVE_JOB)
        self.instance = instance
        self.pool = ProcessPoolExecutor(
            1,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_worker_start,
            initargs=(dict(os.environ), settings),
        )
        self.mirror: dict = {}  # run id -> the DagsterRun on the instance
        self.pending: deque = deque()  # (run id, job name, run key, tags, run config)
        self.running: tuple | None = None  # (future, run id)
        self.noted: list = []  # (run id, status) not yet on the instance
        self.done = 0
        self.run_seconds = 0.0
        self.last_finished: float | None = None  # perf_counter when the last run ended
        self.peak_rss_mib = 0.0  # the largest peak RSS of one run
        self.max_queued = 0
        self.max_in_progress = 0
        self.failure: BaseException | None = None
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._dequeuer = threading.Thread(target=self._dequeue, daemon=True)
        self._dequeuer.start()

    def baseline_rss_mib(self) -> float:
        """The worker's peak RSS with the definitions loaded and nothing run."""
        return self.pool.submit(peak_rss_mib).result()

    def submit(self, requests) -> None:
        import dagster as dg

        for request in requests:
            run = self.instance.create_run_for_job(
                job_def=self.job,
                run_config=request.run_config,
                tags=dict(request.tags),
                status=dg.DagsterRunStatus.NOT_STARTED,
            )
            self.mirror[run.run_id] = run
            with self._lock:
                self.pending.append(
                    (
                        run.run_id,
                        request.job_name,
                        request.run_key,
                        dict(request.tags),
                        dict(request.run_config or {}),
                    )
                )
                self.max_queued = max(self.max_queued, len(self.pending))

    def reflect(self) -> None:
        """Put the runs' status changes on the instance (in the thread that ticks)."""
        with self._lock:
            noted, self.noted = self.noted, []
        for run_id, status in noted:
            self.instance.delete_run(run_id)
            self.mirror[run_id] = self.instance.add_run(self.mirror[run_id].with_status(status))
        self._raise_failure()

    @property
    def idle(self) -> bool:
        with self._lock:
            return not self.pending and self.running is None

    def _start(self) -> None:  # under the lock
        import dagster as dg

        if self.running is None and self.pending:
            run_id, *item = self.pending.popleft()
            self.running = (self.pool.submit(_worker_run, *item), run_id)
            self.noted.append((run_id, dg.DagsterRunStatus.STARTED))
            self.max_in_progress = max(self.max_in_progress, 1)

    def _dequeue(self) -> None:
        from concurrent.futures import wait

        import dagster as dg

        while not self._closed.is_set():
            with self._lock:
                self._start()
                running = self.running
            if running is None:
                self._closed.wait(0.1)
                continue
            future, run_id = running
            wait([future], timeout=0.5)
            if not future.done():
                continue
            with self._lock:
                self.running = None
                self.last_finished = time.perf_counter()
                try:
                    seconds, peak = future.result()
                except BaseException as exc:  # a failed run: reported by reflect / wait_until
                    self.failure = self.failure or exc
                    self.noted.append((run_id, dg.DagsterRunStatus.FAILURE))
                    continue
                self.noted.append((run_id, dg.DagsterRunStatus.SUCCESS))
                self.run_seconds += seconds
                self.peak_rss_mib = max(self.peak_rss_mib, peak)
                self.done += 1

    def _raise_failure(self) -> None:
        if self.failure is not None:
            raise RuntimeError("an archive run failed") from self.failure

    def wait_until(self, deadline: float) -> None:
        time.sleep(max(0.0, deadline - time.perf_counter()))
        self._raise_failure()

    def join(self) -> None:
        while not self.idle:
            self._raise_failure()
            time.sleep(0.1)
        self._raise_failure()

    def figures(self) -> dict:
        return {
            "runs": self.done,
            "run_seconds": self.run_seconds,
            "max_queued": self.max_queued,
            "max_in_progress": self.max_in_progress,
        }

    def close(self) -> None:
        self._closed.set()
        self._dequeuer.join()
        self.pool.shutdown(cancel_futures=True)


_WORKER: dict = {}


def _worker_start(environment: dict, settings) -> None:
    from demand_assets.definitions import build_definitions

    warnings.filterwarnings("ignore")
    os.environ.update(environment)
    _WORKER["defs"] = build_definitions(settings)


def _worker_run(job_name, run_key, tags, run_config) -> tuple[float, float]:
    """One run, as the daemon launches it: its own (in-memory) instance, so no run's events
    stay behind in the worker; the peak RSS is reset first, so the figure is this run's."""
    import dagster as dg

    reset_peak_rss()
    started = time.perf_counter()
    request = dg.RunRequest(run_key=run_key, job_name=job_name, run_config=run_config, tags=tags)
    with dg.DagsterInstance.ephemeral() as instance:
        result = execute_request(_WORKER["defs"], instance, request)
    assert result.success
    return time.perf_counter() - started, peak_rss_mib()


def peak_rss_mib() -> float:
    """This process's peak RSS so far (VmHWM; getrusage's ru_maxrss is inherited through exec)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def reset_peak_rss() -> None:
    """Set this process's VmHWM back to its current RSS (Linux: clear_refs, value 5)."""
    with open("/proc/self/clear_refs", "w") as clear_refs:
        clear_refs.write("5")


def latency(rate: float, seconds: float, interval: float | None) -> dict:
    import dagster as dg

    from demand_assets.config import Settings
    from demand_assets.definitions import build_definitions
    from demand_assets.defs.partitions import partition_window
    from demand_assets.defs.sensor import DEFAULT_INTERVAL_SECONDS
    from demand_assets.environment import partitions_from_settings
    from demand_assets.records import Archivable, decode_change
    from demand_assets.traffic.generator import ChangeGenerator

    interval = interval or DEFAULT_INTERVAL_SECONDS
    settings = Settings(bucket="bench-latency", stream_name="bench-latency")
    kinesis, s3 = setup(settings.stream_name, settings.bucket)
    generator = ChangeGenerator(seed=12, now=datetime.now(UTC), rate_per_second=rate)
    changes = list(itertools.islice(generator, int(rate * seconds)))
    # The changes the archive will show (not the malformed ones, nor other item types).
    window = partition_window(partitions_from_settings(settings))
    expected: dict[int, str] = {}
    for change in changes:
        decoded = decode_change(change.data, "-", "-", window)
        if type(decoded) is Archivable:
            expected[id(change)] = decoded.record["provenance"]["eventID"]
    put_at: dict[str, float] = {}

    def produce() -> None:
        for chunk in paced(changes, rate):
            put(kinesis, settings.stream_name, chunk)
            now = time.monotonic()
            for change in chunk:
                if id(change) in expected:
                    put_at[expected[id(change)]] = now

    defs = build_definitions(settings)
    instance = dg.DagsterInstance.ephemeral()
    producer = threading.Thread(target=produce, daemon=True)
    watcher = ArchiveWatcher(s3, settings.bucket, settings.prefix)
    runner = RunQueue(defs, instance, settings)
    cursor, ticks, tick_seconds = None, 0, 0.0
    producer.start()
    deadline = time.monotonic() + seconds + LATENCY_DRAIN_SECONDS
    try:
        while time.monotonic() < deadline:
            next_tick = time.monotonic() + interval
            tick_started = time.perf_counter()
            result = tick(defs, instance, cursor, runner)
            tick_seconds += time.perf_counter() - tick_started
            ticks += 1
            cursor = result.cursor or cursor
            while time.monotonic() < next_tick:
                runner.wait_until(time.perf_counter() + min(1.0, next_tick - time.monotonic()))
                watcher.poll()
            if not producer.is_alive() and len(watcher.visible_at) >= len(expected):
                break
    finally:
        runner.close()
    visible_at = watcher.visible_at
    latencies = [visible_at[e] - put_at[e] for e in visible_at if e in put_at]
    return {
        "interval": interval,
        "put": len(expected),
        "records": len(latencies),
        "p50": percentile(latencies, 0.5),
        "p95": percentile(latencies, 0.95),
        "max": max(latencies),
        "ticks": ticks,
        "tick_seconds": tick_seconds,
        "files": data_files(s3, settings.bucket, settings.prefix),
        **runner.figures(),
    }


if __name__ == "__main__":
    main()
