"""Landing a DynamoDB table's items as snapshot changes, one Scan segment at a time.

Each item of a segment becomes a change as of the snapshot time (`records/snapshot.py`), at a
position of its own (`scan:{table}:{segment}/{total}`, page and index), landed in batches of
`items_per_batch` like a sensor tick's: landing objects, error documents, pending marks, a
summary. A batch is named after the table, the snapshot time, the segment and the key its first
page was read after, so a repeated scan of an unchanged table lands the same names: a retried
or re-executed segment rewrites its batches instead of adding copies. The archive runs then
archive them like any pending batch.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime

import orjson

from demand_assets.records import PartitionWindow
from demand_assets.records.change import Change
from demand_assets.records.snapshot import snapshot_change, stream_image
from demand_assets.records.timestamps import format_instant
from demand_assets.storage.archive import Archive
from demand_assets.storage.batches import land_batch
from demand_assets.stream.table_scan import TableScanner

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SegmentScan:
    """What one segment scans, and as of when."""

    table: str
    region: str | None
    key_names: tuple[str, ...]
    as_of_ms: int
    segment: int
    total_segments: int
    page_size: int
    items_per_batch: int

    @property
    def shard(self) -> str:
        """The provenance `shardId` of the segment's rows."""
        return f"scan:{self.table}:{self.segment}/{self.total_segments}"

    def batch_name(self, start_key: dict | None) -> str:
        position = orjson.dumps(
            {
                "table": self.table,
                "asOf": self.as_of_ms,
                "segment": [self.segment, self.total_segments],
                "after": None if start_key is None else stream_image(start_key),
            },
            option=orjson.OPT_SORT_KEYS,
        )
        stamp = datetime.fromtimestamp(self.as_of_ms / 1000, UTC).strftime("%Y%m%dT%H%M%SZ")
        return f"{stamp}-snapshot-{hashlib.sha256(position).hexdigest()[:20]}"


@dataclass
class SegmentReport:
    counts: Counter = field(default_factory=Counter)  # pages, items, batches, archivable, ...
    touched: dict[str, set[str]] = field(default_factory=dict)  # type -> partition dates
    throttled: int = 0


def land_segment(
    archive: Archive,
    client,
    scan: SegmentScan,
    window: PartitionWindow,
    log: logging.Logger | None = None,
) -> SegmentReport:
    """Scan one segment page by page and land its items as snapshot changes."""
    log = log or _log
    scanner = TableScanner(client, scan.table, page_size=scan.page_size, log=log)
    arrival = format_instant(datetime.fromtimestamp(scan.as_of_ms / 1000, UTC))
    report = SegmentReport()
    changes: list[Change] = []
    first_page_start: dict | None = None

    def land() -> None:
        batch = scan.batch_name(first_page_start)
        summary = land_batch(archive, f"table:{scan.table}", batch, changes, window)
        for record_type, days in summary.partitions().items():
            report.touched.setdefault(record_type, set()).update(days)
        report.counts["batches"] += 1
        report.counts["archivable"] += sum(summary.archivable.values())
        report.counts["rejected"] += sum(summary.rejected.values())
        report.counts["skipped"] += sum(summary.skipped.values())
        log.info("batch %s: %d items", batch, len(changes))
        changes.clear()

    for page in scanner.pages(scan.segment, scan.total_segments):
        if not changes:
            first_page_start = page.start_key
        report.counts["pages"] += 1
        report.counts["capacity_units"] += page.capacity_units
        for index, item in enumerate(page.items):
            data = snapshot_change(
                item, scan.key_names, table=scan.table, as_of_ms=scan.as_of_ms, region=scan.region
            )
            changes.append(Change(scan.shard, f"{page.number:07d}{index:06d}", arrival, data))
        report.counts["items"] += len(page.items)
        if len(changes) >= scan.items_per_batch:
            land()
    if changes:
        land()
    report.throttled = scanner.throttled
    return report
