"""Read a Kinesis stream from per-shard checkpoints, bounded by records and time.

Every shard is read from its checkpoint (`AFTER_SEQUENCE_NUMBER`), or from the configured start
where it has none. After a reshard a parent is read to its end before its children start (the
children then start at `TRIM_HORIZON`), which keeps each key's changes in order. Throttling,
expired iterators and vanished shards are retried or skipped with a log line; they never lose
the reader's place: a checkpoint only moves past records that were returned.

A read can also be told where to stop (`until`: shard -> last sequence number): it then reads
exactly those records again, whatever time it takes, which is how a tick repeated after a
crash lands the same batch (`storage.intents`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from botocore.exceptions import ClientError

from demand_assets.aws import THROTTLED, error_code, is_server_error
from demand_assets.records.change import Change
from demand_assets.records.timestamps import format_instant
from demand_assets.stream.checkpoints import SHARD_END
from demand_assets.stream.get_records import parse_records_quickly

AT_TIMESTAMP = "AT_TIMESTAMP:"
# A repeated read (`until`) goes on past the tick's time bound, up to this.
REPEAT_SECONDS = 300.0


@dataclass
class ReadResult:
    records: list[Change] = field(default_factory=list)
    checkpoints: dict[str, str] = field(default_factory=dict)
    first_read: dict[str, str] = field(default_factory=dict)  # shard -> first sequence read
    millis_behind_latest: int = 0
    shards_read: int = 0
    retries: int = 0


@dataclass
class _Shard:
    shard_id: str
    parents: tuple[str, ...]
    ending_sequence: str | None
    iterator: str | None = None
    ended: bool = False  # closed and read to its end: children may start
    idle: bool = False  # nothing more to read in this tick
    server_errors: int = 0  # 5xx answers retried in this tick
    stop_at: str | None = None  # a repeated read: the last sequence number to read
    ends: bool = False  # a repeated read: the earlier read found the shard's end there


def _listed(listed: list[dict], checkpoints: dict[str, str]) -> dict[str, _Shard]:
    """The listed shards by id, with their parents; those checkpointed at their end ended."""
    shards = {
        s["ShardId"]: _Shard(
            s["ShardId"],
            tuple(p for p in (s.get("ParentShardId"), s.get("AdjacentParentShardId")) if p),
            s.get("SequenceNumberRange", {}).get("EndingSequenceNumber"),
        )
        for s in listed
    }
    for shard in shards.values():
        shard.ended = checkpoints.get(shard.shard_id) == SHARD_END
    return shards


def _bound_to_earlier_read(
    shards: dict[str, _Shard], result: ReadResult, until: dict[str, str], ends: frozenset[str]
) -> None:
    """A repeated read: each shard is read up to where the earlier read stopped (not at all if
    it did not read it), and is marked read to its end where the earlier read found it."""
    for shard in shards.values():
        shard.stop_at = until.get(shard.shard_id)
        if shard.stop_at is not None:
            shard.ends = shard.shard_id in ends
            continue
        shard.idle = True
        if shard.shard_id in ends:
            shard.ended = True
            result.checkpoints[shard.shard_id] = SHARD_END


def _check_read_again(result: ReadResult, until: dict[str, str], ends: frozenset[str]) -> None:
    """Raise `StreamChanged` unless a repeated read got every record the earlier one did."""
    wanted = {s: SHARD_END if s in ends else q for s, q in until.items()}
    short = {s: until[s] for s, q in wanted.items() if result.checkpoints.get(s) != q}
    if short:
        raise StreamChanged(
            f"could not read the records of an earlier tick again (shard: last "
            f"sequence number wanted): {short}; they are no longer in the stream"
        )


class StreamReader:
    def __init__(
        self,
        client,
        stream_name: str,
        start: str = "TRIM_HORIZON",
        *,
        max_records: int = 100_000,
        max_seconds: float = 20.0,
        log: logging.Logger | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ):
        if not (start in ("LATEST", "TRIM_HORIZON") or start.startswith(AT_TIMESTAMP)):
            raise ValueError(
                f"DEMAND_STREAM_START must be LATEST, TRIM_HORIZON or AT_TIMESTAMP:<iso>: {start!r}"
            )
        self.client = client
        self.stream_name = stream_name
        self.start = start
        self.max_records = max_records
        self.max_seconds = max_seconds
        self.log = log or logging.getLogger(__name__)
        self.sleep = sleep
        self.clock = clock
        parse_records_quickly(client)

    # -- shards -------------------------------------------------------------------------------
    def list_shards(self) -> list[dict]:
        """Every shard, open and closed (botocore's standard retries absorb throttling).

        Paged by hand: a page after the first names only its `NextToken`, which identifies the
        stream; AWS refuses one that also names the stream, as botocore's `list_shards`
        paginator sends (boto/botocore#2009), on a stream with more shards than a page holds.
        """
        shards, token = [], None
        while True:
            kwargs = {"NextToken": token} if token else {"StreamName": self.stream_name}
            page = self.client.list_shards(**kwargs)
            shards += page["Shards"]
            token = page.get("NextToken")
            if not token:
                return shards

    # -- reading ------------------------------------------------------------------------------
    def read(
        self,
        checkpoints: dict[str, str],
        until: dict[str, str] | None = None,
        ends: frozenset[str] = frozenset(),
    ) -> ReadResult:
        """Read on from `checkpoints`, bounded by records and time. With `until`, read exactly
        up to those sequence numbers (shards not in it are not read), marking the shards in
        `ends` read to their end, as the earlier read did."""
        deadline = self.clock() + (REPEAT_SECONDS if until is not None else self.max_seconds)
        limit = None if until is not None else self.max_records
        result = ReadResult(checkpoints=dict(checkpoints))
        shards = _listed(self.list_shards(), result.checkpoints)
        if until is not None:
            _bound_to_earlier_read(shards, result, until, ends)
        else:
            self._pin_latest(shards, result, checkpoints)
        self._read_rounds(shards, result, limit, deadline)
        if until is not None:
            _check_read_again(result, until, ends)
        return result

    def _pin_latest(self, shards: dict[str, _Shard], result: ReadResult, checkpoints) -> None:
        """Give a start to each shard LATEST starts from: a closed one is done, an open one is
        read from this moment on (so changes arriving before the next tick are read)."""
        if self.start != "LATEST":
            return
        now = datetime.now(UTC)
        for shard in shards.values():
            if (
                shard.ended
                or shard.shard_id in checkpoints
                or self._follows(shard, shards, checkpoints)
            ):
                continue
            if shard.ending_sequence is not None:
                # Closed before this moment, so nothing arrives in it after LATEST: done.
                result.checkpoints[shard.shard_id] = SHARD_END
                shard.ended = True
            else:
                result.checkpoints[shard.shard_id] = AT_TIMESTAMP + now.isoformat()

    def _read_rounds(
        self, shards: dict[str, _Shard], result: ReadResult, limit, deadline: float
    ) -> None:
        """Read the shards that may be read, round after round, until each is idle or ended,
        a round brings nothing, or the bound on records or time is reached."""

        def bounded() -> bool:
            full = limit is not None and len(result.records) >= limit
            return full or self.clock() >= deadline

        while not bounded():
            active = [
                s for s in shards.values() if not (s.ended or s.idle) and self._ready(s, shards)
            ]
            if not active:
                return
            progressed = False
            for shard in active:
                if bounded():
                    break
                progressed |= self._read_once(shard, shards, result, limit)
            if not progressed:
                return

    def _has_parent(self, shard: _Shard, shards: dict, checkpoints: dict) -> bool:
        return any(p in shards or p in checkpoints for p in shard.parents)

    def _follows(self, shard: _Shard, shards: dict[str, _Shard], checkpoints: dict) -> bool:
        """Whether an ancestor has a checkpoint: the shard continues a lineage being read (its
        first read then starts at TRIM_HORIZON), rather than one LATEST starts from now."""
        todo, seen = list(shard.parents), set()
        while todo:
            parent = todo.pop()
            if parent in checkpoints:
                return True
            if parent in shards and parent not in seen:
                seen.add(parent)
                todo.extend(shards[parent].parents)
        return False

    def _ready(self, shard: _Shard, shards: dict[str, _Shard]) -> bool:
        """A child is read only once every listed parent is read to its end."""
        return all(shards[p].ended for p in shard.parents if p in shards)

    def _read_once(
        self, shard: _Shard, shards: dict[str, _Shard], result: ReadResult, limit
    ) -> bool:
        """One GetRecords call on a shard; True when the shard may have more to give now."""
        try:
            response = self._get_records(shard, shards, result, limit)
        except ClientError as exc:
            more = self._recover(shard, result, exc)
            if more is None:
                raise
            return more
        result.shards_read += 1
        records = _take_records(shard, response, result)
        if shard.stop_at is not None and _reached(result.checkpoints, shard):
            _stop_where_earlier_read_stopped(shard, result)
            return True
        behind = response.get("MillisBehindLatest", 0) or 0
        result.millis_behind_latest = max(result.millis_behind_latest, behind)
        shard.iterator = response.get("NextShardIterator")
        if _read_to_end(shard, result.checkpoints.get(shard.shard_id)):
            result.checkpoints[shard.shard_id] = SHARD_END
            shard.ended = True
            self.log.info("shard %s: read to its end", shard.shard_id)
            return True
        if not records and behind == 0:
            shard.idle = True  # caught up for this tick
            return False
        return bool(records) or behind > 0

    def _get_records(
        self, shard: _Shard, shards: dict[str, _Shard], result: ReadResult, limit
    ) -> dict:
        """GetRecords on the shard's iterator (got first if it has none), at most `limit`
        records in all."""
        if shard.iterator is None:
            checkpoint = result.checkpoints.get(shard.shard_id)
            shard.iterator = self._iterator(shard, checkpoint, shards, result.checkpoints)
        wanted = 10_000 if limit is None else min(10_000, max(1, limit - len(result.records)))
        return self.client.get_records(ShardIterator=shard.iterator, Limit=wanted)

    def _recover(self, shard: _Shard, result: ReadResult, exc: ClientError) -> bool | None:
        """After a failed call: whether the shard may be read again now (renewed iterator,
        back-off), False to skip a vanished shard, None when the error is not recoverable."""
        code = error_code(exc)
        result.retries += 1
        if code == "ExpiredIteratorException":
            self.log.warning("shard %s: iterator expired; renewing it", shard.shard_id)
            shard.iterator = None
            return True
        if code in THROTTLED:
            self.log.warning("shard %s: throttled (%s); backing off", shard.shard_id, code)
            self.sleep(min(0.2 * result.retries, 1.0))
            return True
        if is_server_error(exc) and shard.server_errors < SERVER_ERROR_RETRIES:
            shard.server_errors += 1
            self.log.warning(
                "shard %s: service error (%s); retrying (%d of %d)",
                shard.shard_id,
                code or "HTTP 5xx",
                shard.server_errors,
                SERVER_ERROR_RETRIES,
            )
            self.sleep(min(0.2 * shard.server_errors, 1.0))
            return True
        if code == "ResourceNotFoundException":
            self.log.warning("shard %s: vanished (%s); skipping it", shard.shard_id, exc)
            shard.idle = True  # not ended: its checkpoint stays as it was
            return False
        return None

    def _iterator(self, shard: _Shard, checkpoint, shards, checkpoints) -> str:
        kwargs = {"StreamName": self.stream_name, "ShardId": shard.shard_id}
        if checkpoint and checkpoint.startswith(AT_TIMESTAMP):
            kwargs["ShardIteratorType"] = "AT_TIMESTAMP"
            kwargs["Timestamp"] = datetime.fromisoformat(checkpoint[len(AT_TIMESTAMP) :])
        elif checkpoint:
            kwargs["ShardIteratorType"] = "AFTER_SEQUENCE_NUMBER"
            kwargs["StartingSequenceNumber"] = checkpoint
        elif self._has_parent(shard, shards, checkpoints) or self.start == "TRIM_HORIZON":
            kwargs["ShardIteratorType"] = "TRIM_HORIZON"
        elif self.start.startswith(AT_TIMESTAMP):
            kwargs["ShardIteratorType"] = "AT_TIMESTAMP"
            kwargs["Timestamp"] = datetime.fromisoformat(self.start[len(AT_TIMESTAMP) :])
        else:
            kwargs["ShardIteratorType"] = "LATEST"
        return self.client.get_shard_iterator(**kwargs)["ShardIterator"]


# A 5xx from Kinesis (InternalFailure, ServiceUnavailable) is retried this many times per shard
# and tick, with back-off, on top of the SDK's own attempts; past that the tick fails, naming
# the error, and the next tick starts again from the same checkpoints.
SERVER_ERROR_RETRIES = 3


class StreamChanged(RuntimeError):
    """A repeated read could not find the records it was to read again."""


def _take_records(shard: _Shard, response: dict, result: ReadResult) -> list[dict]:
    """Add a response's records to the result (a repeated read: only up to `stop_at`) and
    move the shard's checkpoint to the last of them; the records taken."""
    records = response.get("Records", [])
    if shard.stop_at is not None:
        records = [r for r in records if int(r["SequenceNumber"]) <= int(shard.stop_at)]
    for record in records:
        sequence = record["SequenceNumber"]
        result.first_read.setdefault(shard.shard_id, sequence)
        result.records.append(
            Change(
                shard.shard_id,
                sequence,
                format_instant(record["ApproximateArrivalTimestamp"]),
                record["Data"],
            )
        )
    if records:
        result.checkpoints[shard.shard_id] = records[-1]["SequenceNumber"]
    return records


def _stop_where_earlier_read_stopped(shard: _Shard, result: ReadResult) -> None:
    """A repeated read has read the shard as far as the earlier tick did."""
    shard.idle = True
    if shard.ends:
        shard.ended = True
        result.checkpoints[shard.shard_id] = SHARD_END


def _read_to_end(shard: _Shard, last: str | None) -> bool:
    """Whether a shard is read to its end: no next iterator, or (a closed shard) its last
    sequence number reached."""
    return shard.iterator is None or (
        shard.ending_sequence is not None
        and last is not None
        and not last.startswith(AT_TIMESTAMP)
        and int(last) >= int(shard.ending_sequence)
    )


def _reached(checkpoints: dict[str, str], shard: _Shard) -> bool:
    last = checkpoints.get(shard.shard_id)
    if last in (None, SHARD_END) or last.startswith(AT_TIMESTAMP):
        return last == SHARD_END
    return int(last) >= int(shard.stop_at)
