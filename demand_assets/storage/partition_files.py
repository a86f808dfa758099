"""The data files of one partition of one format, and which batches each covers.

A partition holds two kinds of data file:
- `{batch}.{fmt}`: the changes of one landed batch, written by a sensor-launched run;
- `compacted-{digest}.{fmt}`: the whole partition rebuilt from its landing objects, with a
  sidecar `_covers-compacted-{digest}.json` listing the batches it covers.

Rules that keep every change exactly once per format, whatever order runs finish in:
1. A batch file is not written when a compacted file already covers its batch, and is removed
   when one turns out to cover it after writing (`write_batch`, `withdraw_if_covered`).
2. After a compacted file is written, every batch file it covers and every compacted file whose
   batches are a subset of another's are removed (`write_compacted` -> `settle`).
A rebuild first marks its day under the table's `_compactions/` (`compacted_days`), so a batch
run lists one prefix per table, not one per partition, to learn which days need rule 1.
Sidecars and markers start with `_`, so Athena never reads them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

import orjson

from demand_assets.storage.layout import Layout, batch_of
from demand_assets.storage.s3 import Bucket

COMPACTED_PREFIX = "compacted-"
SIDECAR_PREFIX = "_covers-"

Writer = Callable[[str], int]  # uploads the file to the given key, returns bytes written


def compacted_days(bucket: Bucket, layout: Layout, fmt: str, record_type: str) -> set[str]:
    """The days of a table that have, or are getting, a compacted file."""
    prefix = layout.compactions_prefix(fmt, record_type)
    return {key[len(prefix) :] for key in bucket.keys(prefix)}


def compacted_name(batches: list[str]) -> str:
    digest = hashlib.sha256("\n".join(sorted(batches)).encode()).hexdigest()
    return f"{COMPACTED_PREFIX}{digest[:20]}"


@dataclass
class PartitionFiles:
    bucket: Bucket
    layout: Layout
    fmt: str
    record_type: str
    day: str

    @property
    def prefix(self) -> str:
        return self.layout.partition_prefix(self.fmt, self.record_type, self.day)

    def key(self, name: str) -> str:
        return self.layout.data_key(self.fmt, self.record_type, self.day, name)

    def _sidecar_key(self, name: str) -> str:
        return f"{self.prefix}{SIDECAR_PREFIX}{name}.json"

    def listing(self) -> tuple[dict[str, str], dict[str, set[str]]]:
        """(data file name -> key, compacted name -> batches it covers)."""
        data, covers = {}, {}
        suffix = f".{self.fmt}"
        for key in self.bucket.keys(self.prefix):
            leaf = key[len(self.prefix) :]
            if leaf.startswith(SIDECAR_PREFIX) and leaf.endswith(".json"):
                name = leaf[len(SIDECAR_PREFIX) : -len(".json")]
                body = self.bucket.get_or_none(key)
                if body is not None:
                    covers[name] = set(orjson.loads(body)["batches"])
            elif leaf.endswith(suffix) and not leaf.startswith(("_", ".")):
                data[batch_of(key)] = key
        # A compacted file counts only once both it and its sidecar exist.
        covers = {name: batches for name, batches in covers.items() if name in data}
        return data, covers

    def holds(self, batch: str) -> bool:
        """Whether a data file of this partition holds the batch's changes."""
        data, covers = self.listing()
        return batch in data or any(batch in batches for batches in covers.values())

    def covered(self, batch: str) -> bool:
        """Whether a compacted file's sidecar lists the batch (one small listing, usually empty)."""
        for key in self.bucket.keys(f"{self.prefix}{SIDECAR_PREFIX}"):
            body = self.bucket.get_or_none(key)
            if body is not None and batch in orjson.loads(body)["batches"]:
                return True
        return False

    def write_batch(self, batch: str, write: Writer, maybe_covered: bool = True) -> int | None:
        """Write one batch's file; None when a compacted file already covers the batch.

        `maybe_covered=False` (the day has no compaction marker) skips the look. The caller
        then calls `withdraw_if_covered` for the days marked once its writes are done.
        """
        if maybe_covered and self.covered(batch):
            return None
        return write(self.key(batch))

    def withdraw_if_covered(self, batch: str) -> bool:
        """Remove a batch file that a rebuild covered while it was written."""
        if not self.covered(batch):
            return False
        self.bucket.delete([self.key(batch)])
        return True

    def write_compacted(self, batches: list[str], write: Writer) -> tuple[str, int]:
        name = compacted_name(batches)
        marker = self.layout.compaction_marker_key(self.fmt, self.record_type, self.day)
        self.bucket.put(marker, b"", "text/plain")  # before the data: batch runs look here
        size = write(self.key(name))
        self.bucket.put(
            self._sidecar_key(name),
            orjson.dumps({"batches": sorted(batches), "file": f"{name}.{self.fmt}"}),
            "application/json",
        )
        self.settle()
        return name, size

    def settle(self) -> list[str]:
        """Remove files whose changes another file holds; returns the keys removed."""
        data, covers = self.listing()
        doomed = set()
        for name, batches in covers.items():
            for other, other_batches in covers.items():
                if (
                    other != name
                    and batches <= other_batches
                    and (batches != other_batches or name < other)
                ):
                    doomed.add(name)
        kept_covers = set().union(*(b for n, b in covers.items() if n not in doomed))
        doomed |= {name for name in data if name in kept_covers}
        keys = [data[name] for name in doomed]
        keys += [self._sidecar_key(name) for name in doomed if name in covers]
        if keys:
            self.bucket.delete(keys)
        return keys

    def data_keys(self) -> list[str]:
        data, _ = self.listing()
        return sorted(data.values())
