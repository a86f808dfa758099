"""Where an archived row came from: enough to detect duplicates and trace every row."""

from __future__ import annotations


def provenance(
    event_id: str, event_name: str, change_time: str, shard_id: str, sequence_number: str
) -> dict:
    return {
        "eventID": event_id,
        "eventName": event_name,
        "changeTime": change_time,
        "shardId": shard_id,
        "sequenceNumber": sequence_number,
    }
