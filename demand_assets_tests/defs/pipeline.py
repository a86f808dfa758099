"""Driving the pipeline in tests as the daemon would: sensor ticks on a test instance, each
run request executed in process, and the archive read back from the emulator's S3."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from io import BytesIO

import dagster as dg
import fastavro
import pyarrow.parquet as pq

from demand_assets.config import Settings
from demand_assets.defs.inprocess import evaluate_sensor, execute_request
from demand_assets.records import Archivable, PartitionWindow, decode_change
from demand_assets.traffic.generator import ChangeGenerator

WINDOW = PartitionWindow(date(2020, 1, 1), date(2030, 12, 31))
NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)


def generated(n: int, seed: int = 1, **options):
    """n changes over the 3 days before NOW, from the generator with `options`."""
    return ChangeGenerator(seed=seed, now=NOW, days=3, **options).changes(n)


def put(kinesis, stream: str, changes) -> None:
    """Put (data, partition_key) pairs, in order, 500 per call."""
    changes = list(changes)
    for start in range(0, len(changes), 500):
        response = kinesis.put_records(
            StreamName=stream,
            Records=[{"Data": d, "PartitionKey": k} for d, k in changes[start : start + 500]],
        )
        assert response.get("FailedRecordCount", 0) == 0


def tick(defs: dg.Definitions, instance: dg.DagsterInstance, cursor: str | None):
    return evaluate_sensor(defs, instance, cursor)


def execute(defs: dg.Definitions, instance: dg.DagsterInstance, request, raise_on_error=True):
    return execute_request(defs, instance, request, raise_on_error)


def rebuild(defs, instance, record_type: str, first: str, last: str, raise_on_error=True):
    """A backfill of a partition range, as the UI launches one (no batch config)."""
    tags = {"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last}
    request = dg.RunRequest(asset_selection=[dg.AssetKey(record_type)], tags=tags)
    return execute(defs, instance, request, raise_on_error)


@dataclass
class Drained:
    cursor: str | None
    requests: list = field(default_factory=list)


def drain(defs, instance, cursor=None, max_ticks: int = 10) -> Drained:
    """Tick and run until a tick requests nothing."""
    drained = Drained(cursor)
    for _ in range(max_ticks):
        result = tick(defs, instance, drained.cursor)
        drained.cursor = result.cursor or drained.cursor
        if not result.run_requests:
            return drained
        for request in result.run_requests:
            assert execute(defs, instance, request).success
        drained.requests += result.run_requests
    raise AssertionError("the stream did not drain")


def keys(s3, bucket: str, prefix: str) -> list[str]:
    paginator = s3.get_paginator("list_objects_v2")
    return [
        o["Key"]
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix)
        for o in page.get("Contents", [])
    ]


def archived(s3, settings: Settings) -> dict[str, list[tuple[str, str, dict]]]:
    """Every archived row per format: (type, partition date, record), read with fastavro and
    pyarrow from every data file (a path part starting with `_` or `.` is not data)."""
    rows: dict[str, list] = {"avro": [], "parquet": []}
    for fmt in rows:
        for key in keys(s3, settings.bucket, f"{settings.prefix}/{fmt}/"):
            relative = key[len(f"{settings.prefix}/{fmt}/") :]
            if any(part.startswith(("_", ".")) for part in relative.split("/")):
                continue  # not data: sidecars, compaction markers
            record_type = key.split("/")[-3]
            day = key.split("/")[-2].removeprefix("partition_date=")
            body = s3.get_object(Bucket=settings.bucket, Key=key)["Body"].read()
            if fmt == "avro":
                records = list(fastavro.reader(BytesIO(body)))
            else:
                records = pq.read_table(BytesIO(body)).to_pylist()
            rows[fmt] += [(record_type, day, r) for r in records]
    return rows


def event_id_counts(rows) -> Counter:
    return Counter(r["provenance"]["eventID"] for _, _, r in rows)


def expected_records(payloads: list[bytes]) -> dict[str, tuple[str, str, dict]]:
    """eventID -> (type, day, record) as the rules derive them, for the archivable payloads."""
    expected = {}
    for data in payloads:
        result = decode_change(data, "-", "-", WINDOW)
        if type(result) is Archivable:
            expected[result.record["provenance"]["eventID"]] = (
                result.record_type,
                result.partition_date,
                result.record,
            )
    return expected


def without_position(record: dict) -> dict:
    """A record without the stream position, which depends on the stream it was read from."""
    provenance = {
        k: v for k, v in record["provenance"].items() if k not in ("shardId", "sequenceNumber")
    }
    return {**record, "provenance": provenance}
