"""Landing a batch: the durable step of a sensor tick (and of a table scan's or a replay's page).

Every change of the batch is decoded; each archivable one lands under its (type, partition
date) unless the batch, or a batch landed within the dedup window, already holds its eventID;
each rejected one goes to an error document; then the batch is marked pending for the archive
runs and a summary records what it held. Order, so that a crash anywhere is repaired by doing
the same again: eventID digests, landing objects and error documents, pending marks, summary
(a batch with a summary has landed whole). Only then may the stream cursor move.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import orjson

from demand_assets.records import Archivable, PartitionWindow, Rejected, decode_change
from demand_assets.records.change import Change
from demand_assets.records.deletion import redacted_change
from demand_assets.storage.archive import Archive
from demand_assets.storage.errors import error_objects
from demand_assets.storage.landing import encode_landing
from demand_assets.storage.pending import mark_pending
from demand_assets.storage.recent import RecentChanges, digest, encode_digests

_UPLOAD_THREADS = 8


@dataclass
class BatchSummary:
    batch: str
    stream: str
    records: int = 0
    archivable: dict[str, int] = field(default_factory=dict)  # "type/YYYY-MM-DD" -> changes
    rejected: dict[str, int] = field(default_factory=dict)  # type (or "unknown") -> changes
    skipped: dict[str, int] = field(default_factory=dict)  # other item types -> changes
    duplicates: int = 0  # changes whose eventID this batch or a recent one already landed
    error_keys: list[str] = field(default_factory=list)
    shards: dict[str, list[str]] = field(default_factory=dict)  # shard -> [first, last] seq
    first_arrival: str | None = None
    last_arrival: str | None = None
    millis_behind_latest: int = 0

    def partitions(self) -> dict[str, list[str]]:
        """record type -> the partition dates this batch touched."""
        out: dict[str, list[str]] = defaultdict(list)
        for key in sorted(self.archivable):
            record_type, day = key.split("/")
            out[record_type].append(day)
        return dict(out)

    def touched(self) -> dict[str, dict[str, int]]:
        """record type -> {partition date: changes landed}."""
        out: dict[str, dict[str, int]] = defaultdict(dict)
        for key, changes in sorted(self.archivable.items()):
            record_type, day = key.split("/")
            out[record_type][day] = changes
        return dict(out)

    @property
    def landed(self) -> int:
        return sum(self.archivable.values())

    def to_json(self) -> bytes:
        return orjson.dumps(self.__dict__, option=orjson.OPT_INDENT_2)

    @classmethod
    def from_json(cls, body: bytes) -> BatchSummary:
        fields = orjson.loads(body)
        fields.setdefault("duplicates", 0)  # summaries written before duplicates were counted
        return cls(**fields)


@dataclass
class _Sorted:
    """A batch's changes by fate."""

    landed: dict[tuple[str, str], list[Change]] = field(default_factory=lambda: defaultdict(list))
    digests: list[bytes] = field(default_factory=list)
    rejected: list[tuple[Rejected, Change]] = field(default_factory=list)
    rejected_types: Counter = field(default_factory=Counter)
    skipped: Counter = field(default_factory=Counter)
    duplicates: int = 0


def land_batch(
    archive: Archive,
    stream: str,
    batch: str,
    changes: list[Change],
    window: PartitionWindow,
    millis_behind_latest: int = 0,
    recent: RecentChanges | None = None,
) -> BatchSummary:
    """Land `changes` as batch `batch`; `recent`, if given, drops what it already landed.

    The steps, in the order the module's docstring gives: a crash between two of them is
    repaired by landing the same batch again."""
    fates = _sort(changes, window, recent, batch)
    summary = _summary(batch, stream, changes, fates, millis_behind_latest)
    ids = _put_ids(archive, batch, fates.digests)
    summary.error_keys = _put_landing_and_errors(archive, batch, fates)
    mark_pending(archive, batch, summary.touched(), summary.last_arrival)
    _put_summary(archive, summary)
    if recent is not None:
        recent.add(batch, ids)
    return summary


def _sort(changes, window, recent, batch) -> _Sorted:
    """Decode each change, then keep the archivable ones whose eventID is new."""
    fates = _Sorted()
    archivable = _decode_all(changes, window, fates)
    _keep_first_landings(archivable, recent, batch, fates)
    return fates


def _decode_all(changes, window, fates: _Sorted) -> list[tuple[Change, Archivable]]:
    """The archivable changes; rejected and skipped ones are counted in `fates`."""
    archivable = []
    for change in changes:
        result = decode_change(change.data, change.shard, change.seq, window)
        if type(result) is Archivable:
            archivable.append((change, result))
        elif type(result) is Rejected:
            fates.rejected.append((result, change))
            fates.rejected_types[result.record_type or "unknown"] += 1
        else:
            fates.skipped[result.item_type] += 1
    return archivable


def _keep_first_landings(archivable, recent, batch, fates: _Sorted) -> None:
    """Land each eventID once: not again within this batch, nor when a recent batch has it."""
    digests = [digest(r.record["provenance"]["eventID"]) for _, r in archivable]
    seen = recent.landed(digests, excluding=batch) if recent is not None else set()
    for (change, result), event in zip(archivable, digests, strict=True):
        if event in seen:
            fates.duplicates += 1  # this batch's own repeats too, from the second on
            continue
        seen.add(event)
        fates.digests.append(event)
        kept = redacted_change(change.data, result.record["provenance"]["eventName"])
        fates.landed[(result.record_type, result.partition_date)].append(
            Change(change.shard, change.seq, change.arrival, kept)
        )


def _put_ids(archive: Archive, batch: str, digests: list[bytes]) -> bytes:
    """The eventID digests of what the batch lands, written first; returned as written."""
    ids = encode_digests(digests)
    archive.bucket.put(archive.layout.batch_ids_key(batch), ids)
    return ids


def _put_landing_and_errors(archive: Archive, batch: str, fates: _Sorted) -> list[str]:
    """One landing object per (type, partition date) and the error documents; their keys."""
    objects = [
        (archive.layout.landing_key(t, d, batch), encode_landing(v), "application/gzip")
        for (t, d), v in fates.landed.items()
    ]
    errors = error_objects(archive.layout, batch, fates.rejected)
    objects += [(key, body, "application/json") for key, body in errors]
    _put_all(archive, objects)
    return [key for key, _ in errors]


def _put_summary(archive: Archive, summary: BatchSummary) -> None:
    """The summary goes last: a batch with a summary has landed whole."""
    archive.bucket.put(
        archive.layout.batch_summary_key(summary.batch), summary.to_json(), "application/json"
    )


def _summary(batch, stream, changes, fates: _Sorted, millis_behind_latest) -> BatchSummary:
    summary = BatchSummary(batch=batch, stream=stream, records=len(changes))
    summary.millis_behind_latest = millis_behind_latest
    for change in changes:
        first_last = summary.shards.setdefault(change.shard, [change.seq, change.seq])
        first_last[1] = change.seq
    if changes:
        summary.first_arrival = min(c.arrival for c in changes)
        summary.last_arrival = max(c.arrival for c in changes)
    summary.archivable = {f"{t}/{d}": len(v) for (t, d), v in sorted(fates.landed.items())}
    summary.rejected = dict(fates.rejected_types)
    summary.skipped = dict(fates.skipped)
    summary.duplicates = fates.duplicates
    return summary


def _put_all(archive: Archive, objects: list[tuple[str, bytes, str]]) -> None:
    if len(objects) <= 1:
        for key, body, content_type in objects:
            archive.bucket.put(key, body, content_type)
        return
    with ThreadPoolExecutor(_UPLOAD_THREADS) as pool:
        list(pool.map(lambda o: archive.bucket.put(*o), objects))


def read_summary(archive: Archive, batch: str) -> BatchSummary | None:
    body = archive.bucket.get_or_none(archive.layout.batch_summary_key(batch))
    return None if body is None else BatchSummary.from_json(body)
