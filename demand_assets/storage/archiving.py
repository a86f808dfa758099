"""Writing a partition's files from landed batches: archive runs and rebuilds.

An archive run writes, in each partition its pending batches touch, one file holding those
batches, folding in the existing files that the merge policy (`storage.tiering`) picks. A
rebuild writes one file holding every batch landed for the partition. Either way each file's
records are decoded from the landing objects of the batches it holds, encoded once per chunk
into an Arrow table that both formats are written from, and committed by the rules of
`storage.partition_files`, which keep every change once per format whatever else is writing.
"""

from __future__ import annotations

import logging
import os
import random
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from itertools import islice

from demand_assets.formats import FORMATS, open_writer
from demand_assets.formats.arrow import to_table
from demand_assets.records import Archivable, PartitionWindow, decode_change
from demand_assets.storage.archive import Archive
from demand_assets.storage.landing import landed_batches, read_landed
from demand_assets.storage.partition_files import (
    Listing,
    PartitionFiles,
    crossing,
    file_name,
    held,
    subsumed,
    tangles,
)
from demand_assets.storage.pending import Pending, clear_pending
from demand_assets.storage.tiering import NEW, plan_merges

# Records go through the writers this many at a time, so a partition of any size is written in
# bounded memory.
CHUNK_RECORDS = 16_384
# Partitions written at once: a run's partitions are small and S3-bound; a rebuilt partition
# can be large, and each holds a chunk and a row group in memory while it is written.
ARCHIVE_WRITERS = 8
REBUILD_WRITERS = 2
# A writer whose file crossed another's plans again, this many times in all, backing off.
MAX_ATTEMPTS = 6
_log = logging.getLogger(__name__)


class CrossedWriters(RuntimeError):
    """Another writer kept crossing this partition's writes (rule 3), attempt after attempt."""


@dataclass
class PartitionResult:
    """What a partition holds after a write, per format, and what the write changed."""

    record_type: str
    day: str
    added: int = 0  # changes of the archived batches that this write put in the partition
    rows: dict[str, int] = field(default_factory=dict)  # format -> rows the partition holds
    files: dict[str, list[str]] = field(default_factory=dict)  # format -> data keys it holds
    bytes: dict[str, int] = field(default_factory=dict)  # format -> bytes of those files
    written: dict[str, list[str]] = field(default_factory=dict)  # format -> keys written
    removed: dict[str, list[str]] = field(default_factory=dict)  # format -> keys removed

    @property
    def row_count(self) -> int:
        return max(self.rows.values(), default=0)


@dataclass
class _Plan:
    files: PartitionFiles
    listing: Listing
    groups: list[frozenset[str]]  # batch sets of the files to write
    new: frozenset[str]  # batches of the run that no file holds yet


def records_of(
    archive: Archive, record_type: str, day: str, batches: Iterable[str], window: PartitionWindow
) -> Iterator[dict]:
    """The archived records of a partition for the given batches, in batch-name order, each
    eventID once. A change that no longer passes the rules (they changed since it landed) is
    left out; the checks count landed changes the same way."""
    seen: set[str] = set()
    for change in read_landed(archive, record_type, day, batches):
        result = decode_change(change.data, change.shard, change.seq, window)
        if type(result) is not Archivable:
            continue
        if result.record_type != record_type or result.partition_date != day:
            continue
        event_id = result.record["provenance"]["eventID"]
        if event_id not in seen:
            seen.add(event_id)
            yield result.record


def archive_partition(
    archive: Archive,
    record_type: str,
    day: str,
    batches: dict[str, int] | None,
    window: PartitionWindow,
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> PartitionResult:
    """Archive `batches` (name -> changes landed for this day) into the partition's files;
    `None` rebuilds the partition into one file holding every batch landed for it."""
    result = PartitionResult(record_type, day)
    for attempt in range(MAX_ATTEMPTS):
        plans = [_plan(archive, fmt, record_type, day, batches) for fmt in FORMATS]
        if attempt == 0 and batches:
            result.added = sum(batches[b] for b in plans[0].new)
        if not _write(archive, plans, window, result):
            return _summarise(plans, result)
        sleep(min(8.0, 0.25 * 2**attempt) * random.uniform(0.5, 1.5))
        _log.info("%s %s: another writer crossed ours; planning again", record_type, day)
    raise CrossedWriters(
        f"{record_type} partition {day}: other writers crossed this one's files "
        f"{MAX_ATTEMPTS} times; nothing of it is lost (its batches stay pending)"
    )


def _plan(archive, fmt, record_type, day, batches) -> _Plan:
    files = PartitionFiles(archive, fmt, record_type, day)
    listing = files.listing()
    replaced = subsumed(listing.files.values())
    if replaced or listing.abandoned:
        files.remove(replaced)
        archive.bucket.delete(listing.abandoned)
        for name in replaced:
            del listing.files[name]
    live = list(listing.files.values())
    tangled = tangles(live)
    groups = [frozenset(held(listing.files[n] for n in group)) for group in tangled]
    if batches is None:  # rebuild: one file of every landed batch
        everything = frozenset(landed_batches(archive, record_type, day)) | held(live)
        if everything and not (len(live) == 1 and live[0].batches == everything):
            groups = [everything]
        return _Plan(files, listing, groups, frozenset())
    new = frozenset(batches) - held(live)
    if new:
        in_tangles = set().union(*tangled)
        sizes = {f.name: f.records for f in live if f.name not in in_tangles}
        for members in plan_merges(sizes, sum(batches[b] for b in new)):
            coverage = held(listing.files[n] for n in members if n != NEW)
            groups.append(frozenset(coverage | (new if NEW in members else set())))
    return _Plan(files, listing, groups, new)


def _write(archive, plans: list[_Plan], window, result: PartitionResult) -> bool:
    """Write every plan's groups, encoding each distinct batch set once for all the formats
    that need it; True when a write crossed another writer's and must be planned again."""
    wanted: dict[frozenset[str], list[_Plan]] = {}
    for plan in plans:
        for group in plan.groups:
            wanted.setdefault(group, []).append(plan)
    crossed = False
    for group, group_plans in wanted.items():
        fmts = [p.files.fmt for p in group_plans]
        with _encoded(archive, result.record_type, result.day, group, window, fmts) as (
            count,
            paths,
        ):
            if not count:
                continue  # the batches hold nothing archivable here (any more)
            for plan in group_plans:
                crossed |= _commit(plan, group, count, paths[plan.files.fmt], result)
    return crossed


def _commit(plan: _Plan, group, count: int, path_size: tuple[str, int], result) -> bool:
    files, fmt = plan.files, plan.files.fmt
    path, size = path_size
    mine = files.commit(file_name(group), group, count, path, size)
    result.written.setdefault(fmt, []).append(files.key(mine.name))
    after = files.listing(known={**plan.listing.files, mine.name: mine})
    others = [f for f in after.files.values() if f.name != mine.name]
    if mine.name not in after.files or crossing(mine, others):
        result.removed.setdefault(fmt, []).extend(files.remove([mine.name]))
        return True
    gone = subsumed(after.files.values())
    result.removed.setdefault(fmt, []).extend(files.remove(gone))
    for name in gone:
        after.files.pop(name, None)
    plan.listing = after
    return False


@contextmanager
def _encoded(archive, record_type, day, batches, window, fmts) -> Iterator[tuple[int, dict]]:
    """The records of `batches` written to a temporary file per format:
    (records, {fmt: (path, bytes)}). Each chunk becomes one Arrow table, which every format
    is written from."""
    with ExitStack() as stack:
        paths, sinks = {}, {}
        for fmt in fmts:
            fd, path = tempfile.mkstemp(suffix=f".{fmt}")
            os.close(fd)
            stack.callback(_unlink, path)
            paths[fmt] = path
            sinks[fmt] = stack.enter_context(open(path, "wb"))  # noqa: SIM115
        writers = {fmt: open_writer(fmt, sinks[fmt], record_type) for fmt in fmts}
        for chunk in _chunked(
            records_of(archive, record_type, day, batches, window), CHUNK_RECORDS
        ):
            table = to_table(record_type, chunk)
            for writer in writers.values():
                writer.write(table)
        counts = {fmt: writer.close() for fmt, writer in writers.items()}
        for sink in sinks.values():
            sink.close()
        yield counts[fmts[0]], {f: (p, os.path.getsize(p)) for f, p in paths.items()}


def _unlink(path: str) -> None:
    with suppress(FileNotFoundError):
        os.unlink(path)


def _chunked(items: Iterable[dict], size: int) -> Iterator[list[dict]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


def _summarise(plans: list[_Plan], result: PartitionResult) -> PartitionResult:
    for plan in plans:
        fmt, files = plan.files.fmt, list(plan.listing.files.values())
        result.rows[fmt] = sum(f.records for f in files)
        result.files[fmt] = sorted(plan.files.key(f.name) for f in files)
        result.bytes[fmt] = sum(f.size for f in files)
    return result


# -- runs ------------------------------------------------------------------------------------


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
    report = RunReport(pending.record_type, sorted(pending.batches))
    days = pending.days()

    def one(day: str) -> PartitionResult:
        counts = {b: pending.batches[b][day] for b in days[day]}
        return archive_partition(archive, pending.record_type, day, counts, window)

    _each(days, one, ARCHIVE_WRITERS, report, log)
    failed = {b for day in report.failures for b in days[day]}
    clear_pending(archive, pending.record_type, [b for b in pending.batches if b not in failed])
    return report


def rebuild_partitions(
    archive: Archive,
    record_type: str,
    days: Iterable[str],
    window: PartitionWindow,
    log: logging.Logger | None = None,
) -> RunReport:
    """Rebuild each partition into one file per format holding every batch landed for it."""
    report = RunReport(record_type)
    _each(
        list(days),
        lambda day: archive_partition(archive, record_type, day, None, window),
        REBUILD_WRITERS,
        report,
        log or _log,
    )
    return report


def _each(days, write, writers: int, report: RunReport, log) -> None:
    days = list(days)
    if not days:
        return

    def attempt(day: str):
        try:
            return write(day), None
        except Exception as exc:  # noqa: BLE001 - reported per partition, raised by the caller
            log.exception("%s partition %s failed", report.record_type, day)
            return None, f"{type(exc).__name__}: {exc}"

    with ThreadPoolExecutor(max_workers=max(1, min(writers, len(days)))) as pool:
        for day, (result, error) in zip(days, pool.map(attempt, days), strict=True):
            if error is None:
                report.partitions.append(result)
            else:
                report.failures[day] = error
