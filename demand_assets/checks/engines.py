"""Where check SQL runs: Athena in AWS, DuckDB over the same files on the local stack."""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from urllib.parse import urlparse

import duckdb
import fastavro
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import sqlglot

from demand_assets.formats.arrow import arrow_schema
from demand_assets.storage.layout import Layout


@dataclass
class QueryResult:
    rows: list[dict]
    bytes_scanned: int | None = None
    engine: str = ""


class QueryFailed(RuntimeError):
    pass


class AthenaEngine:
    """Runs SQL with Athena: start, poll with back-off until done or timed out, page results."""

    name = "athena"

    def __init__(
        self,
        client,
        database: str,
        workgroup: str = "primary",
        output: str | None = None,
        timeout_seconds: float = 300.0,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.client, self.database, self.workgroup = client, database, workgroup
        self.output, self.timeout_seconds, self.sleep = output, timeout_seconds, sleep

    def query(self, sql: str, **_) -> QueryResult:
        kwargs = {
            "QueryString": sql,
            "QueryExecutionContext": {"Database": self.database},
            "WorkGroup": self.workgroup,
        }
        if self.output:
            kwargs["ResultConfiguration"] = {"OutputLocation": self.output}
        execution_id = self.client.start_query_execution(**kwargs)["QueryExecutionId"]
        waited, delay = 0.0, 0.2
        while True:
            execution = self.client.get_query_execution(QueryExecutionId=execution_id)
            status = execution["QueryExecution"]["Status"]
            if status["State"] == "SUCCEEDED":
                break
            if status["State"] in ("FAILED", "CANCELLED"):
                reason = status.get("StateChangeReason", "no reason given")
                raise QueryFailed(f"Athena query {execution_id} {status['State']}: {reason}")
            if waited >= self.timeout_seconds:
                self.client.stop_query_execution(QueryExecutionId=execution_id)
                raise QueryFailed(
                    f"Athena query {execution_id} timed out after {self.timeout_seconds:.0f} s"
                )
            self.sleep(delay)
            waited += delay
            delay = min(delay * 2, 5.0)
        rows, columns = [], None
        paginator = self.client.get_paginator("get_query_results")
        for page in paginator.paginate(QueryExecutionId=execution_id):
            result_set = page["ResultSet"]
            if columns is None:
                columns = [
                    (c["Name"], c["Type"]) for c in result_set["ResultSetMetadata"]["ColumnInfo"]
                ]
                data = result_set["Rows"][1:]  # the first row of the first page is the header
            else:
                data = result_set["Rows"]
            for row in data:
                values = [cell.get("VarCharValue") for cell in row["Data"]]
                rows.append(
                    {name: _typed(v, t) for (name, t), v in zip(columns, values, strict=True)}
                )
        statistics = execution["QueryExecution"].get("Statistics", {})
        return QueryResult(rows, statistics.get("DataScannedInBytes"), self.name)


def _typed(value: str | None, athena_type: str):
    if value is None:
        return None
    if athena_type in ("bigint", "integer", "int", "smallint", "tinyint"):
        return int(value)
    if athena_type in ("double", "float", "real", "decimal"):
        return float(value)
    if athena_type == "boolean":
        return value == "true"
    return value


class DuckDBEngine:
    """Runs the same SQL with DuckDB over the archive's files, read through pyarrow.

    DuckDB has no httpfs or Avro extension offline: Parquet partitions are registered as
    pyarrow datasets on S3, Avro partitions are streamed through fastavro into Arrow. Only the
    partition a check asks about is loaded, and only the columns its SQL names, so a check of a
    partition of millions of rows holds a few columns, never the rows as Python objects.
    """

    name = "duckdb"
    AVRO_CHUNK_RECORDS = 16_384

    def __init__(self, filesystem: pafs.FileSystem, bucket: str, layout: Layout):
        self.filesystem, self.bucket, self.layout = filesystem, bucket, layout
        # (type, format, day) -> the columns loaded and their table; one engine, one evaluation
        self._loaded: dict[tuple[str, str, str], tuple[frozenset[str], pa.Table]] = {}

    def query(self, sql: str, *, day: str) -> QueryResult:
        expression = sqlglot.parse_one(sql, read="athena")
        connection = duckdb.connect()
        try:
            for table in expression.find_all(sqlglot.exp.Table):
                name = table.name
                table.set("db", None)
                table.set("catalog", None)
                record_type, fmt = name.rsplit("_", 1)
                columns = referenced_columns(expression, record_type)
                connection.register(name, self._table(record_type, fmt, day, columns))
            cursor = connection.execute(expression.sql(dialect="duckdb"))
            names = [d[0] for d in cursor.description]
            rows = [dict(zip(names, values, strict=True)) for values in cursor.fetchall()]
        finally:
            connection.close()
        return QueryResult(rows, None, self.name)

    def _table(self, record_type: str, fmt: str, day: str, columns: frozenset[str]) -> pa.Table:
        """One partition's table at a time, with the columns of every check of its type, so
        the checks of one table load it once."""
        key = (record_type, fmt, day)
        loaded = self._loaded.get(key)
        if loaded is None or not columns <= loaded[0]:
            columns = columns | check_columns(record_type) | (loaded[0] if loaded else frozenset())
            self._loaded.clear()  # free the previous table before reading the next
            loaded = (columns, self._partition(record_type, fmt, day, columns))
            self._loaded[key] = loaded
        return loaded[1]

    def _partition(self, record_type: str, fmt: str, day: str, columns: frozenset[str]) -> pa.Table:
        prefix = self.layout.partition_prefix(fmt, record_type, day)
        selector = pafs.FileSelector(f"{self.bucket}/{prefix}", allow_not_found=True)
        paths = [
            info.path
            for info in self.filesystem.get_file_info(selector)
            if info.type == pafs.FileType.File
            and not info.base_name.startswith(("_", "."))
            and info.base_name.endswith(f".{fmt}")
        ]
        schema = pa.schema([f for f in arrow_schema(record_type) if f.name in columns])
        if not columns:  # count(*) alone: rows, no values
            rows = self._count(fmt, paths)
            table = pa.table({"partition_date": pa.array([day] * rows, pa.string())})
            return table
        if fmt == "parquet" and paths:
            dataset = ds.dataset(paths, filesystem=self.filesystem, format="parquet")
            table = dataset.to_table(columns=schema.names)
        else:
            batches = [b for path in paths for b in self._avro_batches(path, schema)]
            table = pa.Table.from_batches(batches, schema=schema)
        return table.append_column("partition_date", pa.array([day] * table.num_rows, pa.string()))

    def _avro_batches(self, path: str, schema: pa.Schema) -> Iterator[pa.RecordBatch]:
        names = schema.names
        with self.filesystem.open_input_stream(path, buffer_size=1 << 20) as stream:
            chunk: list[dict] = []
            for record in fastavro.reader(_Readable(stream)):
                chunk.append({name: record[name] for name in names})
                if len(chunk) == self.AVRO_CHUNK_RECORDS:
                    yield pa.RecordBatch.from_pylist(chunk, schema=schema)
                    chunk = []
            if chunk:
                yield pa.RecordBatch.from_pylist(chunk, schema=schema)

    def _count(self, fmt: str, paths: list[str]) -> int:
        if fmt == "parquet":
            if not paths:
                return 0
            return ds.dataset(paths, filesystem=self.filesystem, format="parquet").count_rows()
        rows = 0
        for path in paths:
            with self.filesystem.open_input_stream(path, buffer_size=1 << 20) as stream:
                blocks = fastavro.block_reader(_Readable(stream))
                rows += sum(block.num_records for block in blocks)
        return rows


class _Readable:
    """A forward-only stream as fastavro reads it: `read`, and `tell` counted here (pyarrow's
    S3 input streams only tell where they can seek)."""

    def __init__(self, stream) -> None:
        self.stream, self.position = stream, 0

    def read(self, size: int = -1) -> bytes:
        data = self.stream.read() if size is None or size < 0 else self.stream.read(size)
        self.position += len(data)
        return data

    def tell(self) -> int:
        return self.position


@functools.cache
def check_columns(record_type: str) -> frozenset[str]:
    """The columns the per-format checks of a record type name."""
    from demand_assets.checks.sql import per_format_checks

    columns: frozenset[str] = frozenset()
    for check in per_format_checks(record_type):
        sql = check.sql.format(table=f"{record_type}_parquet", day="2000-01-01")
        columns |= referenced_columns(sqlglot.parse_one(sql, read="athena"), record_type)
    return columns


def referenced_columns(expression: sqlglot.exp.Expression, record_type: str) -> frozenset[str]:
    """The record type's top-level fields that a query names (all of them for `SELECT *`;
    none for `count(*)` alone)."""
    fields = {f.name for f in arrow_schema(record_type)}
    stars = expression.find_all(sqlglot.exp.Star)
    if any(not isinstance(star.parent, sqlglot.exp.Count) for star in stars):
        return frozenset(fields)
    return frozenset(i.name for i in expression.find_all(sqlglot.exp.Identifier)) & fields


def s3_filesystem() -> pafs.S3FileSystem:
    """pyarrow's S3 filesystem; pyarrow ignores AWS_ENDPOINT_URL, so it is passed on here."""
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    if not endpoint:
        return pafs.S3FileSystem(region=region)
    parsed = urlparse(endpoint)
    return pafs.S3FileSystem(
        region=region,
        endpoint_override=parsed.netloc,
        scheme=parsed.scheme or "http",
        access_key=os.environ.get("AWS_ACCESS_KEY_ID"),
        secret_key=os.environ.get("AWS_SECRET_ACCESS_KEY"),
        session_token=os.environ.get("AWS_SESSION_TOKEN"),
    )
