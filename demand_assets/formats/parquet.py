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
# Rows per row group: tables written in smaller pieces (a rebuild streams its partition in
# chunks) are gathered up to this, so readers see a few large row groups, not many small ones.
ROW_GROUP_ROWS = 65_536


def encode_parquet(record_type: str, records: list[dict]) -> bytes:
    """Records of one type (validated) -> Parquet bytes."""
    out = io.BytesIO()
    write_parquet(out, record_type, [to_table(record_type, records)])
    return out.getvalue()


def write_parquet(sink, record_type: str, tables: Iterable[pa.Table]) -> int:
    """Stream Arrow tables into one Parquet file; returns rows."""
    writer = ParquetWriter(sink, record_type)
    for table in tables:
        writer.write(table)
    return writer.close()


class ParquetWriter:
    """One Parquet file written incrementally: tables are gathered into row groups of
    `row_group_rows`, so memory holds at most one row group."""

    def __init__(self, sink, record_type: str, row_group_rows: int | None = None):
        self.writer = pq.ParquetWriter(sink, arrow_schema(record_type), compression=COMPRESSION)
        self.row_group_rows = row_group_rows or ROW_GROUP_ROWS
        self.pending: list[pa.Table] = []
        self.pending_rows = 0
        self.rows = 0

    def write(self, table: pa.Table) -> None:
        if not table.num_rows:
            return
        self.pending.append(table)
        self.pending_rows += table.num_rows
        self.rows += table.num_rows
        while self.pending_rows >= self.row_group_rows:
            gathered = pa.concat_tables(self.pending)
            self.writer.write_table(gathered.slice(0, self.row_group_rows))
            rest = gathered.slice(self.row_group_rows)
            self.pending = [rest] if rest.num_rows else []
            self.pending_rows = rest.num_rows

    def close(self) -> int:
        if self.pending:
            self.writer.write_table(pa.concat_tables(self.pending))
            self.pending, self.pending_rows = [], 0
        self.writer.close()
        return self.rows


def decode_parquet(data: bytes) -> list[dict]:
    """Parquet bytes -> records (for tests and checks)."""
    return pq.read_table(io.BytesIO(data)).to_pylist()
