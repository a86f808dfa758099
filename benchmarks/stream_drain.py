"""Streaming path on the local stack: backlog drain throughput and steady-state latency.

A moto server (a separate process, as on the local stack) holds a 2-shard stream and the
bucket. Sensor ticks are evaluated on a Dagster instance and each run request is executed in
process, as `execute_in_process` would in a test; the daemon's run launcher (a process per run)
is not part of these figures.

1. Drain: `--backlog` records wait on the stream; records/s from the first tick until the last
   partition is written. Baseline, same run: reading the same backlog from the stream with
   GetRecords alone (no landing, no runs).
2. Latency: a producer puts `--rate` records/s for `--seconds`; the sensor ticks every
   `--interval` seconds (the sensor's default); each record's latency is from its put to the
   first listing of the archive that shows it in Parquet. p50/p95 printed.

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
    args = parser.parse_args()

    moto = MotoServer.start()
    os.environ.update(moto.environment())
    try:
        drain_figures = drain(args.backlog)
        latency_figures = latency(args.rate, args.seconds, args.interval)
    finally:
        moto.stop()

    print(f"backlog drain: {args.backlog:,} records")
    print(f"  baseline (GetRecords only):    {drain_figures['read_rate']:>10,.0f} records/s")
    print(f"  pipeline (tick, land, runs):   {drain_figures['rate']:>10,.0f} records/s")
    print(f"  ratio pipeline/baseline: {drain_figures['rate'] / drain_figures['read_rate']:.2f}")
    print(
        f"  ticks {drain_figures['ticks']}, runs {drain_figures['runs']}, "
        f"data files {drain_figures['files']}"
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


def setup(stream: str, bucket: str):
    import boto3

    kinesis, s3 = boto3.client("kinesis"), boto3.client("s3")
    kinesis.create_stream(StreamName=stream, ShardCount=2)
    s3.create_bucket(Bucket=bucket)
    return kinesis, s3


def drain(backlog: int) -> dict:
    import dagster as dg

    from demand_assets.config import Settings
    from demand_assets.definitions import build_definitions
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
    cursor, ticks, runs = None, 0, 0
    start = time.perf_counter()
    while True:
        result = evaluate_sensor(defs, instance, cursor)
        ticks += 1
        cursor = result.cursor or cursor
        if not result.run_requests:
            break
        for request in result.run_requests:
            execute(defs, instance, request)
            runs += 1
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
        "runs": runs,
        "files": files,
    }


def execute(defs, instance, request) -> None:
    assert execute_request(defs, instance, request).success


def latency(rate: float, seconds: float, interval: float | None) -> dict:
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
    cursor = None
    producer.start()
    deadline = time.monotonic() + seconds + 3 * interval
    while time.monotonic() < deadline:
        next_tick = time.monotonic() + interval
        result = evaluate_sensor(defs, instance, cursor)
        cursor = result.cursor or cursor
        for request in result.run_requests:
            execute(defs, instance, request)
        watcher.poll()
        if not producer.is_alive() and len(watcher.visible_at) >= len(put_at) * 0.9:
            break
        time.sleep(max(0.0, next_tick - time.monotonic()))
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
