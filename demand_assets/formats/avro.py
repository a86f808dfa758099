"""Avro object container files (fastavro), one record type per file, schema embedded."""

from __future__ import annotations

import io
from collections.abc import Iterable
from functools import cache

import fastavro

from demand_assets.records.schemas import avro_schema

DEFAULT_CODEC = "snappy"  # Athena reads snappy (and deflate, null) Avro


@cache
def parsed_schema(record_type: str) -> dict:
    return fastavro.parse_schema(avro_schema(record_type))


def encode_avro(record_type: str, records: Iterable[dict], codec: str = DEFAULT_CODEC) -> bytes:
    """Records of one type (validated) -> Avro OCF bytes."""
    out = io.BytesIO()
    write_avro(out, record_type, records, codec)
    return out.getvalue()


def write_avro(
    fileobj, record_type: str, records: Iterable[dict], codec: str = DEFAULT_CODEC
) -> None:
    """Stream records into a writable binary file object as one Avro OCF."""
    fastavro.writer(fileobj, parsed_schema(record_type), records, codec=codec, validator=False)


def decode_avro(data: bytes) -> list[dict]:
    """Avro OCF bytes -> records (for tests and checks)."""
    return list(fastavro.reader(io.BytesIO(data)))


def avro_codec(data: bytes) -> str:
    """The codec an OCF was written with."""
    return fastavro.reader(io.BytesIO(data)).codec
