"""Why a change record could not be archived, and the error document that keeps it."""

from __future__ import annotations


class RecordError(Exception):
    """A change record that claims to be archivable is not: `path` names the offending field."""

    def __init__(self, path: str, problem: str):
        super().__init__(f"{path}: {problem}" if path else problem)
        self.path = path
        self.problem = problem

    @property
    def message(self) -> str:
        return str(self)


def error_document(
    message: str,
    events: list[str],
    timestamp: str,
    positions: list[dict] | None = None,
    batch: str | None = None,
) -> dict:
    """SPEC section 5: `{timestamp, error: {message}, events: [original JSON strings]}`.

    Two optional fields, additive, so that a replay keeps each change's provenance: `positions`,
    one `{shardId, sequenceNumber, arrival}` per event, in the same order, and `batch`, the
    landed batch the events came with.
    """
    document = {"timestamp": timestamp, "error": {"message": message}, "events": list(events)}
    if positions is not None:
        if len(positions) != len(document["events"]):
            raise ValueError("one position per event")
        document["positions"] = list(positions)
    if batch is not None:
        document["batch"] = batch
    return document
