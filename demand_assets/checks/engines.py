"""Where check SQL runs: Athena in AWS, DuckDB over the same files on the local stack."""

from __future__ import annotations

import io
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlparse

import duckdb
import fastavro
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import sqlglot

from demand_assets.formats.arrow import to_table
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
    pyarrow datasets on S3, Avro partitions are read with fastavro into Arrow tables. Only the
    partition a check asks about is loaded.
    """

    name = "duckdb"

    def __init__(self, filesystem: pafs.FileSystem, bucket: str, layout: Layout):
        self.filesystem, self.bucket, self.layout = filesystem, bucket, layout
        self._loaded: dict[tuple[str, str, str], pa.Table] = {}  # one engine, one evaluation

    def query(self, sql: str, *, day: str) -> QueryResult:
        expression = sqlglot.parse_one(sql, read="athena")
        connection = duckdb.connect()
        try:
            for table in expression.find_all(sqlglot.exp.Table):
                name = table.name
                table.set("db", None)
                table.set("catalog", None)
                record_type, fmt = name.rsplit("_", 1)
                key = (record_type, fmt, day)
                if key not in self._loaded:
                    self._loaded[key] = self._partition(record_type, fmt, day)
                connection.register(name, self._loaded[key])
            cursor = connection.execute(expression.sql(dialect="duckdb"))
            names = [d[0] for d in cursor.description]
            rows = [dict(zip(names, values, strict=True)) for values in cursor.fetchall()]
        finally:
            connection.close()
        return QueryResult(rows, None, self.name)

    def _partition(self, record_type: str, fmt: str, day: str) -> pa.Table:
        prefix = self.layout.partition_prefix(fmt, record_type, day)
        selector = pafs.FileSelector(f"{self.bucket}/{prefix}", allow_not_found=True)
        paths = [
            info.path
            for info in self.filesystem.get_file_info(selector)
            if info.type == pafs.FileType.File
            and not info.base_name.startswith(("_", "."))
            and info.base_name.endswith(f".{fmt}")
        ]
        if fmt == "parquet":
            table = ds.dataset(paths, filesystem=self.filesystem, format="parquet").to_table()
            if not paths:
                table = to_table(record_type, [])
        else:
            records = []
            for path in paths:
                with self.filesystem.open_input_file(path) as handle:
                    records += fastavro.reader(io.BytesIO(handle.read()))
            table = to_table(record_type, records)
        return table.append_column("partition_date", pa.array([day] * table.num_rows, pa.string()))


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
