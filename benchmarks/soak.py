"""Soak: 1,000,000 changes through the local stack with bounded memory, nothing lost or doubled.

In-process figures (the README's second column; the daemon's come from
benchmarks/daemon_keepup.py). A producer process puts `--records` generated changes on a
`--shards`-shard stream of the emulator as fast as it accepts them (64 shards by default: the
emulator copies a shard's whole key list to number every record it puts, so its PutRecords
costs time in proportion to the records already in the shard; with 16 shards, a million
records kept the emulator's core busy with that copy and the pipeline's S3 calls waited behind
it). Meanwhile this process ticks `demand_stream_sensor` at its interval with the default
buffering hints, and the `archive_batches` runs it requests go to the stream path's run queue
of stream_drain.py: one long-lived worker process executes them one after another, each with
an instance of its own as a daemon-launched run has, and the sensor's instance shows each run
queued, in progress and finished, so the sensor keeps at most one queued and one in progress.
When the producer is done, the stream drained and no batch is left pending, every archived row
is read back: each change must appear exactly once per format.

Reported: throughput, ticks and archive runs (the most queued and in progress at once), the
data files (the most in one partition: at most 12 per format), the batches left pending, the
peak RSS of the sensor process and the largest peak RSS of a run (the worker's peak is reset
before each run), against a baseline measured in the same run (the worker's RSS once the
definitions are loaded).

    .venv/bin/python benchmarks/soak.py [--records 1000000] [--shards 64]
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

from stream_drain import RunQueue, buffered, data_files, peak_rss_mib, setup, tick

warnings.filterwarnings("ignore")

NOW = datetime(2026, 11, 3, tzinfo=UTC)
SEED = 23


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--shards", type=int, default=64)
    parser.add_argument(
        "--kinesis",
        choices=["moto", "kinesalite"],
        default="moto",
        help="the stream's emulator (S3 and Glue on moto either way): benchmarks/emulators.py",
    )
    args = parser.parse_args()

    import logging

    from demand_assets.local.stack import MotoServer

    logging.disable(logging.CRITICAL)
    from emulators import Kinesalite

    moto = MotoServer.start()
    os.environ.update(moto.environment())
    kinesalite = Kinesalite.start() if args.kinesis == "kinesalite" else None
    if kinesalite:
        os.environ.update(kinesalite.environment())
    try:
        figures = soak(args.records, args.shards)
        rows = read_back()
    finally:
        moto.stop()
        if kinesalite:
            kinesalite.stop()

    print(
        f"soak: {args.records:,} changes through the local stack ({args.shards} shards, "
        f"Kinesis on {args.kinesis})"
    )
    print(
        f"  {figures['seconds']:.0f} s from the first put to the last partition written: "
        f"{args.records / figures['seconds']:,.0f} changes/s"
    )
    print(
        f"  ticks {figures['ticks']}, archive runs {figures['runs']} "
        f"({figures['run_seconds']:.0f} s in the worker); at most {figures['max_queued']} "
        f"queued and {figures['max_in_progress']} in progress"
    )
    if figures["failed_ticks"]:
        print(
            f"  ticks that failed and were retried by the next tick: {len(figures['failed_ticks'])}"
            f" (first: {figures['failed_ticks'][0]})"
        )
    files = figures["files"]
    print(
        f"  data files: avro {files['total']['avro']:,}, parquet {files['total']['parquet']:,} in "
        f"{files['partitions']:,} partitions; at most avro {files['most']['avro']}, "
        f"parquet {files['most']['parquet']} in one"
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
    print(
        f"  lost (put but not archived): {lost}; errors documents: {figures['errors']}; "
        f"batches left pending: {figures['pending']}"
    )
    ok = (
        all(v == 0 for v in lost.values())
        and all(max(c.values()) == 1 for c in rows.values() if c)
        and figures["pending"] == 0
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


def soak(records: int, shards: int) -> dict:
    import boto3
    import dagster as dg

    from demand_assets.config import Settings
    from demand_assets.definitions import build_definitions
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
    runner = RunQueue(defs, instance, settings)
    baseline = runner.baseline_rss_mib()
    cursor, ticks, produced = None, 0, None
    failed_ticks: list[str] = []
    started = time.perf_counter()
    producer.start()
    try:
        while True:
            tick_started = time.perf_counter()
            ticks += 1
            # Known before the tick reads: once the producer is done, a tick reads to the end.
            if produced is None and not done.empty():
                produced = done.get()
            idle = runner.idle  # no archive run queued or in progress when the tick starts
            try:
                result = tick(defs, instance, cursor, runner)
            except Exception as exc:  # as the daemon does: the tick fails, the next one retries
                failed_ticks.append(f"{type(exc).__name__}: {str(exc)[:120]}")
                runner.wait_until(tick_started + DEFAULT_INTERVAL_SECONDS)
                continue
            cursor = result.cursor or cursor
            if result.run_requests:
                print(
                    f"  {time.perf_counter() - started:6.0f} s  tick {ticks}: archive run "
                    f"requested ({result.run_requests[0].tags.get('demand/reason', '')}); "
                    f"{runner.done} done" + (", producer done" if produced is not None else ""),
                    flush=True,
                )
            # Drained: the producer was done, nothing ran, nothing was requested, nothing is
            # buffered (and with nothing running the sensor requests any batch left pending).
            elif produced is not None and idle and not buffered(cursor):
                break
            runner.wait_until(tick_started + DEFAULT_INTERVAL_SECONDS)
        runner.join()
    except BaseException:
        producer.terminate()  # the failure is the news: do not wait for a million puts
        raise
    finally:
        runner.close()
        producer.join()
    seconds = (runner.last_finished or time.perf_counter()) - started
    sensor_peak = peak_rss_mib()  # before the check below loads a million ids
    with open(ids_path) as lines:
        put_ids = set(lines.read().split("\n"))
    os.unlink(ids_path)

    s3 = boto3.client("s3")
    paginator = s3.get_paginator("list_objects_v2")

    def count(prefix: str) -> int:
        return sum(
            len(page.get("Contents", []))
            for page in paginator.paginate(Bucket=settings.bucket, Prefix=prefix)
        )

    return {
        "seconds": seconds,
        "ticks": ticks,
        "sensor_peak": sensor_peak,
        "worker_peak": runner.peak_rss_mib,
        "baseline": baseline,
        "put_ids": put_ids,
        "errors": count(f"{settings.prefix}/errors/"),
        "pending": count(f"{settings.prefix}/landing/_pending/"),
        "files": data_files(s3, settings.bucket, settings.prefix),
        "failed_ticks": failed_ticks,
        **runner.figures(),
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
