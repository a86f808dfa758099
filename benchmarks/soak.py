"""Soak: 1,000,000 changes through the local stack with bounded memory, nothing lost or doubled.

A producer process puts `--records` generated changes on a `--shards`-shard stream of the
emulator as fast as it accepts them (64 shards by default: the emulator copies a shard's whole
key list to number every record it puts, so its PutRecords costs time in proportion to the
records already in the shard; with 16 shards, a million records kept the emulator's core busy
with that copy and the pipeline's S3 calls waited behind it). Meanwhile this process ticks
`demand_stream_sensor` at its interval, and a run queue shaped like dagster.yaml's (see
stream_drain.py) executes the runs in long-lived worker processes, each run with an instance
of its own as a daemon-launched run has. When the producer is done and the stream drained,
every archived row is read back: each change must appear exactly once per format.

Reported: throughput, the peak RSS of the sensor process and the largest peak RSS of a run
(a worker's peak is reset before each run), against a baseline measured in the same run (a
worker's RSS once the definitions are loaded).

    .venv/bin/python benchmarks/soak.py [--records 1000000] [--workers 2] [--shards 64]
"""

from __future__ import annotations

import argparse
import io
import multiprocessing
import os
import tempfile
import time
import warnings
from collections import Counter
from datetime import UTC, datetime

from stream_drain import RunQueue, peak_rss_mib, setup

warnings.filterwarnings("ignore")

NOW = datetime(2026, 11, 3, tzinfo=UTC)
SEED = 23


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--shards", type=int, default=64)
    args = parser.parse_args()

    import logging

    from demand_assets.local.stack import MotoServer

    logging.disable(logging.CRITICAL)
    moto = MotoServer.start()
    os.environ.update(moto.environment())
    try:
        figures = soak(args.records, args.workers, args.shards)
        rows = read_back()
    finally:
        moto.stop()

    print(f"soak: {args.records:,} changes through the local stack ({args.shards} shards)")
    print(
        f"  {figures['seconds']:.0f} s from the first put to the last partition written: "
        f"{args.records / figures['seconds']:,.0f} changes/s "
        f"({figures['ticks']} ticks, {figures['runs']} runs in {args.workers} workers)"
    )
    if figures["failed_ticks"]:
        print(
            f"  ticks that failed and were retried by the next tick: {len(figures['failed_ticks'])}"
            f" (first: {figures['failed_ticks'][0]})"
        )
    print(f"  peak RSS, sensor process:  {figures['sensor_peak']:>7,.0f} MiB")
    print(
        f"  peak RSS, largest run:     {figures['worker_peak']:>7,.0f} MiB "
        f"(baseline, definitions loaded: {figures['baseline']:,.0f} MiB; "
        f"ratio {figures['worker_peak'] / figures['baseline']:.1f})"
    )
    for fmt, counts in rows.items():
        doubled = sum(1 for n in counts.values() if n > 1)
        print(f"  {fmt}: {len(counts):,} changes archived, {doubled} doubled")
    put_ids = figures["put_ids"]
    lost = {fmt: len(put_ids - set(counts)) for fmt, counts in rows.items()}
    print(f"  lost (put but not archived): {lost}; errors documents: {figures['errors']}")
    ok = all(v == 0 for v in lost.values()) and all(
        max(c.values()) == 1 for c in rows.values() if c
    )
    print("nothing lost, nothing doubled" if ok else "LOST OR DOUBLED CHANGES")


def produce(environment: dict, stream: str, records: int, ids_path: str, done) -> None:
    """The producer process: puts the changes, writes their event ids to `ids_path`."""
    import itertools

    import boto3
    import orjson

    from demand_assets.traffic.generator import ChangeGenerator
    from demand_assets.traffic.producer import put

    os.environ.update(environment)
    kinesis = boto3.client("kinesis")
    generator = ChangeGenerator(seed=SEED, now=NOW, rate_per_second=100.0)
    ids = []
    changes = iter(generator)
    while len(ids) < records:
        chunk = list(itertools.islice(changes, min(5000, records - len(ids))))
        put(kinesis, stream, chunk)
        ids += [orjson.loads(c.data)["eventID"] for c in chunk]
    with open(ids_path, "w") as out:
        out.write("\n".join(ids))
    done.put(len(ids))


def soak(records: int, workers: int, shards: int) -> dict:
    import dagster as dg

    from demand_assets.config import Settings
    from demand_assets.definitions import build_definitions
    from demand_assets.defs.inprocess import evaluate_sensor
    from demand_assets.defs.sensor import DEFAULT_INTERVAL_SECONDS

    settings = Settings(bucket="bench-soak", stream_name="bench-soak")
    setup(settings.stream_name, settings.bucket, shards)
    context = multiprocessing.get_context("spawn")
    done = context.Queue()
    ids_path = os.path.join(tempfile.mkdtemp(), "put.ids")
    producer = context.Process(
        target=produce,
        args=(dict(os.environ), settings.stream_name, records, ids_path, done),
    )
    defs = build_definitions(settings)
    instance = dg.DagsterInstance.ephemeral()
    runner = RunQueue(workers, settings)
    baseline = runner.pool.submit(peak_rss_mib).result()
    cursor, ticks, produced, errors = None, 0, None, 0
    failed_ticks: list[str] = []
    started = time.perf_counter()
    producer.start()
    try:
        while True:
            tick_started = time.perf_counter()
            ticks += 1
            try:
                result = evaluate_sensor(defs, instance, cursor)
            except Exception as exc:  # as the daemon does: the tick fails, the next one retries
                failed_ticks.append(f"{type(exc).__name__}: {str(exc)[:120]}")
                runner.wait_until(tick_started + DEFAULT_INTERVAL_SECONDS)
                continue
            cursor = result.cursor or cursor
            if produced is None and not done.empty():
                produced = done.get()
            if result.run_requests:
                runner.submit(result.run_requests)
                print(
                    f"  {time.perf_counter() - started:6.0f} s  tick {ticks}: "
                    f"{len(result.run_requests)} runs requested, {runner.done} done, "
                    f"{runner.queued} queued or running"
                    + (", producer done" if produced is not None else ""),
                    flush=True,
                )
            elif produced is not None:
                break
            runner.wait_until(tick_started + DEFAULT_INTERVAL_SECONDS)
        runner.join()
    except BaseException:
        producer.terminate()  # the failure is the news: do not wait for a million puts
        raise
    finally:
        runner.close()
        producer.join()
    seconds = time.perf_counter() - started
    sensor_peak = peak_rss_mib()  # before the check below loads a million ids
    with open(ids_path) as lines:
        put_ids = set(lines.read().split("\n"))
    os.unlink(ids_path)
    import boto3

    paginator = boto3.client("s3").get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=settings.bucket, Prefix=f"{settings.prefix}/errors/"):
        errors += len(page.get("Contents", []))
    return {
        "seconds": seconds,
        "ticks": ticks,
        "runs": runner.done,
        "sensor_peak": sensor_peak,
        "worker_peak": runner.peak_rss_mib,
        "baseline": baseline,
        "put_ids": put_ids,
        "errors": errors,
        "failed_ticks": failed_ticks,
    }


def read_back() -> dict[str, Counter]:
    """eventID -> rows, per format, from every data file."""
    import boto3
    import fastavro
    import pyarrow.parquet as pq

    s3 = boto3.client("s3")
    counts: dict[str, Counter] = {"avro": Counter(), "parquet": Counter()}
    paginator = s3.get_paginator("list_objects_v2")
    for fmt in counts:
        for page in paginator.paginate(Bucket="bench-soak", Prefix=f"demand/{fmt}/"):
            for obj in page.get("Contents", []):
                if "/_" in obj["Key"]:
                    continue
                body = s3.get_object(Bucket="bench-soak", Key=obj["Key"])["Body"].read()
                if fmt == "avro":
                    ids = (r["provenance"]["eventID"] for r in fastavro.reader(io.BytesIO(body)))
                else:
                    table = pq.read_table(io.BytesIO(body), columns=["provenance"])
                    ids = (p["eventID"] for p in table.column(0).to_pylist())
                counts[fmt].update(ids)
    return counts


if __name__ == "__main__":
    main()
