"""Run tags, and the private (`dagster._core`) names the Dagster definitions need.

Dagster has no public name for these; keeping them here means a Dagster upgrade that moves
them breaks one import, in one file of the definitions (the production run launcher,
`demand_assets/deploy_launcher.py`, imports the launcher interface the same way).
"""

from __future__ import annotations

from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
    MAX_RUNTIME_SECONDS_TAG,
    RUN_KEY_TAG,
)

# Run monitoring fails a run that has run longer than this tag's seconds.
MAX_RUNTIME_TAG = MAX_RUNTIME_SECONDS_TAG

# Runs of the stream path (`archive_batches`): one runs at a time (dagster.yaml).
STREAM_PATH_TAG = "demand/stream_path"
# Rebuild runs of one record type queue behind each other (dagster.yaml).
TYPE_TAG = "demand/record_type"
# Why a rebuild was requested (the schedule's day, the run that landed its batches).
REASON_TAG = "demand/rebuild"
# One run at a time of each operation job (bootstrap, replay; dagster.yaml).
EXCLUSIVE_TAG = "demand/exclusive"

__all__ = [
    "ASSET_PARTITION_RANGE_END_TAG",
    "ASSET_PARTITION_RANGE_START_TAG",
    "EXCLUSIVE_TAG",
    "MAX_RUNTIME_TAG",
    "REASON_TAG",
    "RUN_KEY_TAG",
    "STREAM_PATH_TAG",
    "TYPE_TAG",
    "partition_range_tags",
]


def partition_range_tags(first: str, last: str) -> dict[str, str]:
    """The tags of a run over the partitions first..last (as a backfill of a range sets them)."""
    return {ASSET_PARTITION_RANGE_START_TAG: first, ASSET_PARTITION_RANGE_END_TAG: last}
