"""An archive in memory for the tests of the coverage rules, and a scheduler that interleaves
writers of one partition call by call.

`MemoryBucket` stands for S3 as `storage.s3.Bucket` uses it: every call atomic and strongly
consistent (as S3 is), listings in key order, `LastModified` the time of the write (`age`
moves it back, as if time had passed). A `gate` sees each call first: the `Interleaver` uses
it to let one writer's call through at a time, in an order the test chooses, and to kill a
writer at a call (before it reaches the bucket, or after), as a SIGKILL would. The
production code runs unchanged on top of it.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from io import BytesIO

import fastavro
import pyarrow.parquet as pq

from demand_assets.records.change import Change
from demand_assets.storage.archive import Archive
from demand_assets.storage.landing import encode_landing
from demand_assets.storage.layout import Layout
from demand_assets.storage.partition_files import PartitionFiles
from demand_assets.storage.partition_write import archive_partition
from demand_assets_tests.builders import WINDOW, change, valid_item

DAY = "2026-11-20"
GO, KILL_BEFORE, KILL_AFTER = "go", "kill-before", "kill-after"


class Killed(BaseException):
    """The writer's process died at this call (not an Exception: nothing catches it)."""


class MemoryBucket:
    def __init__(self, name: str = "memory"):
        self.name = name
        self.objects: dict[str, tuple[bytes, datetime]] = {}
        self.gate: Callable[[str, str], str] | None = None
        self.history: list[tuple[str, tuple[str, ...]]] = []  # (op, keys) of every call made
        self._lock = threading.Lock()

    def _call(self, op: str, key: str, action: Callable, keys: tuple[str, ...] = ()):
        decision = self.gate(op, key) if self.gate is not None else GO
        if decision == KILL_BEFORE:
            raise Killed(f"{op} {key}")
        with self._lock:
            self.history.append((op, keys or (key,)))
            result = action()
        if decision == KILL_AFTER:
            raise Killed(f"after {op} {key}")
        return result

    def put(self, key: str, body: bytes, content_type: str = "") -> None:
        self._call("put", key, lambda: self._store(key, bytes(body)))

    def upload_file(self, key: str, path: str, size: int) -> None:
        with open(path, "rb") as source:
            body = source.read()
        assert len(body) == size
        self._call("put", key, lambda: self._store(key, body))

    def _store(self, key: str, body: bytes) -> None:
        self.objects[key] = (body, datetime.now(UTC))

    def age(self, delta: timedelta) -> None:
        """As if `delta` had passed since every object was written."""
        with self._lock:
            self.objects = {k: (body, at - delta) for k, (body, at) in self.objects.items()}

    def get(self, key: str) -> bytes:
        body = self.get_or_none(key)
        if body is None:
            raise KeyError(key)
        return body

    def get_or_none(self, key: str) -> bytes | None:
        return self._call("get", key, lambda: self.objects.get(key, (None,))[0])

    def exists(self, key: str) -> bool:
        return self._call("head", key, lambda: key in self.objects)

    def list(self, prefix: str, start_after: str | None = None) -> Iterator[dict]:
        def listing():
            return [
                {"Key": k, "Size": len(body), "LastModified": modified}
                for k, (body, modified) in sorted(self.objects.items())
                if k.startswith(prefix) and (start_after is None or k > start_after)
            ]

        return iter(self._call("list", prefix, listing))

    def keys(self, prefix: str, start_after: str | None = None, limit: int | None = None):
        return [o["Key"] for o in self.list(prefix, start_after)][:limit]

    def prefixes(self, prefix: str) -> list[str]:
        keys = self.keys(prefix)
        return sorted(
            {
                prefix + k[len(prefix) :].split("/", 1)[0] + "/"
                for k in keys
                if "/" in k[len(prefix) :]
            }
        )

    def delete(self, keys: Iterable[str]) -> None:
        keys = list(keys)
        if keys:
            self._call(
                "delete", keys[0], lambda: [self.objects.pop(k, None) for k in keys], tuple(keys)
            )


def memory_archive() -> Archive:
    return Archive(MemoryBucket(), Layout("demand"))


# -- batches and what the partition holds -----------------------------------------------------


def batch_changes(name: str, n: int) -> list[Change]:
    """n demand changes of DAY for batch `name`, each its own eventID (`{name}-{i}`)."""
    return [
        Change(
            "shardId-000000000000",
            str(i),
            "2026-11-20T12:00:00.000Z",
            change(
                "INSERT",
                valid_item(
                    "demand",
                    pk=f"fan#{name}-{i}",
                    sk=f"demand#e-{name}#s-{i}",
                    requestedDateTime=f"{DAY}T10:00:00.000Z",
                    date={"requested": f"{DAY}T10:00:00.000Z"},
                ),
                change_time_ms=1_795_000_000_000 + i,
                event_id=f"{name}-{i}",
            ),
        )
        for i in range(n)
    ]


def land(archive: Archive, name: str, n: int) -> set[str]:
    """Land batch `name` (n changes of DAY) as a sensor tick does; its eventIDs."""
    archive.bucket.put(
        archive.layout.landing_key("demand", DAY, name), encode_landing(batch_changes(name, n))
    )
    return {f"{name}-{i}" for i in range(n)}


def data_keys(archive: Archive, fmt: str) -> list[str]:
    """Every data object of the day's partition, as Athena reads it (sidecars are not data)."""
    prefix = archive.layout.partition_prefix(fmt, "demand", DAY)
    return [
        k
        for k in archive.bucket.objects
        if k.startswith(prefix) and not k[len(prefix) :].startswith("_") and k.endswith(f".{fmt}")
    ]


def sidecar_of(key: str) -> str:
    head, leaf = key.rsplit("/", 1)
    return f"{head}/_covers-{leaf.rsplit('.', 1)[0]}.json"


def event_ids(archive: Archive, fmt: str, committed_only: bool = False) -> Counter:
    """eventID -> rows holding it, over the partition's data objects (all, or only those with
    their sidecar), each read with fastavro or pyarrow."""
    counts: Counter = Counter()
    for key in data_keys(archive, fmt):
        if committed_only and sidecar_of(key) not in archive.bucket.objects:
            continue
        body = archive.bucket.objects[key][0]
        if fmt == "avro":
            records = list(fastavro.reader(BytesIO(body)))
        else:
            records = pq.read_table(BytesIO(body)).to_pylist()
        counts.update(r["provenance"]["eventID"] for r in records)
    return counts


# -- writers, one call at a time --------------------------------------------------------------


class Interleaver:
    """Runs writers in threads, letting one bucket call through at a time: `choose` picks,
    among the writers waiting at a call, whose call goes next and what happens to it (GO,
    KILL_BEFORE, KILL_AFTER). Calls from other threads (the read-ahead pool that fetches
    landing objects) pass freely: they only read objects that never change."""

    def __init__(self, bucket: MemoryBucket):
        self.bucket = bucket
        self._cond = threading.Condition()
        self._waiting: dict[int, tuple[str, str]] = {}
        self._grants: dict[int, str] = {}
        self._alive: set[int] = set()
        self._local = threading.local()  # .writer in a writer's own thread, not its pool's
        self.outcomes: dict[int, tuple[str, object]] = {}
        self.calls: list[tuple[int, str, str, str]] = []  # writer, op, key, decision

    def _gate(self, op: str, key: str) -> str:
        writer = getattr(self._local, "writer", None)
        if writer is None:
            return GO
        with self._cond:
            self._waiting[writer] = (op, key)
            self._cond.notify_all()
            self._cond.wait_for(lambda: writer in self._grants)
            return self._grants.pop(writer)

    def run(
        self,
        writers: list[Callable[[], object]],
        choose: Callable[[list[tuple[int, str, str]]], tuple[int, str]],
        max_calls: int = 3000,
    ) -> dict[int, tuple[str, object]]:
        """Each writer's outcome: ("ok", result), ("killed", call) or ("error", exception)."""
        self.bucket.gate = self._gate
        self._alive = set(range(len(writers)))
        threads = [
            threading.Thread(target=self._writer, args=(i, w), daemon=True)
            for i, w in enumerate(writers)
        ]
        for thread in threads:
            thread.start()
        try:
            for _ in range(max_calls):
                with self._cond:
                    if not self._cond.wait_for(self._all_waiting, timeout=60):
                        raise AssertionError("a writer is stuck outside its bucket calls")
                    if not self._alive:
                        break
                    options = sorted((w, op, key) for w, (op, key) in self._waiting.items())
                writer, decision = choose(options)
                self._grant(writer, decision)
            else:
                raise AssertionError(f"the writers made more than {max_calls} calls")
        finally:
            self._kill_the_rest()
            for thread in threads:
                thread.join(timeout=60)
            self.bucket.gate = None
        return self.outcomes

    def _all_waiting(self) -> bool:
        return all(w in self._waiting for w in self._alive)

    def _grant(self, writer: int, decision: str) -> None:
        with self._cond:
            op, key = self._waiting.pop(writer)
            self.calls.append((writer, op, key, decision))
            self._grants[writer] = decision
            self._cond.notify_all()

    def _kill_the_rest(self) -> None:
        while True:
            with self._cond:
                if not self._cond.wait_for(self._all_waiting, timeout=60) or not self._alive:
                    return
                writer = min(self._waiting)
            self._grant(writer, KILL_BEFORE)

    def _writer(self, index: int, write: Callable[[], object]) -> None:
        self._local.writer = index
        try:
            self.outcomes[index] = ("ok", write())
        except Killed as killed:
            self.outcomes[index] = ("killed", str(killed))
        except Exception as exc:  # noqa: BLE001 - reported to the test
            self.outcomes[index] = ("error", exc)
        finally:
            with self._cond:
                self._alive.discard(index)
                self._waiting.pop(index, None)
                self._cond.notify_all()


# -- scripted writers of one partition --------------------------------------------------------

FORMATS = ("avro", "parquet")


def writer(archive, batches: dict[str, int] | None, lands: dict[str, int] | None = None):
    """An archive run's write of `batches` into the day (None: a rebuild of the day), landing
    `lands` first (a batch that lands while the other writer is at work)."""

    def write():
        for name, n in (lands or {}).items():
            land(archive, name, n)
        return archive_partition(archive, "demand", DAY, batches, WINDOW, sleep=lambda _: None)

    return write


def is_data_put(op: str, key: str) -> bool:
    return op == "put" and "/part-" in key


def is_delete(op: str, key: str) -> bool:
    return op == "delete" and "/partition_date=" in key and "/landing/" not in key


def is_list(op: str, key: str) -> bool:
    return op == "list" and "/partition_date=" in key and "/landing/" not in key


def script(*steps):
    """A chooser for `Interleaver.run`: each step is (writer, until, what): the writer's calls
    go through until it waits at a call `until(op, key)` matches (None: until it ends); then
    that call is paused (`what` "pause": the next step goes on from there) or made with
    `what` (GO, KILL_BEFORE, KILL_AFTER) and the step is done. When the steps are done, or the
    step's writer has ended, the first writer waiting goes on."""
    steps = list(steps)

    def choose(options):
        while steps:
            who, until, what = steps[0]
            mine = [o for o in options if o[0] == who]
            if not mine:  # it has ended
                steps.pop(0)
                continue
            _, op, key = mine[0]
            if until is not None and until(op, key):
                steps.pop(0)
                if what == "pause":
                    continue
                return who, what
            return who, GO
        return options[0][0], GO

    return choose


def committed(archive, fmt: str) -> dict[str, frozenset[str]]:
    listing = PartitionFiles(archive, fmt, "demand", DAY).listing()
    return {name: file.batches for name, file in listing.files.items()}


def four_files(archive) -> dict[str, set[str]]:
    """b0..b3 landed and archived one by one (1, 16, 1, 1 changes): four files, of which
    the next small batch's run merges the three small ones (FANOUT 4). batch -> eventIDs."""
    ids = {}
    for name, n in (("b0", 1), ("b1", 16), ("b2", 1), ("b3", 1)):
        ids[name] = land(archive, name, n)
        archive_partition(archive, "demand", DAY, {name: n}, WINDOW)
    for fmt in FORMATS:
        assert sorted(map(sorted, committed(archive, fmt).values())) == [
            ["b0"],
            ["b1"],
            ["b2"],
            ["b3"],
        ]
    return ids


def once(archive, expected: set[str]) -> None:
    """Every data object read: each of `expected` exactly once in each format, nothing else."""
    for fmt in FORMATS:
        counts = event_ids(archive, fmt)
        lost = sorted(set(expected) - set(counts))
        doubled = sorted(e for e, n in counts.items() if n > 1)
        stray = sorted(set(counts) - set(expected))
        assert not (lost or doubled or stray), f"{fmt}: lost {lost}, doubled {doubled}, {stray}"
