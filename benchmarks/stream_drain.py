"""Streaming path on the local stack: backlog drain throughput and steady-state latency.

A moto server (a separate process, as on the local stack) holds a 2-shard stream and the
bucket. Sensor ticks are evaluated on a Dagster instance at the sensor's interval, as the daemon
does; their run requests go to a run queue shaped like dagster.yaml's (`--workers` runs at once,
one per record type) whose long-lived worker processes execute each run in process. What the
daemon adds on top, a fresh process per run, is not part of these figures.

1. Drain: `--backlog` records wait on the stream; records/s from the first tick until the last
   partition is written. Baseline, same run: reading the same backlog from the stream with
   GetRecords alone (no landing, no runs).
2. Latency: a producer puts `--rate` records/s for `--seconds`; the sensor ticks every
   `--interval` seconds (the sensor's default); each record's latency is from its put to the
   first listing of the archive that shows it in Parquet. p50/p95 printed.

    .venv/bin/python benchmarks/stream_drain.py [--backlog 200000] [--rate 200] [--seconds 60]
        [--workers 2]

Targets (issue 3): drain >= 10,000 records/s; p95 latency < 30 s.
"""

from __future__ import annotations

import argparse
import itertools
import os
import threading
import time
import warnings
from datetime import UTC, datetime

from demand_assets.defs.inprocess import evaluate_sensor, execute_request
from demand_assets.local.observe import ArchiveWatcher, percentile
from demand_assets.local.stack import MotoServer
from demand_assets.traffic.producer import paced, put

warnings.filterwarnings("ignore")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backlog", type=int, default=200_000)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--interval", type=float, default=None)
    parser.add_argument("--workers", type=int, default=2, help="runs at once (cores here: 2)")
    args = parser.parse_args()

    moto = MotoServer.start()
    os.environ.update(moto.environment())
    try:
        drain_figures = drain(args.backlog, args.workers)
        latency_figures = latency(args.rate, args.seconds, args.interval, args.workers)
    finally:
        moto.stop()

    print(f"backlog drain: {args.backlog:,} records")
    print(f"  baseline (GetRecords only):    {drain_figures['read_rate']:>10,.0f} records/s")
    print(f"  pipeline (tick, land, runs):   {drain_figures['rate']:>10,.0f} records/s")
    print(f"  ratio pipeline/baseline: {drain_figures['rate'] / drain_figures['read_rate']:.2f}")
    print(
        f"  ticks {drain_figures['ticks']} ({drain_figures['tick_seconds']:.1f} s), "
        f"runs {drain_figures['runs']} ({drain_figures['run_seconds']:.1f} s in {args.workers} "
        f"workers), data files {drain_figures['files']}"
    )
    print(
        f"steady {args.rate:.0f} records/s for {args.seconds:.0f} s, "
        f"sensor every {latency_figures['interval']:.0f} s:"
    )
    print(
        f"  latency p50 {latency_figures['p50']:.1f} s, p95 {latency_figures['p95']:.1f} s, "
        f"max {latency_figures['max']:.1f} s over {latency_figures['records']:,} records"
    )
    ok = drain_figures["rate"] >= 10_000 and latency_figures["p95"] < 30
    print("targets met (drain >= 10,000 records/s, p95 < 30 s)" if ok else "targets NOT met")


def setup(stream: str, bucket: str, shards: int = 2):
    import boto3

    kinesis, s3 = boto3.client("kinesis"), boto3.client("s3")
    kinesis.create_stream(StreamName=stream, ShardCount=shards)
    s3.create_bucket(Bucket=bucket)
    return kinesis, s3


def drain(backlog: int, workers: int) -> dict:
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
    runner = RunQueue(workers, settings)
    cursor, ticks, tick_seconds = None, 0, 0.0
    start = time.perf_counter()
    try:
        while True:
            tick_started = time.perf_counter()
            result = evaluate_sensor(defs, instance, cursor)
            tick_seconds += time.perf_counter() - tick_started
            ticks += 1
            cursor = result.cursor or cursor
            if not result.run_requests:
                break
            runner.submit(result.run_requests)
            runner.wait_until(tick_started + DEFAULT_INTERVAL_SECONDS)
        runner.join()
    finally:
        runner.close()
    elapsed = time.perf_counter() - start
    files = sum(
        1
        for page in s3.get_paginator("list_objects_v2").paginate(
            Bucket=settings.bucket, Prefix=f"{settings.prefix}/parquet/"
        )
        for o in page.get("Contents", [])
        if "/_" not in o["Key"]
    )
    return {
        "rate": backlog / elapsed,
        "read_rate": read_rate,
        "ticks": ticks,
        "tick_seconds": tick_seconds,
        "runs": runner.done,
        "run_seconds": runner.run_seconds,
        "files": files,
    }


class RunQueue:
    """The daemon's run queue, in miniature: at most `workers` runs at once and one run per
    record type at a time (dagster.yaml's tag limit), each executed in process by a long-lived
    worker process that loaded the definitions once. As in the daemon, runs are dequeued by
    their own thread while the sensor ticks: a slow tick does not leave workers idle."""

    def __init__(self, workers: int, settings) -> None:
        import multiprocessing
        import threading
        from concurrent.futures import ProcessPoolExecutor

        self.workers = workers
        self.pool = ProcessPoolExecutor(
            workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_worker_start,
            initargs=(dict(os.environ), settings),
        )
        self.pending: list = []
        self.running: dict = {}  # future -> record type
        self.done = 0
        self.run_seconds = 0.0
        self.peak_rss_mib = 0.0  # the largest peak RSS a worker reported
        self.failure: BaseException | None = None
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._dequeuer = threading.Thread(target=self._dequeue, daemon=True)
        self._dequeuer.start()

    def submit(self, requests) -> None:
        with self._lock:
            self.pending += [
                (r.tags["demand/record_type"], r.job_name, r.run_config, r.partition_key, r.tags)
                for r in requests
            ]
            self._start()

    @property
    def queued(self) -> int:
        with self._lock:
            return len(self.pending) + len(self.running)

    def _start(self) -> None:  # under the lock
        for item in list(self.pending):
            if len(self.running) >= self.workers:
                break
            if item[0] in set(self.running.values()):
                continue
            self.pending.remove(item)
            self.running[self.pool.submit(_worker_run, *item[1:])] = item[0]

    def _dequeue(self) -> None:
        from concurrent.futures import FIRST_COMPLETED, wait

        while not self._closed.is_set():
            with self._lock:
                running = list(self.running)
            if not running:
                self._closed.wait(0.2)
                continue
            finished, _ = wait(running, timeout=0.5, return_when=FIRST_COMPLETED)
            with self._lock:
                for future in finished:
                    del self.running[future]
                    try:
                        seconds, peak = future.result()
                    except BaseException as exc:  # a failed run: reported by wait_until / join
                        self.failure = self.failure or exc
                        continue
                    self.run_seconds += seconds
                    self.peak_rss_mib = max(self.peak_rss_mib, peak)
                    self.done += 1
                self._start()

    def _raise_failure(self) -> None:
        if self.failure is not None:
            raise RuntimeError("a run failed") from self.failure

    def wait_until(self, deadline: float) -> None:
        time.sleep(max(0.0, deadline - time.perf_counter()))
        self._raise_failure()

    def join(self) -> None:
        while self.queued:
            self._raise_failure()
            time.sleep(0.2)
        self._raise_failure()

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


def _worker_run(job_name, run_config, partition_key, tags) -> tuple[float, float]:
    """One run, as the daemon launches it: its own (in-memory) instance, so no run's events
    stay behind in the worker; the peak RSS is reset first, so the figure is this run's."""
    import dagster as dg

    reset_peak_rss()
    started = time.perf_counter()
    job = _WORKER["defs"].resolve_job_def(job_name)
    with dg.DagsterInstance.ephemeral() as instance:
        result = job.execute_in_process(
            run_config=run_config,
            partition_key=partition_key,
            tags=tags,
            instance=instance,
            raise_on_error=True,
        )
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


def execute(defs, instance, request) -> None:
    assert execute_request(defs, instance, request).success


def latency(rate: float, seconds: float, interval: float | None, workers: int) -> dict:
    import dagster as dg
    import orjson

    from demand_assets.config import Settings
    from demand_assets.definitions import build_definitions
    from demand_assets.defs.sensor import DEFAULT_INTERVAL_SECONDS
    from demand_assets.traffic.generator import ChangeGenerator

    interval = interval or DEFAULT_INTERVAL_SECONDS
    settings = Settings(bucket="bench-latency", stream_name="bench-latency")
    kinesis, s3 = setup(settings.stream_name, settings.bucket)
    put_at: dict[str, float] = {}

    def produce() -> None:
        generator = ChangeGenerator(seed=12, now=datetime.now(UTC), rate_per_second=rate)
        for chunk in paced(itertools.islice(generator, int(rate * seconds)), rate):
            put(kinesis, settings.stream_name, chunk)
            now = time.monotonic()
            for change in chunk:
                put_at[orjson.loads(change.data)["eventID"]] = now

    defs = build_definitions(settings)
    instance = dg.DagsterInstance.ephemeral()
    producer = threading.Thread(target=produce, daemon=True)
    watcher = ArchiveWatcher(s3, settings.bucket, settings.prefix)
    runner = RunQueue(workers, settings)
    cursor = None
    producer.start()
    deadline = time.monotonic() + seconds + 3 * interval
    while time.monotonic() < deadline:
        next_tick = time.monotonic() + interval
        result = evaluate_sensor(defs, instance, cursor)
        cursor = result.cursor or cursor
        runner.submit(result.run_requests)
        while time.monotonic() < next_tick:
            runner.wait_until(time.perf_counter() + min(1.0, next_tick - time.monotonic()))
            watcher.poll()
        if not producer.is_alive() and len(watcher.visible_at) >= len(put_at):
            break
    runner.close()
    visible_at = watcher.visible_at
    latencies = [visible_at[e] - put_at[e] for e in visible_at if e in put_at]
    return {
        "interval": interval,
        "records": len(latencies),
        "p50": percentile(latencies, 0.5),
        "p95": percentile(latencies, 0.95),
        "max": max(latencies),
    }


if __name__ == "__main__":
    main()
