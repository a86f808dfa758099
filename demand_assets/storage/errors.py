"""Error documents under `errors/` (SPEC section 5): one per distinct message of a batch."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

import orjson

from demand_assets.records.change import Change
from demand_assets.records.decode import Rejected
from demand_assets.records.errors import error_document
from demand_assets.storage.layout import Layout

_NAMESPACE = uuid.UUID("6f1d7a52-6a4b-4f0e-9a57-0d7f3c1e2b10")


def error_objects(
    layout: Layout, batch: str, rejected: Iterable[tuple[Rejected, Change]]
) -> list[tuple[str, bytes]]:
    """(key, body) of the error documents of a batch.

    Each rejection comes with the change it rejected: the document lists each event's position
    (shard, sequence number, arrival), which a replay keeps as the archived row's provenance.
    Changes that failed for the same reason are kept together (BR-017). Keys are deterministic
    in the batch and the message, so a repeated tick rewrites its documents instead of adding
    new ones; a document is stamped and named by its first event's arrival.
    """
    groups: dict[str, tuple[str, list[str], list[dict]]] = {}
    for rejection, change in rejected:
        _, events, positions = groups.setdefault(rejection.message, (change.arrival, [], []))
        events.append(rejection.original)
        positions.append(
            {"shardId": change.shard, "sequenceNumber": change.seq, "arrival": change.arrival}
        )
    objects = []
    for message, (when, events, positions) in groups.items():
        name = uuid.uuid5(_NAMESPACE, f"{batch}\n{message}")
        document = error_document(message, events, when, positions, batch)
        body = orjson.dumps(document, option=orjson.OPT_INDENT_2)
        objects.append((layout.error_key(when, str(name)), body))
    return objects
