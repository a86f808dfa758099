"""The streaming path end to end on the moto server: Kinesis -> sensor -> landing -> runs ->
Avro and Parquet in S3, exactly once, under repeated ticks, failed and retried runs, and
backfills racing new batches."""

from __future__ import annotations

import io
import json
from collections import Counter

import dagster as dg
import pyarrow.parquet as pq

from demand_assets.definitions import build_definitions
from demand_assets.defs.resources import S3Resource
from demand_assets_tests.defs.pipeline import (
    archived,
    drain,
    event_id_counts,
    execute,
    expected_records,
    generated,
    keys,
    put,
    rebuild,
    tick,
    without_position,
)


def test_every_valid_change_is_archived_once_in_each_format(defs, instance, settings, s3, kinesis):
    changes = generated(2500, other_type_share=0.04, malformed_share=0.02)
    redelivered = [c for c in changes if c.kind == "valid"][:40]
    put(kinesis, settings.stream_name, [(c.data, c.partition_key) for c in changes + redelivered])

    drain(defs, instance)

    expected = expected_records([c.data for c in changes])
    rows = archived(s3, settings)
    for fmt in ("avro", "parquet"):
        counts = event_id_counts(rows[fmt])
        assert set(counts) == set(expected), fmt
        assert max(counts.values()) == 1, f"{fmt}: doubled {counts.most_common(3)}"
        for record_type, day, record in rows[fmt]:
            want_type, want_day, want = expected[record["provenance"]["eventID"]]
            assert (record_type, day) == (want_type, want_day)
            assert without_position(record) == without_position(want)
            assert record["provenance"]["shardId"].startswith("shardId-")
    assert len(expected) == sum(c.kind == "valid" for c in changes)


def test_bad_records_land_in_errors_with_their_original_json(defs, instance, settings, s3, kinesis):
    changes = generated(1500, seed=2, other_type_share=0.05, malformed_share=0.04)
    put(kinesis, settings.stream_name, [(c.data, c.partition_key) for c in changes])

    drained = drain(defs, instance)

    malformed = [c for c in changes if c.kind.startswith("malformed:")]
    documents = [
        json.loads(s3.get_object(Bucket=settings.bucket, Key=k)["Body"].read())
        for k in keys(s3, settings.bucket, f"{settings.prefix}/errors/")
    ]
    events = [e for d in documents for e in d["events"]]
    assert len(events) == len(malformed)
    for document in documents:
        assert set(document) == {"timestamp", "error", "events", "positions", "batch"}
        assert len(document["positions"]) == len(document["events"])
        assert all(p["shardId"].startswith("shardId-") for p in document["positions"])
        assert document["error"]["message"]
    originals = set(events)
    for change in malformed:
        if b"REMOVE" not in change.data:
            assert change.data.decode("utf-8", "backslashreplace") in originals, change.kind
    # messages name what was wrong and where
    messages = " ".join(d["error"]["message"] for d in documents)
    assert "systemUserId" in messages and "date.requested" in messages

    (batch_summary,) = [
        k
        for k in keys(s3, settings.bucket, f"{settings.prefix}/landing/_batches/")
        if k.endswith(".json")
    ]
    summary = json.loads(s3.get_object(Bucket=settings.bucket, Key=batch_summary)["Body"].read())
    assert sum(summary["skipped"].values()) == sum(c.kind == "other_type" for c in changes)
    assert sum(summary["rejected"].values()) == len(malformed)
    assert drained.requests, "the valid records were archived"


def test_a_tick_that_dies_after_landing_is_repeated_without_doubling(
    defs, instance, settings, s3, kinesis
):
    changes = generated(800, seed=3)
    put(kinesis, settings.stream_name, [(c.data, c.partition_key) for c in changes])

    lost = tick(defs, instance, None)  # landed, but the tick "died": its cursor is never stored
    landed = sorted(keys(s3, settings.bucket, f"{settings.prefix}/landing/"))
    repeated = tick(defs, instance, None)

    assert [r.run_key for r in repeated.run_requests] == [r.run_key for r in lost.run_requests]
    assert sorted(keys(s3, settings.bucket, f"{settings.prefix}/landing/")) == landed
    for request in repeated.run_requests:
        assert execute(defs, instance, request).success
    assert tick(defs, instance, repeated.cursor).run_requests == []

    expected = expected_records([c.data for c in changes])
    for fmt, rows in archived(s3, settings).items():
        assert event_id_counts(rows) == Counter(dict.fromkeys(expected, 1)), fmt


class _ParquetUploadFails:
    """A boto3 S3 client whose Parquet uploads fail, as if the run died between the formats."""

    def __init__(self, client):
        self._client = client

    def upload_file(self, filename, bucket, key, *args, **kwargs):
        if key.endswith(".parquet"):
            raise ConnectionError(f"injected: upload of {key} failed")
        return self._client.upload_file(filename, bucket, key, *args, **kwargs)

    def put_object(self, **kwargs):
        if kwargs["Key"].endswith(".parquet"):
            raise ConnectionError(f"injected: upload of {kwargs['Key']} failed")
        return self._client.put_object(**kwargs)

    def __getattr__(self, name):
        return getattr(self._client, name)


class ParquetFailingS3(S3Resource):
    def get_client(self):
        return _ParquetUploadFails(super().get_client())


def test_a_run_that_dies_between_formats_and_is_retried_archives_once(
    defs, instance, settings, s3, kinesis
):
    changes = generated(600, seed=4)
    put(kinesis, settings.stream_name, [(c.data, c.partition_key) for c in changes])
    # Without step retries: the run dies at its first failed upload.
    failing = build_definitions(settings, s3=ParquetFailingS3(), retry_policy=None)

    result = tick(defs, instance, None)
    for request in result.run_requests:
        assert not execute(failing, instance, request, raise_on_error=False).success
    rows = archived(s3, settings)
    assert rows["avro"] and not rows["parquet"]

    for request in result.run_requests:  # the retry, twice over: retries must be idempotent
        assert execute(defs, instance, request).success
        assert execute(defs, instance, request).success

    expected = expected_records([c.data for c in changes])
    for fmt, rows in archived(s3, settings).items():
        assert event_id_counts(rows) == Counter(dict.fromkeys(expected, 1)), fmt


def test_a_backfill_racing_new_batches_keeps_every_change_once(
    defs, instance, settings, s3, kinesis
):
    first = generated(500, seed=5)
    put(kinesis, settings.stream_name, [(c.data, c.partition_key) for c in first])
    batch_a = tick(defs, instance, None)
    (archive_a,) = batch_a.run_requests
    days = sorted({day for t, day, _ in expected_records([c.data for c in first]).values()})

    # A backfill of the demand partitions runs before batch A's archive run: it covers batch A.
    assert rebuild(defs, instance, "demand", days[0], days[-1]).success
    assert execute(defs, instance, archive_a).success  # batch A's run finds demand covered

    second = generated(500, seed=6)
    put(kinesis, settings.stream_name, [(c.data, c.partition_key) for c in second])
    drained = drain(defs, instance, batch_a.cursor)
    assert drained.requests

    expected = expected_records([c.data for c in first + second])
    for fmt, rows in archived(s3, settings).items():
        assert event_id_counts(rows) == Counter(dict.fromkeys(expected, 1)), fmt

    # The next rebuild converges each partition to one file per format.
    all_days = sorted({day for t, day, _ in expected.values() if t == "demand"})
    assert rebuild(defs, instance, "demand", all_days[0], all_days[-1]).success
    for fmt, rows in archived(s3, settings).items():
        assert event_id_counts(rows) == Counter(dict.fromkeys(expected, 1)), fmt
        for day in all_days:
            prefix = f"{settings.prefix}/{fmt}/demand/partition_date={day}/"
            data = [k for k in keys(s3, settings.bucket, prefix) if "/_" not in k]
            assert len(data) == 1, data


def test_materializations_report_each_days_own_counts_bytes_and_files(
    defs, instance, settings, s3, kinesis
):
    changes = generated(300, seed=7, type_weights={"demand": 1.0})
    put(kinesis, settings.stream_name, [(c.data, c.partition_key) for c in changes])
    drain(defs, instance)

    rows = archived(s3, settings)["parquet"]
    per_day = Counter(day for t, day, _ in rows if t == "demand")
    for day, count in per_day.items():
        records = instance.fetch_materializations(dg.AssetKey("demand"), limit=100).records
        (mine,) = [r for r in records if r.partition_key == day]
        metadata = mine.asset_materialization.metadata
        assert metadata["dagster/row_count"].value == count
        assert metadata["parquet_rows"].value == metadata["avro_rows"].value == count
        assert metadata["avro_bytes"].value > 0 and metadata["parquet_bytes"].value > 0
        assert metadata["avro_files"].value == metadata["parquet_files"].value == 1


def test_a_rebuild_streams_its_partition_in_chunks_into_large_row_groups(
    defs, instance, settings, s3, kinesis, monkeypatch
):
    """Rebuilds read a partition batch by batch and write it a chunk at a time (here 7
    records), gathering Parquet row groups of 32 rows; every change still appears once, in
    batch order."""
    from demand_assets.formats import parquet
    from demand_assets.storage import partition_write

    changes = generated(600, seed=21, type_weights={"demand": 1.0})
    cursor = None
    for third in (changes[:200], changes[200:400], changes[400:]):
        put(kinesis, settings.stream_name, [(c.data, c.partition_key) for c in third])
        cursor = drain(defs, instance, cursor).cursor
    rows = archived(s3, settings)["parquet"]
    day = Counter(d for _, d, _ in rows).most_common(1)[0][0]
    batch_order = [r["provenance"]["eventID"] for _, d, r in rows if d == day]
    prefix = f"{settings.prefix}/parquet/demand/partition_date={day}/"
    assert len([k for k in keys(s3, settings.bucket, prefix) if "/_" not in k]) == 3

    monkeypatch.setattr(partition_write, "CHUNK_RECORDS", 7)
    monkeypatch.setattr(parquet, "ROW_GROUP_ROWS", 32)
    assert rebuild(defs, instance, "demand", day, day).success

    (data_key,) = [k for k in keys(s3, settings.bucket, prefix) if "/_" not in k]
    body = s3.get_object(Bucket=settings.bucket, Key=data_key)["Body"].read()
    metadata = pq.ParquetFile(io.BytesIO(body)).metadata
    n = metadata.num_rows
    assert n == len(batch_order) > 64
    assert [metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)] == [32] * (
        n // 32
    ) + ([n % 32] if n % 32 else [])
    rebuilt = pq.read_table(io.BytesIO(body), columns=["provenance"]).column(0).to_pylist()
    assert sorted(p["eventID"] for p in rebuilt) == sorted(batch_order)
    for fmt, archived_rows in archived(s3, settings).items():
        on_day = Counter(r["provenance"]["eventID"] for _, d, r in archived_rows if d == day)
        assert set(on_day) == set(batch_order) and max(on_day.values()) == 1, fmt
