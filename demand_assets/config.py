"""Configuration from the environment (SPEC section 7): nothing else differs between a laptop
and production."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date

DEFAULT_FIRST_PARTITION = "2020-01-01"
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
    first_partition: date = date.fromisoformat(DEFAULT_FIRST_PARTITION)
    future_days: int = DEFAULT_FUTURE_DAYS

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        defaults = cls()
        return cls(
            bucket=env.get("DEMAND_BUCKET", defaults.bucket),
            prefix=env.get("DEMAND_PREFIX", defaults.prefix).strip("/"),
            stream_name=env.get("DEMAND_STREAM_NAME", defaults.stream_name),
            stream_start=env.get("DEMAND_STREAM_START", defaults.stream_start),
            table_name=env.get("DEMAND_TABLE_NAME", defaults.table_name),
            glue_database=env.get("DEMAND_GLUE_DATABASE", defaults.glue_database),
            query_engine=env.get("DEMAND_QUERY_ENGINE", defaults.query_engine),
            athena_workgroup=env.get("DEMAND_ATHENA_WORKGROUP", defaults.athena_workgroup),
            athena_output=env.get("DEMAND_ATHENA_OUTPUT") or None,
            first_partition=date.fromisoformat(
                env.get("DEMAND_FIRST_PARTITION", DEFAULT_FIRST_PARTITION)
            ),
            future_days=int(env.get("DEMAND_FUTURE_DAYS", DEFAULT_FUTURE_DAYS)),
        )
