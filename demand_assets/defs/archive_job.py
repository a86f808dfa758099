"""`archive_batches`: the stream path's one job. A run archives, for every record type, the
batches landed and not yet archived, then registers the days that got their first data in Glue.

One run, one process: the job runs on the in-process executor, so a run pays the code
location's import once (a multiprocess run paid it once per step). The four types' archive ops
run one after another inside it; each writes its partitions with a pool of writer threads.
A run archives at most `max_batches` batches of a type (the oldest); the sensor requests
another run while batches stay pending. Runs carry `demand/stream_path`, which dagster.yaml
limits to one at a time; the sensor keeps at most one more queued (defs/buffering.py).

An archive op's output is `Work`, written by the `archive_io_manager` like a rebuild's, which
reports one `AssetMaterialization` per (record asset, day) written, with that day's own row
count and bytes: the partitions view shows exactly the days that got data.
"""

import dagster as dg

from demand_assets.defs.catalog import glue_partitions_key, raise_failures, register_days
from demand_assets.defs.resources import ArchiveResource, GlueResource
from demand_assets.defs.tags import MAX_RUNTIME_TAG, STREAM_PATH_TAG
from demand_assets.records import RECORD_TYPES
from demand_assets.storage.archiving import Work
from demand_assets.storage.pending import pending_batches

ARCHIVE_JOB = "archive_batches"
# A run left STARTED by a killed worker is failed by run monitoring after this long, so it
# holds the stream path's run slot no longer than that (dagster.yaml enables run monitoring).
# DEMAND_ARCHIVE_MAX_RUNTIME_SECONDS sets it (config.Settings).
MAX_RUNTIME_SECONDS = 600


class ArchiveBatchesConfig(dg.Config):
    max_batches: int = 200


def archive_op(record_type: str) -> dg.OpDefinition:
    @dg.op(
        name=f"archive_{record_type}",
        out=dg.Out(Work, io_manager_key="archive_io_manager"),
        tags={"kind": "s3"},
        description=f"Archives the pending {record_type} batches into their partitions.",
    )
    def archive(
        context: dg.OpExecutionContext, config: ArchiveBatchesConfig, archive: ArchiveResource
    ):
        pending = pending_batches(archive.archive(), record_type, config.max_batches)
        if not pending.batches:
            # Nothing to write; the register step still runs, so days a failed registration
            # left out of Glue are registered by the next run of any type.
            context.log.info("%s: no pending batches", record_type)
        context.log.info(
            "%s: %d pending batches, %d changes, %d partitions",
            record_type,
            len(pending.batches),
            pending.changes,
            len(pending.days()),
        )
        yield dg.Output(Work(record_type, archive.window(), pending=pending))

    return archive


def register_op(record_type: str) -> dg.OpDefinition:
    @dg.op(
        name=f"register_{record_type}_partitions",
        ins={"archived": dg.In(dg.Nothing)},
        tags={"kind": "glue"},
        description=f"Registers the {record_type} days holding data that Glue lacks.",
    )
    def register(context: dg.OpExecutionContext, archive: ArchiveResource, glue: GlueResource):
        registration = register_days(glue.catalog(), archive.archive(), record_type, None)
        for day in registration.days_created:
            context.log_event(
                dg.AssetMaterialization(
                    asset_key=glue_partitions_key(record_type),
                    partition=day,
                    metadata={"registered_by": "archive_batches"},
                )
            )
        raise_failures(record_type, registration)

    return register


ARCHIVE_OPS = {t: (archive_op(t), register_op(t)) for t in RECORD_TYPES}


def archive_job(
    retry_policy: dg.RetryPolicy | None = None,
    max_batches: int = 200,
    max_runtime_seconds: int = MAX_RUNTIME_SECONDS,
) -> dg.JobDefinition:
    """`retry_policy`: the ops' policy for transient AWS errors; `max_batches`: the most
    batches of a type one run takes (DEMAND_MAX_BATCHES_PER_RUN); `max_runtime_seconds`: the
    `dagster/max_runtime` of its runs (DEMAND_ARCHIVE_MAX_RUNTIME_SECONDS)."""

    @dg.job(
        name=ARCHIVE_JOB,
        executor_def=dg.in_process_executor,
        op_retry_policy=retry_policy,
        config={
            "ops": {
                op.name: {"config": {"max_batches": max_batches}} for op, _ in ARCHIVE_OPS.values()
            }
        },
        tags={STREAM_PATH_TAG: "archive", MAX_RUNTIME_TAG: str(max_runtime_seconds)},
        description=(
            "Archives every record type's pending batches and registers new days in Glue; "
            "requested by demand_stream_sensor."
        ),
    )
    def archive_batches():
        for archive, register in ARCHIVE_OPS.values():
            register(archive())

    return archive_batches
