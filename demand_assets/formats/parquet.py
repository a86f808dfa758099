"""Parquet files (pyarrow), snappy, nested fields as structs; the Arrow schema is derived from
the Avro schema (formats.arrow)."""

from __future__ import annotations

import io
from collections.abc import Iterable

import pyarrow as pa
import pyarrow.parquet as pq

from demand_assets.formats.arrow import arrow_schema, to_table

__all__ = ["arrow_schema", "decode_parquet", "encode_parquet", "write_parquet"]

COMPRESSION = "snappy"


def encode_parquet(record_type: str, records: list[dict]) -> bytes:
    """Records of one type (validated) -> Parquet bytes."""
    out = io.BytesIO()
    write_parquet(out, record_type, [to_table(record_type, records)])
    return out.getvalue()


def write_parquet(sink, record_type: str, tables: Iterable[pa.Table]) -> int:
    """Stream Arrow tables into one Parquet file (a row group per table); returns rows."""
    writer = ParquetWriter(sink, record_type)
    for table in tables:
        writer.write(table)
    return writer.close()


class ParquetWriter:
    """One Parquet file written incrementally: a row group per table."""

    def __init__(self, sink, record_type: str):
        self.writer = pq.ParquetWriter(sink, arrow_schema(record_type), compression=COMPRESSION)
        self.rows = 0

    def write(self, table: pa.Table) -> None:
        if table.num_rows:
            self.writer.write_table(table)
            self.rows += table.num_rows

    def close(self) -> int:
        self.writer.close()
        return self.rows


def decode_parquet(data: bytes) -> list[dict]:
    """Parquet bytes -> records (for tests and checks)."""
    return pq.read_table(io.BytesIO(data)).to_pylist()
