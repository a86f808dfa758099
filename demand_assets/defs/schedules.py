"""`daily_compaction`: every night, one file per format in each partition yesterday touched.

At 00:30 UTC the schedule lists the summaries of the batches that arrived yesterday (filed by
arrival day) and requests rebuild runs (`compact_partitions`) for every partition they touched:
yesterday's own, older ones that got late changes, and the months-ahead ones of sales. Each run
covers consecutive touched days only (defs/rebuilds.py). Between compactions, the archive runs
keep every partition at a bounded number of files (storage/tiering.py); the night's rebuild
leaves one per format, with each eventID once even for a change re-delivered after the
stream sensor's dedup window.

Run keys are `compaction:{day}:{type}:{first}:{last}:{digest}`, the digest naming the batches
the run covers: a repeated or re-evaluated tick for the same day requests nothing twice, while
evaluating a past day again after its batches changed requests the rebuilds of just the ranges
that got new batches. Days outside the partitions (possible only after DEMAND_FIRST_PARTITION
was raised or DEMAND_FUTURE_DAYS lowered) are logged and skipped.
"""

from datetime import UTC, datetime, timedelta

import dagster as dg

from demand_assets.defs.rebuilds import (
    consecutive_runs,
    rebuild_request,
    split_by_window,
    unrequested,
)
from demand_assets.defs.resources import ArchiveResource
from demand_assets.records import RECORD_TYPES
from demand_assets.storage.compaction import arrivals_on

COMPACTION_SCHEDULE = "daily_compaction"
COMPACTION_CRON = "30 0 * * *"


def compaction_schedule(job, check_keys) -> dg.ScheduleDefinition:
    @dg.schedule(
        name=COMPACTION_SCHEDULE,
        cron_schedule=COMPACTION_CRON,
        execution_timezone="UTC",
        job=job,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=(
            "Every night: rebuilds each partition that yesterday's batches touched into one "
            "file per format, registers it in Glue and runs its checks."
        ),
    )
    def daily_compaction(context: dg.ScheduleEvaluationContext, archive: ArchiveResource):
        scheduled = context.scheduled_execution_time or datetime.now(UTC)
        arrival_day = (scheduled.astimezone(UTC).date() - timedelta(days=1)).isoformat()
        arrivals = arrivals_on(archive.archive(), arrival_day)
        window = archive.window()
        requests = []
        for record_type in RECORD_TYPES:
            inside, outside = split_by_window(arrivals.days(record_type), window)
            if outside:
                context.log.warning(
                    "%s: %d days outside the partitions are not compacted: %s",
                    record_type,
                    len(outside),
                    outside[:10],
                )
            for first, last in consecutive_runs(inside):
                digest = arrivals.digest(record_type, first, last)
                requests.append(
                    rebuild_request(
                        record_type,
                        first,
                        last,
                        f"compaction:{arrival_day}:{record_type}:{first}:{last}:{digest}",
                        check_keys,
                        f"compaction of the batches of {arrival_day}",
                    )
                )
        requests = unrequested(context.instance, requests)
        if not requests:
            return dg.SkipReason(f"nothing (new) to compact for the batches of {arrival_day}")
        return requests

    return daily_compaction
