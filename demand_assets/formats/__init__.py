"""Schemas and bytes: Avro object container files and Parquet files of archived records."""

from collections.abc import Callable, Iterable
from itertools import chain

from demand_assets.formats.avro import write_avro
from demand_assets.formats.parquet import write_parquet

FileWriter = Callable[[object, str, Iterable[list[dict]]], None]


def _avro_file(sink, record_type: str, chunks: Iterable[list[dict]]) -> None:
    write_avro(sink, record_type, chain.from_iterable(chunks))


def _parquet_file(sink, record_type: str, chunks: Iterable[list[dict]]) -> None:
    write_parquet(sink, record_type, chunks)


# How each archive format streams chunks of records into one file.
FILE_WRITERS: dict[str, FileWriter] = {"avro": _avro_file, "parquet": _parquet_file}
