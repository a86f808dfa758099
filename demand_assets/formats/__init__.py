"""Schemas and bytes: Avro object container files and Parquet files of archived records."""

from __future__ import annotations

import io
from collections.abc import Sequence

from demand_assets.formats.arrow import to_table
from demand_assets.formats.avro import DEFAULT_CODEC, AvroWriter, write_avro_rows
from demand_assets.formats.avro_columns import check_schema, encode_rows
from demand_assets.formats.parquet import ParquetWriter, write_parquet
from demand_assets.records.schemas import RECORD_TYPES, avro_schema

FORMATS = ("avro", "parquet")

for _record_type in RECORD_TYPES:  # a schema the encoder cannot write fails here, at load
    check_schema(avro_schema(_record_type))


def open_writer(fmt: str, sink, record_type: str, avro_codec: str = DEFAULT_CODEC):
    """An incremental writer of one file: `.write(arrow_table)`, then `.close() -> rows`."""
    if fmt == "avro":
        return AvroWriter(sink, record_type, avro_codec)
    if fmt == "parquet":
        return ParquetWriter(sink, record_type)
    raise ValueError(f"unknown format {fmt!r} (one of {FORMATS})")


def encode_groups(
    record_type: str, groups: Sequence[list[dict]], codec: str = DEFAULT_CODEC
) -> list[tuple[bytes, bytes]]:
    """(Avro bytes, Parquet bytes) for each group of records of one type.

    All groups go through one Arrow table and one columnar Avro encoding, then each group's
    rows are sliced out: many small partitions cost about what one large one does.
    """
    table = to_table(record_type, [r for group in groups for r in group])
    rows = encode_rows(table, avro_schema(record_type))
    out, start = [], 0
    for group in groups:
        n = len(group)
        avro, parquet = io.BytesIO(), io.BytesIO()
        write_avro_rows(avro, record_type, [rows.slice(start, n)], codec)
        write_parquet(parquet, record_type, [table.slice(start, n)])
        out.append((avro.getvalue(), parquet.getvalue()))
        start += n
    return out
