"""The Athena engine against the moto server (which runs no SQL but serves the results a test
queues), and the SQL text of the checks transpiling for DuckDB."""

from __future__ import annotations

import boto3
import requests
import sqlglot

from demand_assets.checks.engines import AthenaEngine
from demand_assets.checks.sql import ROW_COUNT_SQL, per_format_checks
from demand_assets.records import RECORD_TYPES


def _queue_results(endpoint: str, rows: list[list[str]], columns: list[tuple[str, str]]):
    header = {"Data": [{"VarCharValue": name} for name, _ in columns]}
    body = {
        "account_id": "123456789012",
        "region": "us-east-1",
        "results": [
            {
                "rows": [header] + [{"Data": [{"VarCharValue": v} for v in r]} for r in rows],
                "column_info": [
                    {"Name": name, "Label": name, "Type": kind, "Nullable": "NULLABLE"}
                    for name, kind in columns
                ],
            }
        ],
    }
    requests.post(
        f"{endpoint}/moto-api/static/athena/query-results", json=body, timeout=10
    ).raise_for_status()


def test_athena_engine_polls_pages_and_types_results(aws):
    _queue_results(aws, [["2", "a_b_c,d_e_f"]], [("failing", "bigint"), ("samples", "varchar")])
    sleeps = []
    engine = AthenaEngine(
        boto3.client("athena"), "demand", "primary", "s3://results/", sleep=sleeps.append
    )
    result = engine.query("SELECT 1")
    assert result.rows == [{"failing": 2, "samples": "a_b_c,d_e_f"}]
    assert result.engine == "athena"


def test_every_check_parses_as_athena_sql_and_transpiles_to_duckdb():
    for record_type in RECORD_TYPES:
        for check in per_format_checks(record_type):
            sql = check.sql.format(table=f'"demand"."{record_type}_parquet"', day="2026-11-20")
            duckdb_sql = sqlglot.transpile(sql, read="athena", write="duckdb")[0]
            assert "2026-11-20" in duckdb_sql
    counts = ROW_COUNT_SQL.format(avro='"d"."sale_avro"', parquet='"d"."sale_parquet"', day="x")
    assert sqlglot.parse_one(counts, read="athena")


def test_types_without_pii_have_no_pii_check():
    names = {t: {c.name for c in per_format_checks(t)} for t in RECORD_TYPES}
    assert "deleted_rows_keep_no_pii" in names["demand"] | names["notification"]
    assert "deleted_rows_keep_no_pii" not in names["event"] | names["sale"]
