"""The daily partitions of the record assets, and the window of dates they accept."""

from __future__ import annotations

from datetime import date

import dagster as dg

from demand_assets.records import PartitionWindow


def daily_partitions(first_partition: str, future_days: int) -> dg.DailyPartitionsDefinition:
    """From the table's history (DEMAND_FIRST_PARTITION) to DEMAND_FUTURE_DAYS ahead, UTC."""
    return dg.DailyPartitionsDefinition(start_date=first_partition, end_offset=future_days)


def partition_window(partitions: dg.DailyPartitionsDefinition) -> PartitionWindow:
    """The dates a record may have right now: its partition must exist."""
    first = partitions.get_first_partition_key()
    last = partitions.get_last_partition_key()
    return PartitionWindow(date.fromisoformat(first), date.fromisoformat(last))
