"""Watching the archive from outside: the batches the sensor landed, when each change became
visible, what is there."""

from __future__ import annotations

import io
import time

import pyarrow.parquet as pq

from demand_assets.formats import FORMATS
from demand_assets.storage.batches import BatchSummary
from demand_assets.storage.layout import Layout


class BatchWatcher:
    """The summaries of batches landed since the last poll (a sensor tick writes one for each
    batch it lands)."""

    def __init__(self, s3, bucket: str, prefix: str):
        self.s3, self.bucket, self.layout = s3, bucket, Layout(prefix)
        self.seen_keys: set[str] = set()

    def poll(self) -> list[BatchSummary]:
        new = []
        for key in _keys(self.s3, self.bucket, f"{self.layout.prefix}/landing/_batches/"):
            if key in self.seen_keys or not key.endswith(".json"):
                continue
            self.seen_keys.add(key)
            body = self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
            new.append(BatchSummary.from_json(body))
        return sorted(new, key=lambda s: s.batch)


class ArchiveWatcher:
    """Notes when each change (by eventID) first appears in a Parquet data file."""

    def __init__(self, s3, bucket: str, prefix: str):
        self.s3, self.bucket, self.layout = s3, bucket, Layout(prefix)
        self.seen_keys: set[str] = set()
        self.visible_at: dict[str, float] = {}

    def poll(self) -> int:
        """Reads data files not read before; returns how many changes became visible."""
        before = len(self.visible_at)
        for key in _keys(self.s3, self.bucket, f"{self.layout.prefix}/parquet/"):
            if key in self.seen_keys or "/_" in key:
                continue
            self.seen_keys.add(key)
            body = self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
            now = time.monotonic()
            table = pq.read_table(io.BytesIO(body), columns=["provenance"])
            for provenance in table.column("provenance").to_pylist():
                self.visible_at.setdefault(provenance["eventID"], now)
        return len(self.visible_at) - before


def inventory(s3, bucket: str, prefix: str) -> dict:
    """Files, bytes and partitions per format; error documents and the changes they keep."""
    summary: dict = {}
    for fmt in FORMATS:
        files, size, partitions = 0, 0, set()
        for obj in _objects(s3, bucket, f"{prefix}/{fmt}/"):
            if "/_" in obj["Key"]:
                continue
            files += 1
            size += obj["Size"]
            record_type, day = obj["Key"].split("/")[-3:-1]
            partitions.add((record_type, day))
        summary[fmt] = {"files": files, "bytes": size, "partitions": len(partitions)}
    errors = list(_objects(s3, bucket, f"{prefix}/errors/"))
    summary["error_documents"] = len(errors)
    return summary


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * (len(ordered) - 1) + 0.5))]


def _objects(s3, bucket: str, prefix: str):
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        yield from page.get("Contents", [])


def _keys(s3, bucket: str, prefix: str) -> list[str]:
    return [obj["Key"] for obj in _objects(s3, bucket, prefix)]
