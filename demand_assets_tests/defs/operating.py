"""Helpers for the operations tests: batches landed as a sensor tick lands them, the archive's
files per partition, and rebuild requests executed in process."""

from __future__ import annotations

from collections import Counter
from datetime import datetime

import dagster as dg

from demand_assets.config import Settings
from demand_assets.defs.inprocess import execute_request
from demand_assets.defs.partitions import partition_window
from demand_assets.environment import partitions_from_settings
from demand_assets.records.change import Change
from demand_assets.storage.archive import Archive
from demand_assets.storage.batches import BatchSummary, land_batch
from demand_assets.storage.layout import Layout
from demand_assets.storage.s3 import Bucket
from demand_assets.stream.checkpoints import batch_name
from demand_assets_tests.defs.pipeline import archived, keys

SHARD = "shardId-000000000000"


def bucket_of(s3, settings: Settings) -> Bucket:
    return Bucket(s3, settings.bucket)


def archive_of(s3, settings: Settings) -> Archive:
    return Archive(Bucket(s3, settings.bucket), Layout(settings.prefix))


def land(s3, settings: Settings, payloads: list[bytes], arrival: datetime, first_seq: int):
    """Land payloads as one batch that arrived at `arrival`, named as the sensor names it."""
    batch = batch_name(settings.stream_name, {SHARD: str(first_seq)}, arrival)
    changes = [
        Change(SHARD, str(first_seq + i), arrival.isoformat(), data)
        for i, data in enumerate(payloads)
    ]
    window = partition_window(partitions_from_settings(settings))
    return land_batch(archive_of(s3, settings), settings.stream_name, batch, changes, window)


def run_all(defs: dg.Definitions, instance: dg.DagsterInstance, requests) -> list:
    results = [execute_request(defs, instance, r) for r in requests]
    assert all(r.success for r in results)
    return results


def data_files(s3, settings: Settings, fmt: str, record_type: str, day: str) -> list[str]:
    prefix = Layout(settings.prefix).partition_prefix(fmt, record_type, day)
    return [k for k in keys(s3, settings.bucket, prefix) if "/_" not in k]


def archived_event_ids(s3, settings: Settings) -> dict[str, Counter]:
    return {
        fmt: Counter(r["provenance"]["eventID"] for _, _, r in rows)
        for fmt, rows in archived(s3, settings).items()
    }


def touched(summaries: list[BatchSummary]) -> set[tuple[str, str]]:
    return {(t, d) for s in summaries for t, days in s.partitions().items() for d in days}
