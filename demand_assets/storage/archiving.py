"""Archive runs and rebuilds: the partitions their batches touch, written a few at once.

An archive run writes, in each partition its pending batches touch, one file holding those
batches, folding in the existing files that the merge policy (`storage.tiering`) picks. A
rebuild writes one file holding every batch landed for the partition. Each partition's write
is a `storage.partition_write.PartitionWrite`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from demand_assets.formats import FORMATS
from demand_assets.records import PartitionWindow
from demand_assets.storage.archive import Archive
from demand_assets.storage.partition_files import list_partitions
from demand_assets.storage.partition_write import PartitionResult, PartitionWrite, archive_partition
from demand_assets.storage.pending import Pending, clear_pending

# Partitions written at once: a run's partitions are small and S3-bound; a rebuilt partition
# can be large, and each holds a chunk and a row group in memory while it is written.
ARCHIVE_WRITERS = 8
REBUILD_WRITERS = 2
_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Work:
    """What a run asks of the archive: archive a type's pending batches, or rebuild days."""

    record_type: str
    window: PartitionWindow
    pending: Pending | None = None
    rebuild_days: tuple[str, ...] = ()

    def run(self, archive: Archive, log: logging.Logger | None = None) -> RunReport:
        if self.pending is not None:
            return archive_pending(archive, self.pending, self.window, log)
        return rebuild_partitions(archive, self.record_type, self.rebuild_days, self.window, log)


@dataclass
class RunReport:
    """What an archive run (or a rebuild) did, partition by partition."""

    record_type: str
    batches: list[str] = field(default_factory=list)
    partitions: list[PartitionResult] = field(default_factory=list)
    failures: dict[str, str] = field(default_factory=dict)  # day -> what went wrong

    @property
    def added(self) -> int:
        return sum(p.added for p in self.partitions)


def archive_pending(
    archive: Archive, pending: Pending, window: PartitionWindow, log: logging.Logger | None = None
) -> RunReport:
    """Archive the pending batches into every partition they touch, then clear the marks of
    the batches whose partitions were all written. A partition that fails keeps its batches
    pending (the next run does them again); the others are written regardless."""
    log = log or _log
    record_type = pending.record_type
    report = RunReport(record_type, sorted(pending.batches))
    days = pending.days()
    writes = {
        day: PartitionWrite(
            archive, record_type, day, {b: pending.batches[b][day] for b in batches}, window
        )
        for day, batches in days.items()
    }
    # Every partition's write begins, then every one finishes, each step's listings taken
    # for all the partitions at once: a month's listing serves all its days (rule 3 only
    # asks that the listing a write settles on be taken after the write).
    before = _listed(archive, record_type, list(writes))
    _each(writes, lambda day: writes[day].begin(_of(before, day)), ARCHIVE_WRITERS, report, log)
    begun = [day for day in writes if day not in report.failures]
    after = _listed(archive, record_type, begun)
    for result in _each(
        begun, lambda day: writes[day].finish(_of(after, day)), ARCHIVE_WRITERS, report, log
    ):
        report.partitions.append(result)
    failed = {b for day in report.failures for b in days[day]}
    clear_pending(archive, record_type, [b for b in pending.batches if b not in failed])
    return report


def _listed(archive: Archive, record_type: str, days: list[str]) -> dict:
    return {fmt: list_partitions(archive, fmt, record_type, days) for fmt in FORMATS}


def _of(listed: dict, day: str) -> dict[str, list[dict]]:
    return {fmt: by_day[day] for fmt, by_day in listed.items()}


def rebuild_partitions(
    archive: Archive,
    record_type: str,
    days: Iterable[str],
    window: PartitionWindow,
    log: logging.Logger | None = None,
) -> RunReport:
    """Rebuild each partition into one file per format holding every batch landed for it."""
    report = RunReport(record_type)
    report.partitions.extend(
        _each(
            list(days),
            lambda day: archive_partition(archive, record_type, day, None, window),
            REBUILD_WRITERS,
            report,
            log or _log,
        )
    )
    return report


def _each(days, write, writers: int, report: RunReport, log) -> list:
    """`write(day)` for each day, `writers` at once: what the ones that succeeded returned; a
    day that failed goes to `report.failures`."""
    days = list(days)
    if not days:
        return []

    def attempt(day: str):
        try:
            return write(day), None
        except Exception as exc:  # noqa: BLE001 - reported per partition, raised by the caller
            log.exception("%s partition %s failed", report.record_type, day)
            return None, f"{type(exc).__name__}: {exc}"

    done = []
    with ThreadPoolExecutor(max_workers=max(1, min(writers, len(days)))) as pool:
        for day, (result, error) in zip(days, pool.map(attempt, days), strict=True):
            if error is None:
                done.append(result)
            else:
                report.failures[day] = error
    return done
