"""Avro object container files, one record type per file, schema embedded.

Rows are encoded column-wise from the batch's Arrow table (formats.avro_columns); fastavro
writes the container header and reads files back. The sync marker is derived from the content,
so the same records always give the same bytes.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterable
from functools import cache

import fastavro
import pyarrow as pa

from demand_assets.formats.arrow import to_table
from demand_assets.formats.avro_columns import block_bytes, blocks, encode_rows
from demand_assets.records.schemas import avro_schema

DEFAULT_CODEC = "snappy"  # Athena reads snappy (and deflate, null) Avro
CODECS = ("null", "deflate", "snappy")


@cache
def parsed_schema(record_type: str) -> dict:
    return fastavro.parse_schema(avro_schema(record_type))


def encode_avro(record_type: str, records: list[dict], codec: str = DEFAULT_CODEC) -> bytes:
    """Records of one type (validated) -> Avro OCF bytes."""
    out = io.BytesIO()
    write_avro(out, record_type, [to_table(record_type, records)], codec)
    return out.getvalue()


def write_avro(
    sink, record_type: str, tables: Iterable[pa.Table], codec: str = DEFAULT_CODEC
) -> int:
    """Stream Arrow tables of records into one Avro OCF on a binary file; returns rows."""
    schema = avro_schema(record_type)
    return write_avro_rows(sink, record_type, (encode_rows(t, schema) for t in tables), codec)


def write_avro_rows(
    sink, record_type: str, encoded: Iterable[pa.Array], codec: str = DEFAULT_CODEC
) -> int:
    """Write rows already encoded by `encode_rows` (slices welcome) as one Avro OCF."""
    writer = AvroWriter(sink, record_type, codec)
    for rows in encoded:
        writer.write_rows(rows)
    return writer.close()


class AvroWriter:
    """One Avro OCF written incrementally: a block per megabyte of encoded rows."""

    def __init__(self, sink, record_type: str, codec: str = DEFAULT_CODEC):
        if codec not in CODECS:
            raise ValueError(f"Avro codec {codec!r} is not one of {CODECS}")
        self.sink, self.record_type, self.codec = sink, record_type, codec
        self.schema = avro_schema(record_type)
        self.marker: bytes | None = None
        self.rows = 0

    def write(self, table: pa.Table) -> None:
        self.write_rows(encode_rows(table, self.schema))

    def write_rows(self, encoded: pa.Array) -> None:
        for count, payload in blocks(encoded):
            if self.marker is None:
                self.marker = _sync_marker(self.record_type, payload)
                _header(self.sink, self.record_type, self.codec, self.marker)
            self.sink.write(block_bytes(count, payload, self.codec, self.marker))
            self.rows += count

    def close(self) -> int:
        if self.marker is None:  # no rows: a valid, empty container
            self.marker = _sync_marker(self.record_type, b"")
            _header(self.sink, self.record_type, self.codec, self.marker)
        return self.rows


def _sync_marker(record_type: str, first_block: bytes) -> bytes:
    return hashlib.sha256(record_type.encode() + b"\0" + first_block).digest()[:16]


def _header(sink, record_type: str, codec: str, marker: bytes) -> None:
    fastavro.writer(sink, parsed_schema(record_type), [], codec=codec, sync_marker=marker)


def decode_avro(data: bytes) -> list[dict]:
    """Avro OCF bytes -> records (for tests and checks)."""
    return list(fastavro.reader(io.BytesIO(data)))


def avro_codec(data: bytes) -> str:
    """The codec an OCF was written with."""
    return fastavro.reader(io.BytesIO(data)).codec
