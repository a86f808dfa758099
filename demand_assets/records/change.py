"""A change record as it travels from the stream to the archive: one shape, from the reader on."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True, frozen=True)
class Change:
    """One change record and where it was read.

    `shard` and `seq` are its stream position (a table scan or a replay gives positions of its
    own), `arrival` when it reached the stream (ISO-8601 UTC with milliseconds, `…T…:…:….sssZ`)
    and `data` the record's JSON bytes.
    """

    shard: str
    seq: str
    arrival: str
    data: bytes
