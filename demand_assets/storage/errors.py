"""Error documents under `errors/` (SPEC section 5): one per distinct message of a batch."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

import orjson

from demand_assets.records.decode import Rejected
from demand_assets.records.errors import error_document
from demand_assets.storage.layout import Layout

_NAMESPACE = uuid.UUID("6f1d7a52-6a4b-4f0e-9a57-0d7f3c1e2b10")


def error_objects(
    layout: Layout, batch: str, rejected: Iterable[tuple[Rejected, str]]
) -> list[tuple[str, bytes]]:
    """(key, body) of the error documents of a batch.

    `rejected` pairs each rejection with the time it was read (ISO). Changes that failed for the
    same reason are kept together (BR-017). Keys are deterministic in the batch and the message,
    so a repeated tick rewrites its documents instead of adding new ones.
    """
    groups: dict[str, tuple[str, list[str]]] = {}
    for rejection, read_at in rejected:
        when, events = groups.setdefault(rejection.message, (read_at, []))
        events.append(rejection.original)
    objects = []
    for message, (when, events) in groups.items():
        name = uuid.uuid5(_NAMESPACE, f"{batch}\n{message}")
        body = orjson.dumps(error_document(message, events, when), option=orjson.OPT_INDENT_2)
        objects.append((layout.error_key(when, str(name)), body))
    return objects
