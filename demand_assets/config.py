"""Configuration from the environment (SPEC section 7): nothing else differs between a laptop
and production."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date

from demand_assets.records.partition_date import DEFAULT_FIRST_PARTITION

DEFAULT_FUTURE_DAYS = 400  # sales are announced months ahead


@dataclass(frozen=True)
class Settings:
    bucket: str = "demand-archive"
    prefix: str = "demand"
    stream_name: str = "demand-capture"
    stream_start: str = "TRIM_HORIZON"
    table_name: str = "demand-capture"
    glue_database: str = "demand"
    query_engine: str = "duckdb"
    athena_workgroup: str = "primary"
    athena_output: str | None = None
    first_partition: date = DEFAULT_FIRST_PARTITION
    future_days: int = DEFAULT_FUTURE_DAYS
    # The stream path's buffering hints (README, "Keeping up"): an archive run is requested once
    # the oldest unrequested change arrived this long ago, or once this many have landed.
    buffer_seconds: float = 15.0
    buffer_changes: int = 5000
    # How long a landed change keeps its re-deliveries (same eventID) out of later batches.
    dedup_window_minutes: float = 60.0
    # The most batches of a type one archive run takes; the rest go to the next run.
    max_batches_per_run: int = 200
    # An archive run still STARTED after this long (its worker died) is failed by run
    # monitoring, which frees the stream path's run slot (defs/archive_job.py).
    archive_max_runtime_seconds: int = 600
    # Alerts (README, "Alerts"): an SNS topic to publish them to (unset: log lines only), the
    # Dagster UI's address their links start with, and when their conditions hold.
    alert_topic_arn: str | None = None
    ui_url: str = "http://127.0.0.1:3000"
    alert_lag_seconds: float = 300.0
    alert_error_rate: float = 0.001
    alert_archive_minutes: float = 15.0

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        d = cls()
        return cls(
            bucket=env.get("DEMAND_BUCKET", d.bucket),
            prefix=env.get("DEMAND_PREFIX", d.prefix).strip("/"),
            stream_name=env.get("DEMAND_STREAM_NAME", d.stream_name),
            stream_start=env.get("DEMAND_STREAM_START", d.stream_start),
            table_name=env.get("DEMAND_TABLE_NAME", d.table_name),
            glue_database=env.get("DEMAND_GLUE_DATABASE", d.glue_database),
            query_engine=env.get("DEMAND_QUERY_ENGINE", d.query_engine),
            athena_workgroup=env.get("DEMAND_ATHENA_WORKGROUP", d.athena_workgroup),
            athena_output=env.get("DEMAND_ATHENA_OUTPUT") or None,
            first_partition=date.fromisoformat(
                env.get("DEMAND_FIRST_PARTITION", d.first_partition.isoformat())
            ),
            future_days=int(env.get("DEMAND_FUTURE_DAYS", d.future_days)),
            buffer_seconds=float(env.get("DEMAND_BUFFER_SECONDS", d.buffer_seconds)),
            buffer_changes=int(env.get("DEMAND_BUFFER_CHANGES", d.buffer_changes)),
            dedup_window_minutes=float(
                env.get("DEMAND_DEDUP_WINDOW_MINUTES", d.dedup_window_minutes)
            ),
            max_batches_per_run=int(env.get("DEMAND_MAX_BATCHES_PER_RUN", d.max_batches_per_run)),
            archive_max_runtime_seconds=int(
                env.get("DEMAND_ARCHIVE_MAX_RUNTIME_SECONDS", d.archive_max_runtime_seconds)
            ),
            alert_topic_arn=env.get("DEMAND_ALERT_TOPIC_ARN") or None,
            ui_url=env.get("DEMAND_UI_URL") or d.ui_url,
            alert_lag_seconds=float(env.get("DEMAND_ALERT_LAG_SECONDS", d.alert_lag_seconds)),
            alert_error_rate=float(env.get("DEMAND_ALERT_ERROR_RATE", d.alert_error_rate)),
            alert_archive_minutes=float(
                env.get("DEMAND_ALERT_ARCHIVE_MINUTES", d.alert_archive_minutes)
            ),
        )
