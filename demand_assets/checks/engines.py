"""Where check SQL runs: Athena in AWS, DuckDB over the same files on the local stack."""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlparse

import duckdb
import fastavro
import pyarrow as pa
import pyarrow.fs as pafs
import sqlglot

from demand_assets.formats.arrow import arrow_schema, to_table
from demand_assets.formats.parquet import ParquetWriter
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
    """Runs the same SQL with DuckDB over the archive's files.

    DuckDB has no httpfs or Avro extension offline, so the partition a check asks about is
    staged on local disk as Parquet: Parquet files are copied as they are, Avro files are
    streamed through fastavro into a Parquet file a chunk at a time. DuckDB's own Parquet
    reader then scans the files, reading only the columns and struct fields the SQL names, so
    checking a partition of millions of rows holds neither its rows nor its columns in memory.
    Staged files live as long as the engine (one check evaluation).
    """

    name = "duckdb"
    AVRO_CHUNK_RECORDS = 16_384

    def __init__(self, filesystem: pafs.FileSystem, bucket: str, layout: Layout):
        self.filesystem, self.bucket, self.layout = filesystem, bucket, layout
        self._staging = tempfile.TemporaryDirectory(prefix="demand-checks-")
        self._staged: dict[tuple[str, str, str], list[str]] = {}

    def query(self, sql: str, *, day: str) -> QueryResult:
        expression = sqlglot.parse_one(sql, read="athena")
        connection = duckdb.connect()
        try:
            for table in expression.find_all(sqlglot.exp.Table):
                name = table.name
                table.set("db", None)
                table.set("catalog", None)
                record_type, fmt = name.rsplit("_", 1)
                self._create_view(connection, name, record_type, fmt, day)
            cursor = connection.execute(expression.sql(dialect="duckdb"))
            names = [d[0] for d in cursor.description]
            rows = [dict(zip(names, values, strict=True)) for values in cursor.fetchall()]
        finally:
            connection.close()
        return QueryResult(rows, None, self.name)

    def _create_view(self, connection, name: str, record_type: str, fmt: str, day: str) -> None:
        paths = self._stage(record_type, fmt, day)
        if paths:
            files = ", ".join(f"'{path}'" for path in paths)
            source = f"read_parquet([{files}])"
        else:
            connection.register(
                f"{name}_empty", pa.Table.from_pylist([], arrow_schema(record_type))
            )
            source = f'"{name}_empty"'
        connection.execute(
            f"CREATE VIEW \"{name}\" AS SELECT *, '{day}' AS partition_date FROM {source}"
        )

    def _stage(self, record_type: str, fmt: str, day: str) -> list[str]:
        key = (record_type, fmt, day)
        if key not in self._staged:
            prefix = self.layout.partition_prefix(fmt, record_type, day)
            selector = pafs.FileSelector(f"{self.bucket}/{prefix}", allow_not_found=True)
            remote = [
                info.path
                for info in self.filesystem.get_file_info(selector)
                if info.type == pafs.FileType.File
                and not info.base_name.startswith(("_", "."))
                and info.base_name.endswith(f".{fmt}")
            ]
            local = []
            for i, path in enumerate(remote):
                target = os.path.join(self._staging.name, f"{record_type}-{fmt}-{day}-{i}.parquet")
                if fmt == "parquet":
                    self._copy(path, target)
                else:
                    self._avro_to_parquet(path, target, record_type)
                local.append(target)
            self._staged[key] = local
        return self._staged[key]

    def _copy(self, path: str, target: str) -> None:
        with self.filesystem.open_input_stream(path) as source, open(target, "wb") as out:
            while chunk := source.read(1 << 20):
                out.write(chunk)

    def _avro_to_parquet(self, path: str, target: str, record_type: str) -> None:
        with (
            self.filesystem.open_input_stream(path, buffer_size=1 << 20) as source,
            open(target, "wb") as out,
        ):
            writer = ParquetWriter(out, record_type)
            chunk: list[dict] = []
            for record in fastavro.reader(_Readable(source)):
                chunk.append(record)
                if len(chunk) == self.AVRO_CHUNK_RECORDS:
                    writer.write(to_table(record_type, chunk))
                    chunk = []
            writer.write(to_table(record_type, chunk))
            writer.close()


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
