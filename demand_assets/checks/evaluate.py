"""Evaluating the checks of one partition: the SQL checks on an engine, and the two checks
that read the landing area rather than the archive (error rate, freshness)."""

from __future__ import annotations

from collections.abc import Callable, Collection
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from demand_assets.checks.sql import ROW_COUNT_SQL, per_format_checks
from demand_assets.formats import FORMATS
from demand_assets.records import PartitionWindow
from demand_assets.storage.archive import Archive
from demand_assets.storage.batches import BatchSummary
from demand_assets.storage.partition_files import PartitionFiles, held
from demand_assets.storage.partition_write import records_of

ERROR_RATE_LIMIT = 0.001  # 0.1 %: a day's error rate at or above it fails
FRESH_WITHIN = timedelta(minutes=15)  # an unarchived newest batch this old (or older) fails


@dataclass
class Outcome:
    name: str
    passed: bool
    severity: str  # "ERROR" or "WARN"
    metadata: dict = field(default_factory=dict)


def sql_outcomes(engine, database: str, record_type: str, day: str, landed: int) -> list[Outcome]:
    """Row counts, deleted PII, duplicate changes, reference and partition rules."""
    table = {fmt: f'"{database}"."{record_type}_{fmt}"' for fmt in FORMATS}
    counts = engine.query(
        ROW_COUNT_SQL.format(avro=table["avro"], parquet=table["parquet"], day=day), day=day
    )
    row = counts.rows[0]
    outcomes = [
        Outcome(
            "row_counts_agree",
            row["avro_rows"] == row["parquet_rows"] == landed,
            "ERROR",
            {
                "avro_rows": row["avro_rows"],
                "parquet_rows": row["parquet_rows"],
                "landed_changes": landed,
                "engine": counts.engine,
                **_scanned(counts),
            },
        )
    ]
    checks = per_format_checks(record_type)
    results = {
        (check.name, fmt): engine.query(check.sql.format(table=table[fmt], day=day), day=day)
        for fmt in FORMATS  # one format's checks together: the local engine loads it once
        for check in checks
    }
    for check in checks:
        metadata, failing = {"engine": counts.engine}, 0
        samples: list[str] = []
        for fmt in FORMATS:
            result = results[(check.name, fmt)]
            found = result.rows[0]
            metadata[f"{fmt}_failing"] = found["failing"]
            failing += found["failing"]
            if found["samples"]:
                samples += [s for s in found["samples"].split(",") if s not in samples]
            metadata.update({f"{fmt}_{k}": v for k, v in _scanned(result).items()})
        metadata["failing"] = failing
        metadata["sample_reference_ids"] = samples[:5]
        outcomes.append(Outcome(check.name, failing == 0, check.severity, metadata))
    return outcomes


def _scanned(result) -> dict:
    return {} if result.bytes_scanned is None else {"bytes_scanned": result.bytes_scanned}


def landed_changes(archive: Archive, record_type: str, day: str, window: PartitionWindow) -> int:
    """Distinct archivable changes of the landed batches the partition's Parquet files hold:
    what the archive must hold. Batches landed since (traffic does not stop for a check) are
    not counted, so a check on a busy partition compares like with like."""
    listing = PartitionFiles(archive, "parquet", record_type, day).listing()
    batches = held(listing.live)
    return sum(1 for _ in records_of(archive, record_type, day, batches, window))


def summaries_of(archive: Archive, day: str) -> list[BatchSummary]:
    keys = [k for k in archive.bucket.keys(archive.layout.batch_summaries_prefix(day))]
    keys = [k for k in keys if k.endswith(".json")]
    with ThreadPoolExecutor(8) as pool:
        return [BatchSummary.from_json(body) for body in pool.map(archive.bucket.get, keys)]


def error_rate(summaries: list[BatchSummary], record_type: str, day: str) -> Outcome:
    """The share of the day's changes claiming this type that went to errors: under
    ERROR_RATE_LIMIT passes, at or above it fails."""
    rejected = sum(s.rejected.get(record_type, 0) for s in summaries)
    archivable = sum(
        n for s in summaries for key, n in s.archivable.items() if key.startswith(f"{record_type}/")
    )
    total = rejected + archivable
    rate = rejected / total if total else 0.0
    return Outcome(
        "error_rate_below_0_1_percent",
        rate < ERROR_RATE_LIMIT,
        "WARN",
        {"arrival_day": day, "rejected": rejected, "changes": total, "error_rate": rate},
    )


def archived_batches(archive: Archive, record_type: str) -> Callable[[str], set[str]]:
    """partition date -> the batches the type's live Parquet files of that date hold."""

    def held_on(day: str) -> set[str]:
        return held(PartitionFiles(archive, "parquet", record_type, day).listing().live)

    return held_on


def freshness(
    archive: Archive,
    summaries: list[BatchSummary],
    record_type: str,
    now: datetime | None = None,
) -> Outcome:
    """`newest_batch_archived` on the archive's Parquet files, at `now` (default: the clock)."""
    return newest_batch_archived(
        summaries,
        record_type,
        now=now or datetime.now(UTC),
        archived=archived_batches(archive, record_type),
    )


def newest_batch_archived(
    summaries: list[BatchSummary],
    record_type: str,
    *,
    now: datetime,
    archived: Callable[[str], Collection[str]],
) -> Outcome:
    """While the stream has traffic, its newest batch of this type is archived in time: held
    by the Parquet files of every partition it touched (`archived(day)`: the batches those of
    `day` hold), or younger than FRESH_WITHIN at `now`."""
    touching = [s for s in summaries if record_type in s.partitions() and s.last_arrival]
    if not touching:
        return Outcome("newest_batch_archived", True, "WARN", {"stream_traffic": False})
    newest = max(touching, key=lambda s: datetime.fromisoformat(s.last_arrival))
    age = now - datetime.fromisoformat(newest.last_arrival)
    missing = [day for day in newest.partitions()[record_type] if newest.batch not in archived(day)]
    return Outcome(
        "newest_batch_archived",
        not missing or age < FRESH_WITHIN,
        "WARN",
        {
            "stream_traffic": True,
            "newest_batch": newest.batch,
            "age_seconds": round(age.total_seconds(), 1),
            "partitions_missing_it": missing[:10],
        },
    )
