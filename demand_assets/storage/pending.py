"""Batches landed and not yet archived, per record type: the work of the next archive run.

Landing a batch marks it pending for every type it holds changes of
(`landing/_pending/{type}/{batch}.json`, listing the partition dates and their changes), after
its landing objects and before its summary. An archive run takes the oldest pending batches of
a type, archives them, and clears their marks only when every partition is written. A run that
fails, is killed or cancelled clears nothing: the next run archives the same batches again,
which the partition files' coverage makes a no-op where a file already holds them.
"""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import orjson

from demand_assets.storage.archive import Archive
from demand_assets.storage.layout import name_of

_READ_THREADS = 16


@dataclass
class Pending:
    """The pending batches of one record type and the partitions they touch."""

    record_type: str
    batches: dict[str, dict[str, int]] = field(default_factory=dict)  # batch -> {day: changes}
    arrivals: dict[str, str] = field(default_factory=dict)  # batch -> its last arrival

    def days(self) -> dict[str, set[str]]:
        """partition date -> the batches with changes for it."""
        out: dict[str, set[str]] = {}
        for batch, days in self.batches.items():
            for day in days:
                out.setdefault(day, set()).add(batch)
        return dict(sorted(out.items()))

    @property
    def changes(self) -> int:
        return sum(n for days in self.batches.values() for n in days.values())


def mark_pending(
    archive: Archive, batch: str, touched: dict[str, dict[str, int]], arrival: str | None
) -> None:
    """`touched`: record type -> {partition date: changes landed}; `arrival`: the batch's last."""
    for record_type, days in touched.items():
        archive.bucket.put(
            archive.layout.pending_key(record_type, batch),
            orjson.dumps({"days": days, "arrival": arrival}),
            "application/json",
        )


def pending_batches(archive: Archive, record_type: str, limit: int | None = None) -> Pending:
    """The oldest `limit` pending batches of a type (names sort by arrival)."""
    keys = archive.bucket.keys(archive.layout.pending_prefix(record_type))
    keys = [k for k in keys if k.endswith(".json")][:limit]
    pending = Pending(record_type)
    with ThreadPoolExecutor(_READ_THREADS) as pool:
        for key, body in zip(keys, pool.map(archive.bucket.get_or_none, keys), strict=True):
            if body is not None:  # cleared since the listing
                mark = orjson.loads(body)
                pending.batches[name_of(key)] = mark["days"]
                if mark.get("arrival"):
                    pending.arrivals[name_of(key)] = mark["arrival"]
    return pending


def pending_names(archive: Archive, record_type: str) -> list[str]:
    """Names of the pending batches of a type, oldest first (one listing, no reads)."""
    keys = archive.bucket.keys(archive.layout.pending_prefix(record_type))
    return [name_of(k) for k in keys if k.endswith(".json")]


def clear_pending(archive: Archive, record_type: str, batches: Iterable[str]) -> None:
    archive.bucket.delete(archive.layout.pending_key(record_type, b) for b in batches)


def oldest_pending(archive: Archive, record_types: Iterable[str]) -> str | None:
    """The oldest batch pending for any of the types (one short listing per type)."""
    names = []
    for record_type in record_types:
        keys = archive.bucket.keys(archive.layout.pending_prefix(record_type), limit=1)
        names += [name_of(k) for k in keys]
    return min(names, default=None)
