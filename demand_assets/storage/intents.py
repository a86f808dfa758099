"""What a sensor tick is about to land, written before it lands anything.

A tick reads the stream from the cursor's checkpoints, but how far it reads depends on time
and on what has arrived, so a tick done again after a crash would read another extent. Its
intent, keyed by the checkpoints it started from, fixes the extent: the batch's name, each
shard's first and last sequence number, and the checkpoints that follow. A tick that finds an
intent for its checkpoints reads exactly that extent again and lands the same objects; if the
batch's summary exists, the batch landed whole and the tick only moves the cursor on. So a
batch name always stands for the same changes, whoever landed it and however often.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import orjson

from demand_assets.storage.archive import Archive


@dataclass(frozen=True)
class Intent:
    batch: str
    ranges: dict[str, list[str]]  # shard -> [first, last] sequence number landed
    checkpoints: dict[str, str]  # the cursor's checkpoints once the batch has landed

    def to_json(self) -> bytes:
        return orjson.dumps(self.__dict__)


def intent_name(stream: str, checkpoints: dict[str, str]) -> str:
    positions = ",".join(f"{shard}={seq}" for shard, seq in sorted(checkpoints.items()))
    return hashlib.sha256(f"{stream}\n{positions}".encode()).hexdigest()[:32]


def read_intent(archive: Archive, stream: str, checkpoints: dict[str, str]) -> Intent | None:
    body = archive.bucket.get_or_none(archive.layout.intent_key(intent_name(stream, checkpoints)))
    return None if body is None else Intent(**orjson.loads(body))


def write_intent(archive: Archive, stream: str, start: dict[str, str], intent: Intent) -> None:
    archive.bucket.put(
        archive.layout.intent_key(intent_name(stream, start)), intent.to_json(), "application/json"
    )
