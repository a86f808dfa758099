"""The data files of one partition of one format, and the landed batches each one holds.

Every data file is `part-{digest}.{fmt}`, the digest naming the set of landed batches whose
changes it holds, with a sidecar `_covers-part-{digest}.json` listing them. A file's records
are derived from those batches' landing objects alone, so a name always stands for the same
records, whoever writes it. Landing holds each change once (see `storage.recent`), so a
partition holds each change once in a format exactly when its files' batch sets do not
overlap. The rules that keep it so, whatever order writers finish in:

1. Commit: a writer puts the sidecar, then the data. A file counts (is *committed*) once both
   exist; a sidecar alone is a write in flight, or one that died.
2. Subsumed: a committed file whose batches another committed file holds as well is removed
   (data first, then sidecar), once the holding file is settled: by its own writer, right
   after that writer's file passed rule 3, or by any writer once the holding file is older
   than ABANDONED_AFTER (its writer settled it or died). A merge or a rebuild replaces its
   inputs this way. Until then a subsumed file counts for nothing (it is not planned on, and
   its rows are not the partition's), but it stays: the holding file may yet be withdrawn by
   rule 3, and its batches must still be held somewhere when it is.
3. Conflict: after its write, a writer lists the partition again. If another committed file
   shares batches with its file but holds some the writer's does not, the two crossed: the
   writer removes its own file and plans again from the new listing. (A file that holds all of
   the writer's batches makes the writer's file subsumed: removed, and nothing to plan.)
4. Tangle: files that share batches without one holding the other (left by a writer that died
   between its write and rule 3) are merged into one by the next writer.

Names starting with `_` are not data: Athena never reads sidecars.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import orjson

from demand_assets.storage.archive import Archive
from demand_assets.storage.layout import SIDECAR_PREFIX

PART_PREFIX = "part-"
# A sidecar without data (or data without a sidecar) older than this is a write that died.
ABANDONED_AFTER = timedelta(hours=1)


def file_name(batches: Iterable[str]) -> str:
    digest = hashlib.sha256("\n".join(sorted(set(batches))).encode()).hexdigest()
    return f"{PART_PREFIX}{digest[:24]}"


@dataclass(frozen=True)
class DataFile:
    name: str
    batches: frozenset[str]
    records: int
    size: int = 0  # bytes of the data object
    modified: datetime | None = None  # when the data object was written (None: just now)


# -- the rules, on listings ------------------------------------------------------------------


def subsumed(files: Iterable[DataFile]) -> set[str]:
    """Names of files whose batches another file holds too (rule 2)."""
    files = list(files)
    return {
        f.name for f in files if any(o.name != f.name and f.batches <= o.batches for o in files)
    }


def removable(files: Iterable[DataFile], mine: Iterable[str] = (), now=None) -> set[str]:
    """Names of the subsumed files that may be removed now (rule 2): those held by one of
    `mine` (files that just passed rule 3) or by a file older than ABANDONED_AFTER."""
    files, mine = list(files), set(mine)
    now = now or datetime.now(UTC)

    def settled(f: DataFile) -> bool:
        return f.name in mine or (f.modified is not None and now - f.modified > ABANDONED_AFTER)

    return {
        f.name
        for f in files
        if f.name not in mine
        and any(o.name != f.name and f.batches <= o.batches and settled(o) for o in files)
    }


def tangles(files: Iterable[DataFile]) -> list[set[str]]:
    """Groups of files linked by shared batches with neither holding the other (rule 4)."""
    files = [f for f in files]
    linked: dict[str, set[str]] = {f.name: set() for f in files}
    for i, a in enumerate(files):
        for b in files[i + 1 :]:
            if a.batches & b.batches and not (a.batches <= b.batches or b.batches <= a.batches):
                linked[a.name].add(b.name)
                linked[b.name].add(a.name)
    groups, seen = [], set()
    for name, neighbours in linked.items():
        if not neighbours or name in seen:
            continue
        group, todo = set(), [name]
        while todo:
            current = todo.pop()
            if current not in group:
                group.add(current)
                todo.extend(linked[current])
        seen |= group
        groups.append(group)
    return groups


def crossing(mine: DataFile, files: Iterable[DataFile]) -> list[DataFile]:
    """Other files that share batches with `mine` and hold some it does not (rule 3)."""
    return [
        f
        for f in files
        if f.name != mine.name and f.batches & mine.batches and not f.batches <= mine.batches
    ]


def held(files: Iterable[DataFile]) -> set[str]:
    return set().union(*(f.batches for f in files))


# -- one partition in S3 ---------------------------------------------------------------------


@dataclass
class Listing:
    files: dict[str, DataFile] = field(default_factory=dict)  # committed
    abandoned: list[str] = field(default_factory=list)  # keys of writes that died long ago

    @property
    def live(self) -> list[DataFile]:
        """Committed files not subsumed by another."""
        gone = subsumed(self.files.values())
        return [f for f in self.files.values() if f.name not in gone]


@dataclass(frozen=True)
class PartitionFiles:
    archive: Archive
    fmt: str
    record_type: str
    day: str

    @property
    def prefix(self) -> str:
        return self.archive.layout.partition_prefix(self.fmt, self.record_type, self.day)

    def key(self, name: str) -> str:
        return self.archive.layout.data_key(self.fmt, self.record_type, self.day, name)

    def sidecar_key(self, name: str) -> str:
        return self.archive.layout.sidecar_key(self.fmt, self.record_type, self.day, name)

    def listing(
        self, known: dict[str, DataFile] | None = None, objects: list[dict] | None = None
    ) -> Listing:
        """The committed files; sidecars of names in `known` are not read again (a name always
        stands for the same batches). `objects`: the partition's objects as a listing taken
        just now returned them (`list_partitions`), instead of listing again."""
        data, sidecars, now = {}, {}, datetime.now(UTC)
        suffix = f".{self.fmt}"
        if objects is None:
            objects = self.archive.bucket.list(self.prefix)
        for obj in objects:
            leaf = obj["Key"][len(self.prefix) :]
            if leaf.startswith(SIDECAR_PREFIX) and leaf.endswith(".json"):
                sidecars[leaf[len(SIDECAR_PREFIX) : -len(".json")]] = obj
            elif leaf.endswith(suffix) and not leaf.startswith(("_", ".")):
                data[leaf[: -len(suffix)]] = obj
        listing = Listing()
        for name in data.keys() & sidecars.keys():
            cached = (known or {}).get(name)
            if cached is not None:
                listing.files[name] = DataFile(
                    name,
                    cached.batches,
                    cached.records,
                    data[name]["Size"],
                    data[name].get("LastModified"),
                )
                continue
            body = self.archive.bucket.get_or_none(self.sidecar_key(name))
            if body is None:
                continue  # removed since the listing
            sidecar = orjson.loads(body)
            listing.files[name] = DataFile(
                name,
                frozenset(sidecar["batches"]),
                sidecar["records"],
                data[name]["Size"],
                data[name].get("LastModified"),
            )
        unpaired = [sidecars[n] for n in sidecars.keys() - data.keys()]
        unpaired += [data[n] for n in data.keys() - sidecars.keys()]
        for obj in unpaired:
            if now - obj["LastModified"] > ABANDONED_AFTER:
                listing.abandoned.append(obj["Key"])
        return listing

    def commit(
        self, name: str, batches: frozenset[str], records: int, path: str, size: int
    ) -> DataFile:
        """Rule 1: the sidecar, then the data."""
        sidecar = {"batches": sorted(batches), "records": records, "file": f"{name}.{self.fmt}"}
        self.archive.bucket.put(self.sidecar_key(name), orjson.dumps(sidecar), "application/json")
        self.archive.bucket.upload_file(self.key(name), path, size)
        return DataFile(name, batches, records, size)

    def remove(self, names: Iterable[str]) -> list[str]:
        """Data first, then sidecars: a file never counts without its data."""
        names = sorted(set(names))
        if names:
            self.archive.bucket.delete(self.key(n) for n in names)
            self.archive.bucket.delete(self.sidecar_key(n) for n in names)
        return [self.key(n) for n in names]


def list_partitions(archive: Archive, fmt: str, record_type: str, days: Iterable[str]) -> dict:
    """day -> the objects of that partition of `fmt`, every day of `days` listed now, with
    one listing per month for the months that two or more of them share (a month's
    partitions hold a few hundred objects at most: one page), one per day otherwise."""
    layout, days = archive.layout, sorted(set(days))
    months: dict[str, list[str]] = {}
    for day in days:
        months.setdefault(day[:7], []).append(day)
    out: dict[str, list[dict]] = {day: [] for day in days}
    for month_days in months.values():
        if len(month_days) == 1:
            day = month_days[0]
            out[day] = list(archive.bucket.list(layout.partition_prefix(fmt, record_type, day)))
            continue
        prefixes = {layout.partition_prefix(fmt, record_type, d): d for d in month_days}
        for obj in archive.bucket.list(layout.month_prefix(fmt, record_type, month_days[0])):
            day = prefixes.get(obj["Key"][: obj["Key"].rfind("/") + 1])
            if day is not None:
                out[day].append(obj)
    return out
