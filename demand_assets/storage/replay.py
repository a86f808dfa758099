"""Replaying the error documents under `errors/` after a fix (SPEC section 5, REQ-006).

Every event of every document is decoded again with the current rules (and the current
partition window, so a sale that was too far ahead passes once the window reaches it):
- an event that now passes is landed, with the others of its chunk, as one batch, pending
  for the next archive run like any batch the stream sensor lands;
- an event of an item type that is not archived (a rule that now skips it) is dropped;
- an event that still fails stays, under the message it fails with now.

Order and names make a replay safe to repeat and to crash anywhere:
1. The batch is landed first. Its name is derived from the documents' keys and the events'
   contents, so a replay repeated after a crash lands the same keys again, not a copy.
2. Only then are the documents rewritten to keep what still fails (a document whose events
   now fail for another reason is split, one document per message) and documents replayed in
   full are deleted. New documents are written before old ones are deleted.
A change landed twice (a crash between two chunks, the rules changing between two attempts)
is in two batches under one eventID; the partition files hold each eventID once.

A replayed row keeps its provenance: the shard and sequence number come from the document's
`positions` (written since documents carry them); a document written before has `unknown`.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime

import orjson

from demand_assets.records import Archivable, PartitionWindow, Rejected, decode_change
from demand_assets.records.change import Change
from demand_assets.records.errors import error_document
from demand_assets.storage.archive import Archive
from demand_assets.storage.batches import land_batch
from demand_assets.storage.layout import Layout

REPLAY_SOURCE = "errors-replay"
UNKNOWN_POSITION = "unknown"
DEFAULT_EVENTS_PER_BATCH = 5000
_READ_THREADS = 16
_SPLIT_NAMESPACE = uuid.UUID("0b9f5a8e-2c55-4a83-9a0e-6f61f4f1d2c7")
_log = logging.getLogger(__name__)


@dataclass
class ErrorDocument:
    key: str
    timestamp: str
    message: str
    events: list[str]
    positions: list[dict] | None
    batch: str | None

    @classmethod
    def parse(cls, key: str, body: bytes) -> ErrorDocument:
        document = orjson.loads(body)
        positions = document.get("positions")
        if positions is not None and len(positions) != len(document["events"]):
            positions = None
        return cls(
            key,
            document["timestamp"],
            document["error"]["message"],
            list(document["events"]),
            positions,
            document.get("batch"),
        )

    def change(self, index: int) -> Change:
        """The event as read from the stream, at its recorded position if known."""
        position = self.positions[index] if self.positions else {}
        return Change(
            position.get("shardId") or UNKNOWN_POSITION,
            position.get("sequenceNumber") or UNKNOWN_POSITION,
            position.get("arrival") or self.timestamp,
            self.events[index].encode(),
        )

    def body(self, indexes: list[int], message: str) -> bytes:
        positions = [self.positions[i] for i in indexes] if self.positions else None
        document = error_document(
            message, [self.events[i] for i in indexes], self.timestamp, positions, self.batch
        )
        return orjson.dumps(document, option=orjson.OPT_INDENT_2)


@dataclass
class ReplayReport:
    documents: int = 0
    events: int = 0
    archivable: int = 0
    skipped: int = 0
    still_failing: int = 0
    batches: list[str] = field(default_factory=list)
    partitions: dict[str, set[str]] = field(default_factory=dict)  # type -> days landed
    written: list[str] = field(default_factory=list)  # error documents (re)written
    deleted: list[str] = field(default_factory=list)  # error documents removed

    def touched(self) -> dict[str, list[str]]:
        return {t: sorted(days) for t, days in sorted(self.partitions.items())}


def error_keys(archive: Archive) -> list[str]:
    """The error documents, oldest first (their names start with their time)."""
    prefix = archive.layout.errors_prefix()
    return sorted(
        key
        for key in archive.bucket.keys(prefix)
        if key.endswith(".json") and not key[len(prefix) :].startswith(("_", "."))
    )


@dataclass
class _Decoded:
    document: ErrorDocument
    passing: list[int]  # indexes of events that now pass
    dropped: list[int]  # indexes of events of item types not archived
    failing: dict[str, list[int]]  # current message -> indexes of events that still fail


def _decode(document: ErrorDocument, window: PartitionWindow) -> _Decoded:
    decoded = _Decoded(document, [], [], {})
    for index in range(len(document.events)):
        change = document.change(index)
        result = decode_change(change.data, change.shard, change.seq, window)
        if type(result) is Archivable:
            decoded.passing.append(index)
        elif type(result) is Rejected:
            decoded.failing.setdefault(result.message, []).append(index)
        else:
            decoded.dropped.append(index)
    return decoded


def replay_batch_name(decoded: list[_Decoded]) -> str:
    """From the documents' keys and the contents of the events landed: a repeat of the same
    replay gives the same name; landing other events (after another fix) gives another."""
    lines = sorted(
        f"{d.document.key}\t{hashlib.sha256(d.document.events[i].encode()).hexdigest()}"
        for d in decoded
        for i in d.passing
    )
    digest = hashlib.sha256("\n".join(lines).encode()).hexdigest()[:20]
    stamps = [_compact_time(d.document.timestamp) for d in decoded if d.passing]
    stamps = [s for s in stamps if s]
    # Filed under the day of its newest error, like the batch those errors came with.
    return f"{max(stamps)}-replay-{digest}" if stamps else f"replay-{digest}"


def _compact_time(timestamp: str) -> str | None:
    try:
        return datetime.fromisoformat(timestamp).strftime("%Y%m%dT%H%M%SZ")
    except (TypeError, ValueError):
        return None


def split_key(layout: Layout, document: ErrorDocument, message: str) -> str:
    """Where the events of a document that now fail for another reason go."""
    name = uuid.uuid5(_SPLIT_NAMESPACE, f"{document.key}\n{message}")
    return layout.error_key(document.timestamp, str(name))


def replay_errors(
    archive: Archive,
    window: PartitionWindow,
    *,
    events_per_batch: int = DEFAULT_EVENTS_PER_BATCH,
    max_documents: int | None = None,
    dry_run: bool = False,
    log: logging.Logger | None = None,
) -> ReplayReport:
    """Replay every error document (the oldest `max_documents`, if given).

    Documents are handled in chunks of about `events_per_batch` events: one landed batch per
    chunk, then that chunk's documents rewritten. `dry_run` decodes and counts, writes nothing.
    """
    log = log or _log
    report = ReplayReport()
    keys = error_keys(archive)
    if max_documents:
        keys = keys[:max_documents]
    chunk: list[_Decoded] = []
    size = 0
    for key, body in _read_all(archive, keys):
        if body is None:
            continue  # removed since the listing (another replay)
        try:
            document = ErrorDocument.parse(key, body)
        except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
            log.warning("error document %s is not readable, left alone: %s", key, exc)
            continue
        decoded = _decode(document, window)
        report.documents += 1
        report.events += len(document.events)
        report.archivable += len(decoded.passing)
        report.skipped += len(decoded.dropped)
        report.still_failing += sum(len(v) for v in decoded.failing.values())
        chunk.append(decoded)
        size += len(document.events)
        if size >= events_per_batch:
            _land_then_rewrite(archive, window, chunk, report, dry_run, log)
            chunk, size = [], 0
    if chunk:
        _land_then_rewrite(archive, window, chunk, report, dry_run, log)
    return report


def _read_all(archive: Archive, keys: list[str], window: int = 64):
    """(key, body or None) in key order, read `window` at a time in parallel."""
    with ThreadPoolExecutor(_READ_THREADS) as pool:
        for start in range(0, len(keys), window):
            part = keys[start : start + window]
            yield from zip(part, pool.map(archive.bucket.get_or_none, part), strict=True)


def _land_then_rewrite(archive, window, chunk, report, dry_run, log) -> None:
    if dry_run:
        return
    passing = [d for d in chunk if d.passing]
    if passing:
        batch = replay_batch_name(passing)
        changes = [d.document.change(i) for d in passing for i in d.passing]
        summary = land_batch(archive, REPLAY_SOURCE, batch, changes, window)
        report.batches.append(batch)
        for record_type, days in summary.partitions().items():
            report.partitions.setdefault(record_type, set()).update(days)
        log.info("replay batch %s: %d changes landed", batch, len(changes))
    # Only now: rewrite what still fails, then delete what was replayed in full.
    writes: list[tuple[str, bytes]] = []
    deletes: list[str] = []
    for decoded in chunk:
        document = decoded.document
        unchanged = not decoded.passing and not decoded.dropped
        if unchanged and set(decoded.failing) == {document.message}:
            continue
        for message, indexes in decoded.failing.items():
            if message == document.message:
                key = document.key
            else:
                key = split_key(archive.layout, document, message)
            writes.append((key, document.body(indexes, message)))
        if document.message not in decoded.failing:
            deletes.append(document.key)
    for key, body in writes:
        archive.bucket.put(key, body, "application/json")
    if deletes:
        archive.bucket.delete(deletes)
    report.written += [key for key, _ in writes]
    report.deleted += deletes
