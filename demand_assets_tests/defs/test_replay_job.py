"""The `replay_errors` job end to end on the moto server: a sale too far ahead goes to errors;
once the partitions reach its day (DEMAND_FUTURE_DAYS raised), a replay lands it pending, the
archive run the stream sensor's next tick requests archives it once with its stream position,
the change that still fails stays in errors/, and a second replay changes nothing."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import dagster as dg

from demand_assets.definitions import build_definitions
from demand_assets.defs.archive_job import ARCHIVE_JOB
from demand_assets.defs.operations import REPLAY_JOB
from demand_assets.records import RECORD_TYPES
from demand_assets.storage.pending import pending_batches
from demand_assets_tests.builders import change, valid_item
from demand_assets_tests.defs.operating import SHARD, archive_of, archived_event_ids, land
from demand_assets_tests.defs.pipeline import archived, drain, keys


def _replay(defs, instance):
    result = defs.resolve_job_def(REPLAY_JOB).execute_in_process(instance=instance)
    assert result.success
    return result


def _pending(s3, settings) -> dict[str, dict[str, dict[str, int]]]:
    """record type -> {pending batch: {day: changes}}, for the types with any."""
    archive = archive_of(s3, settings)
    return {
        t: pending.batches for t in RECORD_TYPES if (pending := pending_batches(archive, t)).batches
    }


def _documents(s3, settings) -> list[dict]:
    return [
        json.loads(s3.get_object(Bucket=settings.bucket, Key=k)["Body"].read())
        for k in keys(s3, settings.bucket, f"{settings.prefix}/errors/")
    ]


def test_a_replay_after_the_fix_archives_once_and_keeps_what_still_fails(settings, s3, kinesis):
    far = (datetime.now(UTC).date() + timedelta(days=settings.future_days + 60)).isoformat()
    sale = change(
        "INSERT",
        valid_item("sale", saleStartDateTime=f"{far}T18:00:00.000Z"),
        event_id="far-sale",
    )
    demand = change("INSERT", valid_item("demand", systemUserId="nope"), event_id="bad-demand")
    summary = land(s3, settings, [sale, demand], datetime.now(UTC), 70)
    assert summary.rejected == {"sale": 1, "demand": 1} and not summary.archivable
    assert len(_documents(s3, settings)) == 2

    # The fix: the partitions now reach the sale's day.
    defs = build_definitions(replace(settings, future_days=settings.future_days + 365))
    instance = dg.DagsterInstance.ephemeral()
    first = _replay(defs, instance)
    assert first.output_for_node("replay_error_documents") == {"sale": [far]}
    pending = _pending(s3, settings)  # one batch, for the sale's day, nothing else
    assert list(pending) == ["sale"] and list(pending["sale"].values()) == [{far: 1}]

    # The stream sensor's next tick sees the batch pending and nothing running: one run.
    drained = drain(defs, instance)
    assert [r.job_name for r in drained.requests] == [ARCHIVE_JOB]
    assert _pending(s3, settings) == {}

    assert archived_event_ids(s3, settings) == {
        "avro": Counter({"far-sale": 1}),
        "parquet": Counter({"far-sale": 1}),
    }
    ((_, day, row),) = archived(s3, settings)["parquet"]
    assert day == far
    assert (row["provenance"]["shardId"], row["provenance"]["sequenceNumber"]) == (SHARD, "70")
    (kept,) = _documents(s3, settings)
    assert "systemUserId" in kept["error"]["message"]
    assert [json.loads(e)["eventID"] for e in kept["events"]] == ["bad-demand"]

    # Again: nothing to land, nothing to archive, nothing changed.
    landing = keys(s3, settings.bucket, f"{settings.prefix}/landing/")
    second = _replay(defs, instance)
    assert second.output_for_node("replay_error_documents") == {}
    assert _pending(s3, settings) == {}
    assert drain(defs, instance, drained.cursor).requests == []
    assert keys(s3, settings.bucket, f"{settings.prefix}/landing/") == landing
    assert _documents(s3, settings) == [kept]
    assert archived_event_ids(s3, settings)["parquet"] == Counter({"far-sale": 1})
