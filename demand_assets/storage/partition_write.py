"""One partition's write: its files planned from a listing, written from the landing objects
of the batches they hold, and settled by the rules of `storage.partition_files`, which keep
every change once per format whatever else is writing.

Each file's records are decoded from the landing objects of the batches it holds, encoded once
per chunk into an Arrow table that both formats are written from.
"""

from __future__ import annotations

import logging
import os
import random
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from itertools import islice

from demand_assets.formats import FORMATS, open_writer
from demand_assets.formats.arrow import to_table
from demand_assets.records import Archivable, PartitionWindow, decode_change
from demand_assets.storage.archive import Archive
from demand_assets.storage.landing import landed_batches, read_landed
from demand_assets.storage.partition_files import (
    DataFile,
    Listing,
    PartitionFiles,
    crossing,
    file_name,
    held,
    removable,
    tangles,
)
from demand_assets.storage.tiering import NEW, plan_merges

# Records go through the writers this many at a time, so a partition of any size is written in
# bounded memory.
CHUNK_RECORDS = 16_384
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
    write = PartitionWrite(archive, record_type, day, batches, window)
    write.begin()
    return write.finish(sleep=sleep)


class PartitionWrite:
    """One partition's write, in the steps rule 3 orders: plan from a listing and write
    (`begin`), then list again and settle (`finish`), planning again while another writer
    crosses this one. A run begins all its partitions' writes before it finishes any, so a
    listing per month serves many partitions (`list_partitions`)."""

    def __init__(self, archive, record_type, day, batches, window) -> None:
        self.archive, self.batches, self.window = archive, batches, window
        self.result = PartitionResult(record_type, day)
        self.plans: list[_Plan] = []
        self.mine: dict[str, list[DataFile]] = {}  # format -> files this attempt committed

    def begin(self, listed: dict[str, list[dict]] | None = None, first: bool = True) -> None:
        """Plan each format (from `listed`, fmt -> the partition's objects, when given) and
        commit the files the plans call for."""
        result = self.result
        self.plans = [
            _plan(
                self.archive,
                fmt,
                result.record_type,
                result.day,
                self.batches,
                (listed or {}).get(fmt),
            )
            for fmt in FORMATS
        ]
        if first and self.batches:
            result.added = sum(self.batches[b] for b in self.plans[0].new)
        self.mine = _write(self.archive, self.plans, self.window, result)

    def finish(
        self,
        listed: dict[str, list[dict]] | None = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> PartitionResult:
        """Settle the files `begin` committed against a listing taken after them (`listed`, or
        the partition's own), planning and writing again while another writer crosses."""
        result = self.result
        for attempt in range(1, MAX_ATTEMPTS + 1):
            crossed = False
            for plan in self.plans:
                objects = (listed or {}).get(plan.files.fmt)
                crossed |= _settle(plan, self.mine.get(plan.files.fmt, []), result, objects)
            if not crossed:
                return _summarise(self.plans, result)
            if attempt == MAX_ATTEMPTS:
                break
            sleep(min(8.0, 0.25 * 2 ** (attempt - 1)) * random.uniform(0.5, 1.5))
            _log.info(
                "%s %s: another writer crossed ours; planning again", result.record_type, result.day
            )
            listed = None
            self.begin(first=False)
        raise CrossedWriters(
            f"{result.record_type} partition {result.day}: other writers crossed this one's "
            f"files {MAX_ATTEMPTS} times; nothing of it is lost (its batches stay pending)"
        )


def _plan(archive, fmt, record_type, day, batches, objects=None) -> _Plan:
    files = PartitionFiles(archive, fmt, record_type, day)
    listing = files.listing(objects=objects)
    gone = removable(listing.files.values())
    if gone or listing.abandoned:
        files.remove(gone)
        archive.bucket.delete(listing.abandoned)
        for name in gone:
            del listing.files[name]
    live = listing.live  # a file held by one not yet settled is kept, but not planned on
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


def _write(archive, plans: list[_Plan], window, result: PartitionResult) -> dict:
    """Commit every plan's groups, encoding each distinct batch set once for all the formats
    that need it: format -> the files committed. (A plan's groups share no batch.)"""
    wanted: dict[frozenset[str], list[_Plan]] = {}
    for plan in plans:
        for group in plan.groups:
            wanted.setdefault(group, []).append(plan)
    mine: dict[str, list[DataFile]] = {}
    for group, group_plans in wanted.items():
        fmts = [p.files.fmt for p in group_plans]
        with _encoded(archive, result.record_type, result.day, group, window, fmts) as (
            count,
            paths,
        ):
            if not count:
                continue  # the batches hold nothing archivable here (any more)
            for plan in group_plans:
                fmt = plan.files.fmt
                path, size = paths[fmt]
                committed = plan.files.commit(file_name(group), group, count, path, size)
                result.written.setdefault(fmt, []).append(plan.files.key(committed.name))
                mine.setdefault(fmt, []).append(committed)
    return mine


def _settle(plan: _Plan, mine: list[DataFile], result, objects=None) -> bool:
    """Rule 3 for the files this writer committed, on a listing taken after them: True when
    another writer's file crossed one of them (it is removed; plan again). Otherwise the
    files they subsume are removed (rule 2)."""
    if not mine:
        return False
    files, fmt = plan.files, plan.files.fmt
    after = files.listing(
        known={**plan.listing.files, **{m.name: m for m in mine}}, objects=objects
    )
    crossed = [
        m.name
        for m in mine
        if m.name not in after.files
        or crossing(m, [f for f in after.files.values() if f.name != m.name])
    ]
    if crossed:
        result.removed.setdefault(fmt, []).extend(files.remove(crossed))
        return True
    gone = removable(after.files.values(), mine=[m.name for m in mine])
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
        try:
            for chunk in _chunked(
                records_of(archive, record_type, day, batches, window), CHUNK_RECORDS
            ):
                table = to_table(record_type, chunk)
                for writer in writers.values():
                    writer.write(table)
        except BaseException:
            # A failed read: close the writers while their files are open (a writer left to
            # the garbage collector would write its footer to a closed file), then fail.
            for writer in writers.values():
                with suppress(Exception):
                    writer.close()
            raise
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
        fmt, files = plan.files.fmt, plan.listing.live
        result.rows[fmt] = sum(f.records for f in files)
        result.files[fmt] = sorted(plan.files.key(f.name) for f in files)
        result.bytes[fmt] = sum(f.size for f in files)
    return result
