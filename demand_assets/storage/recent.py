"""The changes landed recently, by eventID: what keeps a re-delivered change from landing twice.

Kinesis Data Streams for DynamoDB may deliver a change again in a later batch: the same
eventID (and the same change time) under a new sequence number. Every batch stores the digests
of its eventIDs next to its summary (`landing/_batches/{day}/{batch}.ids`: sorted 16-byte
BLAKE2b digests, 16 bytes a change). Before a tick lands its changes it drops those whose
eventID a batch of the last `window` already landed. Every archived file is derived from
landed batches only, so a change landed once is archived once in each format.

The digests of the window are kept in the process between ticks (the sensor's process is long
lived) and checked against S3 at every tick: one listing of the window's `.ids` keys, a read of
those not yet known, and what has gone (a reset emulator, a deleted batch) is forgotten. The
cost of a tick is bounded by the window's traffic, not by the day's nor by a partition's.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import numpy as np

from demand_assets.storage.archive import Archive
from demand_assets.storage.layout import name_of

DEFAULT_WINDOW = timedelta(hours=1)
_DIGEST = np.dtype("S16")
_READ_THREADS = 16


def digest(event_id: str) -> bytes:
    return hashlib.blake2b(event_id.encode(), digest_size=16).digest()


def encode_digests(digests: Iterable[bytes]) -> bytes:
    return np.unique(np.array(list(digests), dtype=_DIGEST)).tobytes()


def decode_digests(blob: bytes) -> np.ndarray:
    return np.frombuffer(blob, dtype=_DIGEST)


class RecentChanges:
    """The eventID digests of the batches that arrived within `window` of now."""

    def __init__(
        self,
        archive: Archive,
        window: timedelta = DEFAULT_WINDOW,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ):
        self.archive, self.window, self.clock = archive, window, clock
        self._batches: dict[str, np.ndarray] = {}

    def refresh(self) -> int:
        """Bring the window in line with S3; returns how many batches it holds."""
        listed = self._listed()
        for gone in set(self._batches) - set(listed):
            del self._batches[gone]
        missing = [name for name in listed if name not in self._batches]
        if missing:
            with ThreadPoolExecutor(_READ_THREADS) as pool:
                bodies = pool.map(
                    lambda name: self.archive.bucket.get_or_none(listed[name]), missing
                )
                for name, body in zip(missing, bodies, strict=True):
                    if body is not None:
                        self._batches[name] = decode_digests(body)
        return len(self._batches)

    def _listed(self) -> dict[str, str]:
        """batch name -> `.ids` key, for the batches that arrived within the window."""
        now = self.clock()
        start = now - self.window
        layout, found = self.archive.layout, {}
        day = start.date()
        while day <= now.date():
            prefix = layout.batch_summaries_prefix(day.isoformat())
            after = f"{prefix}{start:%Y%m%dT%H%M%S}" if day == start.date() else None
            for key in self.archive.bucket.keys(prefix, start_after=after):
                if key.endswith(".ids"):
                    found[name_of(key)] = key
            day += timedelta(days=1)
        return found

    def landed(self, digests: list[bytes], excluding: str | None = None) -> set[bytes]:
        """Which of `digests` a batch of the window (other than `excluding`) already landed."""
        if not digests or not self._batches:
            return set()
        wanted = np.array(digests, dtype=_DIGEST)
        hit = np.zeros(len(wanted), dtype=bool)
        for name, known in self._batches.items():
            if name == excluding or not len(known):
                continue
            at = np.minimum(np.searchsorted(known, wanted), len(known) - 1)
            hit |= known[at] == wanted
        return {d for d, h in zip(digests, hit, strict=True) if h}

    def add(self, batch: str, blob: bytes) -> None:
        """A batch this process just landed (its `.ids` body)."""
        self._batches[batch] = decode_digests(blob)


_windows: dict[tuple[int, str, str, timedelta], RecentChanges] = {}
_lock = threading.Lock()


def recent_changes(archive: Archive, window: timedelta = DEFAULT_WINDOW) -> RecentChanges:
    """The process's window for this archive (kept between ticks), refreshed from S3."""
    key = (id(archive.bucket.client), archive.bucket.name, archive.layout.prefix, window)
    with _lock:
        recent = _windows.get(key)
        if recent is None:
            recent = _windows[key] = RecentChanges(archive, window)
    recent.refresh()
    return recent
