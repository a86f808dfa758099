"""Record core throughput: decode + validate + enrich + encode Avro and Parquet.

Generates realistic stream records (mixed types, about 1/3 MODIFY with OldImage, some REMOVE)
and measures, in one process and on one core, the full record pipeline against a floor measured
in the same run: orjson.loads + the plain attribute-value unmarshal + fastavro.writer + a
pyarrow Parquet write of the same records with no rules applied.

    .venv/bin/python benchmarks/record_core.py [--records 100000] [--repeat 3]

Targets (issue 2): at least 80,000 records/s, and at least 0.7 of the floor.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import time
from collections import defaultdict
from datetime import UTC, date, datetime

import fastavro
import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from demand_assets.formats import encode_groups
from demand_assets.formats.arrow import arrow_schema, to_table
from demand_assets.records import PartitionWindow, decode_batch
from demand_assets.records.attribute_values import unmarshal_image
from demand_assets.records.decode import IMAGE_OF_EVENT
from demand_assets.records.schemas import DERIVED_FIELDS, RECORD_TYPES, avro_schema
from demand_assets.runtime import gc_paused
from demand_assets.traffic.generator import ChangeGenerator

NOW = datetime(2026, 11, 1, tzinfo=UTC)
WINDOW = PartitionWindow(date(2020, 1, 1), date(2027, 12, 31))


def plain_schemas() -> dict[str, tuple[dict, pa.Schema]]:
    """Each type's schema without the derived fields: what raw items can be written with."""
    schemas = {}
    for record_type in RECORD_TYPES:
        schema = dict(avro_schema(record_type))
        schema["fields"] = [f for f in schema["fields"] if f["name"] not in DERIVED_FIELDS]
        arrow = pa.schema([f for f in arrow_schema(record_type) if f.name not in DERIVED_FIELDS])
        schemas[record_type] = (fastavro.parse_schema(schema), arrow)
    return schemas


def floor(payloads: list[bytes], schemas) -> int:
    """No rules: parse, unmarshal the image, group by type, write both formats."""
    groups: dict[str, list[dict]] = defaultdict(list)
    for data in payloads:
        change = orjson.loads(data)
        dynamodb = change["dynamodb"]
        item = unmarshal_image(dynamodb[IMAGE_OF_EVENT[change["eventName"]]], "")
        groups[item["type"]].append(item)
    size = 0
    for record_type, items in groups.items():
        avro_schema_, arrow = schemas[record_type]
        out = io.BytesIO()
        fastavro.writer(out, avro_schema_, items, codec="snappy", validator=False)
        size += out.tell()
        out = io.BytesIO()
        pq.write_table(pa.Table.from_pylist(items, schema=arrow), out, compression="snappy")
        size += out.tell()
    return size


def pipeline(payloads: list[bytes]) -> int:
    """Every rule, and one Avro and one Parquet file per (type, partition date)."""
    batch = decode_batch(((data, "shardId-000000000000", "0") for data in payloads), WINDOW)
    by_type: dict[str, list[list[dict]]] = defaultdict(list)
    for (record_type, _day), records in batch.archivable.items():
        by_type[record_type].append(records)
    size = 0
    for record_type, groups in by_type.items():
        for avro, parquet in encode_groups(record_type, groups):
            size += len(avro) + len(parquet)
    assert not batch.rejected, batch.rejected[:3]
    return size


def avro_encoders(payloads: list[bytes]) -> tuple[float, float, int]:
    """The Avro encoding alone, on the same validated records grouped by type: fastavro's
    writer from Python dicts vs. the columnar encoder from the Arrow table the pipeline builds
    for Parquet anyway (the table's construction not counted: Parquet pays it). Seconds each,
    and the records encoded; the bytes are checked equal."""
    from demand_assets.formats.avro import write_avro
    from demand_assets.formats.avro_columns import encode_rows

    batch = decode_batch(((data, "shardId-000000000000", "0") for data in payloads), WINDOW)
    by_type: dict[str, list[dict]] = {}
    for (record_type, _day), records in batch.archivable.items():
        by_type.setdefault(record_type, []).extend(records)
    tables = {t: to_table(t, records) for t, records in by_type.items()}
    parsed = {t: fastavro.parse_schema(avro_schema(t)) for t in by_type}

    def with_fastavro() -> None:
        for t, records in by_type.items():
            fastavro.writer(io.BytesIO(), parsed[t], records, codec="null", validator=False)

    def columnar() -> None:
        for t, table in tables.items():
            encode_rows(table, avro_schema(t))

    for t, table in tables.items():  # same bytes: decode both and compare
        ours = io.BytesIO()
        write_avro(ours, t, [table], codec="null")
        theirs = io.BytesIO()
        fastavro.writer(theirs, parsed[t], by_type[t], codec="null", validator=False)
        assert list(fastavro.reader(io.BytesIO(ours.getvalue()))) == list(
            fastavro.reader(io.BytesIO(theirs.getvalue()))
        ), t
    return timed(with_fastavro), timed(columnar), sum(map(len, by_type.values()))


def timed(fn, *args) -> float:
    with gc_paused():
        start = time.perf_counter()
        fn(*args)
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3, help="best of N runs of each")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core

    payloads = [c.data for c in ChangeGenerator(seed=7, now=NOW, days=3).changes(args.records)]
    megabytes = sum(map(len, payloads)) / 1e6
    schemas = plain_schemas()
    floor(payloads[:1000], schemas), pipeline(payloads[:1000])  # warm caches and imports

    floor_s = min(timed(floor, payloads, schemas) for _ in range(args.repeat))
    ours_s = min(timed(pipeline, payloads) for _ in range(args.repeat))
    floor_rate, ours_rate = args.records / floor_s, args.records / ours_s
    ratio = ours_rate / floor_rate
    print(f"records: {args.records:,} ({megabytes:.1f} MB of stream JSON), best of {args.repeat}")
    print(f"floor (parse + unmarshal + write both, no rules): {floor_rate:>10,.0f} records/s")
    print(f"pipeline (decode + validate + enrich + encode):   {ours_rate:>10,.0f} records/s")
    print(f"ratio pipeline/floor: {ratio:.2f}   (targets: >= 80,000 records/s, ratio >= 0.70)")
    fast_s, columnar_s, encoded = min(avro_encoders(payloads) for _ in range(args.repeat))
    print(
        f"Avro encoding alone, {encoded:,} records: fastavro {encoded / fast_s:>10,.0f} /s, "
        f"columnar {encoded / columnar_s:>10,.0f} /s (ratio {fast_s / columnar_s:.1f})"
    )
    ok = ours_rate >= 80_000 and ratio >= 0.7
    print("targets met" if ok else "targets NOT met")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
