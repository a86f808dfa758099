"""Which partitions a day's batches touched: what the daily compaction rebuilds.

Records are partitioned by their own date, not by when they arrived: a day of traffic writes
to that day's partition, to older ones (late changes to old demand) and to partitions months
ahead (sales). Batch summaries are filed under the day their batch arrived
(`landing/_batches/{YYYY-MM-DD}/`), so one listing finds every batch of a day and their
summaries name every partition those batches touched.
"""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from demand_assets.storage.archive import Archive
from demand_assets.storage.batches import BatchSummary

_READ_THREADS = 16


@dataclass
class Arrivals:
    """The batches that arrived on one day, per record type and partition they touched."""

    day: str
    batches: dict[str, dict[str, set[str]]] = field(default_factory=dict)  # type -> day -> names

    def days(self, record_type: str) -> list[str]:
        return sorted(self.batches.get(record_type, {}))

    def digest(self, record_type: str, first: str, last: str) -> str:
        """Of the batches that touched the type's days in [first, last]: it names what a
        compaction of them covers, so new batches for those days (a re-read after a rewind)
        give a new digest, and the same batches the same one."""
        names = sorted(
            {
                name
                for day, batch_names in self.batches.get(record_type, {}).items()
                if first <= day <= last
                for name in batch_names
            }
        )
        return hashlib.sha256("\n".join(names).encode()).hexdigest()[:12]


def arrivals_on(archive: Archive, arrival_day: str) -> Arrivals:
    """What the batches that arrived on `arrival_day` touched."""
    prefix = archive.layout.batch_summaries_prefix(arrival_day)
    keys = [k for k in archive.bucket.keys(prefix) if k.endswith(".json")]
    arrivals = Arrivals(arrival_day)
    with ThreadPoolExecutor(_READ_THREADS) as pool:
        for body in pool.map(archive.bucket.get, keys):
            summary = BatchSummary.from_json(body)
            for record_type, days in summary.partitions().items():
                by_day = arrivals.batches.setdefault(record_type, {})
                for day in days:
                    by_day.setdefault(day, set()).add(summary.batch)
    return arrivals
