"""Memory of a full rebuild: one partition of at least 1,000,000 records, rebuilt in one run.

In-process figures (the README's second column). Lands batches of `--batch` (100,000)
generated `demand` changes, all created on one day, with `land_batch` into the emulator's S3
(landing objects, pending marks and summaries, as a sensor tick lands them; no archive run
takes them) until one partition holds `--records` changes. Then a child process materializes
that partition of the `demand` asset, as a UI backfill does (a rebuild: the partition rewritten
from every landed batch into one file per format, followed by the asset's checks), and reports
its peak RSS and the checks it ran. Baseline, same run: the peak RSS of a child that loads the
same definitions and resources, builds the same jobs and runs nothing. Every record is then
counted back from the Avro and Parquet files, which must be one per format.
The WARN check `newest_batch_archived` fails when the newest landed batch also touched another
day (a few generated changes fall on other days): only this partition is rebuilt, and no
archive run takes the batches.

    .venv/bin/python benchmarks/rebuild_memory.py [--records 1000000] [--batch 100000]

Target (issue 8): the rebuild streams, staying under 1.5 GiB.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import warnings
from datetime import UTC, datetime, timedelta

from stream_drain import peak_rss_mib

warnings.filterwarnings("ignore")

NOW = datetime(2026, 11, 2, 12, tzinfo=UTC)
BATCH = 100_000
LIMIT_MIB = 1536


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=BATCH, help="changes per landed batch")
    parser.add_argument("--child", choices=["rebuild", "idle"])
    parser.add_argument("--day")
    args = parser.parse_args()
    if args.child:
        child(args.child, args.day)
        return

    from demand_assets.local.stack import MotoServer

    moto = MotoServer.start()
    os.environ.update(moto.environment())
    try:
        day, landed, land_seconds = land(args.records, args.batch)
        idle = run_child("idle", day)
        rebuilt = run_child("rebuild", day)
        avro_rows, parquet_rows = count_rows(day)
    finally:
        moto.stop()

    print(f"landed {landed:,} changes in partition demand/{day} ({land_seconds:.0f} s)")
    print(
        f"rebuild: {rebuilt['seconds']:.1f} s, {landed / rebuilt['seconds']:,.0f} records/s; "
        f"peak RSS {rebuilt['peak_mib']:,.0f} MiB"
    )
    print(f"baseline (definitions loaded, nothing run): peak RSS {idle['peak_mib']:,.0f} MiB")
    print(
        f"rebuild above baseline: {rebuilt['peak_mib'] - idle['peak_mib']:,.0f} MiB "
        f"(ratio {rebuilt['peak_mib'] / idle['peak_mib']:.1f})"
    )
    print(f"checks in the rebuild run: {', '.join(rebuilt['checks']) or 'none'}")
    print(f"records written: avro {avro_rows:,}, parquet {parquet_rows:,} (landed {landed:,})")
    ok = rebuilt["peak_mib"] < LIMIT_MIB and avro_rows == parquet_rows == landed
    print(f"target met (< {LIMIT_MIB} MiB, every record once)" if ok else "target NOT met")


def settings():
    from demand_assets.config import Settings

    return Settings(bucket="bench-rebuild", stream_name="bench-rebuild")


def land(target: int, batch: int) -> tuple[str, int, float]:
    """Land batches until one partition holds `target` changes; (day, changes, seconds)."""
    import boto3

    from demand_assets.definitions import build_definitions
    from demand_assets.defs.partitions import partition_window
    from demand_assets.records.change import Change
    from demand_assets.records.timestamps import format_instant
    from demand_assets.storage.archive import Archive
    from demand_assets.storage.batches import land_batch
    from demand_assets.storage.layout import Layout
    from demand_assets.storage.s3 import Bucket
    from demand_assets.stream.checkpoints import batch_name
    from demand_assets.traffic.generator import ChangeGenerator

    config = settings()
    boto3.client("s3").create_bucket(Bucket=config.bucket)
    archive = Archive(Bucket(boto3.client("s3"), config.bucket), Layout(config.prefix))
    window = partition_window(build_definitions(config).resolve_assets_def("demand").partitions_def)
    day, counts, seq, seed = NOW.date().isoformat(), 0, 0, 0
    started = time.perf_counter()
    while counts < target:
        generator = ChangeGenerator(seed=seed, now=NOW, days=0, type_weights={"demand": 1.0})
        arrived = NOW + timedelta(minutes=seed)
        arrival = format_instant(arrived)  # as the stream reader gives it
        changes = []
        for change in generator.changes(batch):
            seq += 1
            changes.append(Change("shardId-000000000000", str(seq), arrival, change.data))
        name = batch_name(config.stream_name, {"shardId-000000000000": changes[0].seq}, arrived)
        summary = land_batch(archive, config.stream_name, name, changes, window)
        counts += summary.archivable.get(f"demand/{day}", 0)
        seed += 1
        print(f"  landed batch {seed}: {counts:,} changes in demand/{day}", flush=True)
    return day, counts, time.perf_counter() - started


def run_child(mode: str, day: str) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", mode, "--day", day],
        check=True,
        capture_output=True,
        text=True,
        env=os.environ,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def child(mode: str, day: str) -> None:
    import logging

    import dagster as dg

    from demand_assets.definitions import build_definitions
    from demand_assets.defs.archive_job import ARCHIVE_JOB
    from demand_assets.defs.inprocess import execute_request

    logging.disable(logging.CRITICAL)
    defs = build_definitions(settings())
    instance = dg.DagsterInstance.ephemeral()
    defs.resolve_job_def(ARCHIVE_JOB)  # the code location's jobs, built in both modes
    defs.resolve_implicit_global_asset_job_def()
    started, checks = time.perf_counter(), []
    if mode == "rebuild":
        tags = {
            "dagster/asset_partition_range_start": day,
            "dagster/asset_partition_range_end": day,
        }
        request = dg.RunRequest(asset_selection=[dg.AssetKey("demand")], tags=tags)
        result = execute_request(defs, instance, request)
        assert result.success
        checks = [
            f"{e.check_name}: {'passed' if e.passed else f'FAILED ({e.severity.value})'}"
            for e in result.get_asset_check_evaluations()
        ]
    seconds = time.perf_counter() - started
    print(json.dumps({"seconds": seconds, "peak_mib": peak_rss_mib(), "checks": checks}))


def count_rows(day: str) -> tuple[int, int]:
    """Rows in the partition's data files, read back block by block and from Parquet footers."""
    import io

    import boto3
    import fastavro
    import pyarrow.parquet as pq

    config = settings()
    s3 = boto3.client("s3")
    totals = []
    for fmt in ("avro", "parquet"):
        prefix = f"{config.prefix}/{fmt}/demand/partition_date={day}/"
        keys = [
            o["Key"]
            for o in s3.list_objects_v2(Bucket=config.bucket, Prefix=prefix).get("Contents", [])
            if "/_" not in o["Key"]
        ]
        assert len(keys) == 1, f"{fmt}: expected one compacted file, found {keys}"
        body = s3.get_object(Bucket=config.bucket, Key=keys[0])["Body"].read()
        if fmt == "avro":
            totals.append(sum(b.num_records for b in fastavro.block_reader(io.BytesIO(body))))
        else:
            totals.append(pq.ParquetFile(io.BytesIO(body)).metadata.num_rows)
    return totals[0], totals[1]


if __name__ == "__main__":
    main()
