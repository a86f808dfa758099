"""Glue and Athena failing on the wire. Glue: partition registration fails in an archive run
after the data is written; the data stays once, and the next archive run of that type
registers every day Glue lacks. Athena: the check engine against moto's Athena (which runs no
SQL; a test queues the results), with throttling, server errors, a FAILED query and a query
that never finishes."""

from __future__ import annotations

import dataclasses

import boto3
import dagster as dg
import orjson
import pytest
import requests
from botocore.exceptions import ClientError

from demand_assets.checks.engines import AthenaEngine, QueryFailed
from demand_assets.checks.sql import per_format_checks
from demand_assets.config import Settings
from demand_assets.defs.catalog import glue_partitions_key
from demand_assets_tests.defs.pipeline import archived
from demand_assets_tests.faults.pipeline import FaultPipeline as Pipeline
from demand_assets_tests.faults.proxy import Fault
from demand_assets_tests.hardening import case, failure_text, generated, table

GLUE_FAULTS = [
    case(
        "BatchCreatePartition InternalServiceException once",
        Fault("glue", "BatchCreatePartition", code="InternalServiceException"),
        True,
        None,
    ),
    case(
        "BatchCreatePartition InternalServiceException outage",
        Fault("glue", "BatchCreatePartition", code="InternalServiceException", times=None),
        False,
        "InternalServiceException",
    ),
    case(
        "GetTable ThrottlingException outage",
        Fault("glue", "GetTable", code="ThrottlingException", status=400, times=None),
        False,
        "ThrottlingException",
    ),
]


def _registered(glue, settings: Settings, table_name: str) -> set[str]:
    """The days registered for a table (none, if the table does not exist yet)."""
    pages = glue.get_paginator("get_partitions").paginate(
        DatabaseName=settings.glue_database, TableName=table_name
    )
    try:
        return {p["Values"][0] for page in pages for p in page["Partitions"]}
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "EntityNotFoundException":
            return set()
        raise


def _materialized(result: dg.ExecuteInProcessResult) -> dict[str, set[str]]:
    """asset key -> the partitions the run materialized."""
    out: dict[str, set[str]] = {}
    for event in result.get_asset_materialization_events():
        materialization = event.step_materialization_data.materialization
        out.setdefault(materialization.asset_key.to_user_string(), set()).add(
            materialization.partition
        )
    return out


@pytest.mark.parametrize(("fault", "absorbed", "named"), GLUE_FAULTS)
def test_glue_fault_during_a_sensor_run(fault, absorbed, named, proxy, aws, settings, s3, kinesis):
    pipeline = Pipeline.build(settings, s3, kinesis)
    glue = boto3.client("glue", endpoint_url=aws)
    pipeline.put(generated(40, seed=41))
    (request,) = pipeline.tick().run_requests

    (fault,) = proxy.add(fault)
    first = pipeline.run(request)
    proxy.clear()
    assert fault.hits, f"the fault never fired: {fault.describe()}"
    days = pipeline.days()
    written = _materialized(first)
    assert written.get("demand") == days  # the data step wrote every day before registration
    assert not pipeline.pending(), "the data is written: its batch is no longer pending"
    glue_key = glue_partitions_key("demand").to_user_string()
    if absorbed:
        assert first.success, failure_text(first)
        assert written.get(glue_key) == days
        outcome = "absorbed by SDK retries"
    else:
        assert not first.success and named in failure_text(first), failure_text(first)
        assert glue_key not in written
        assert not _registered(glue, settings, "demand_parquet") & days
        pipeline.verdict()  # the data is there, once, queryable as soon as it is registered
        # The next archive run of the type registers every day with data that Glue lacks.
        pipeline.put(generated(10, seed=43))
        (request,) = pipeline.tick().run_requests
        retried = pipeline.run(request)
        assert retried.success, failure_text(retried)
        assert _materialized(retried)[glue_key] >= days
        outcome = (
            f"data written, registration failed naming {named!r}; the next run registered every day"
        )
    days = pipeline.days()
    for fmt in ("avro", "parquet"):
        assert _registered(glue, settings, f"demand_{fmt}") == days, fmt
    table(
        "Glue fault during an archive run",
        ("fault", "outcome", "archive"),
        [(fault.describe(), outcome, pipeline.drained() + f"; {len(days)} days registered")],
    )


# -- Athena -----------------------------------------------------------------------------------


def _queue(endpoint: str, *results: list[tuple[str, str, str]]) -> None:
    """Queue query results on moto's Athena: each result one row of (name, type, value)."""
    body = {
        "results": [
            {
                "rows": [
                    {"Data": [{"VarCharValue": name} for name, _, _ in columns]},
                    {"Data": [{"VarCharValue": value} for _, _, value in columns]},
                ],
                "column_info": [
                    {"Name": name, "Label": name, "Type": kind, "Nullable": "NULLABLE"}
                    for name, kind, _ in columns
                ],
            }
            for columns in results
        ]
    }
    response = requests.post(
        f"{endpoint}/moto-api/static/athena/query-results", json=body, timeout=10
    )
    response.raise_for_status()


def _execution(state: str, reason: str = "") -> bytes:
    status = {"State": state}
    if reason:
        status["StateChangeReason"] = reason
    return orjson.dumps({"QueryExecution": {"QueryExecutionId": "q", "Status": status}})


ATHENA_FAULTS = [
    # (fault, whether the engine copes, what its error names)
    case(
        "StartQueryExecution TooManyRequestsException once",
        Fault("athena", "StartQueryExecution", code="TooManyRequestsException", status=400),
        True,
        None,
    ),
    case(
        "StartQueryExecution TooManyRequestsException outage",
        Fault(
            "athena", "StartQueryExecution", code="TooManyRequestsException", status=400, times=None
        ),
        False,
        "TooManyRequestsException",
    ),
    case(
        "GetQueryResults InternalServerException outage",
        Fault("athena", "GetQueryResults", code="InternalServerException", times=None),
        False,
        "InternalServerException",
    ),
    case(
        "the query FAILED (answered by the proxy)",
        Fault(
            "athena",
            "GetQueryExecution",
            action="respond",
            body=_execution("FAILED", "HIVE_BAD_DATA: Error parsing field value"),
        ),
        False,
        "HIVE_BAD_DATA",
    ),
    case(
        "the query never finishes (RUNNING until the engine's timeout)",
        Fault(
            "athena", "GetQueryExecution", action="respond", times=None, body=_execution("RUNNING")
        ),
        False,
        "timed out after 3 s",
    ),
]


@pytest.mark.parametrize(("fault", "copes", "named"), ATHENA_FAULTS)
def test_athena_fault_during_a_check_query(fault, copes, named, proxy, aws):
    engine = AthenaEngine(
        boto3.client("athena"),
        "demand",
        "primary",
        "s3://test-archive/athena-results/",
        timeout_seconds=3,
        sleep=lambda seconds: None,
    )
    row = [("failing", "bigint", "0"), ("samples", "varchar", "")]
    _queue(aws, row, row)

    (fault,) = proxy.add(fault)
    try:
        result, failure = engine.query("SELECT 1"), None
    except (ClientError, QueryFailed) as exc:
        result, failure = None, f"{type(exc).__name__}: {exc}"
    proxy.clear()
    assert fault.hits, f"the fault never fired: {fault.describe()}"
    if copes:
        assert failure is None and result.rows[0]["failing"] == 0, failure
        outcome = "absorbed by SDK retries"
    else:
        assert failure is not None and named in failure, failure
        outcome = f"check query failed: {failure[:80]}"
        if "timed out" in named:
            assert proxy.count("athena", "StopQueryExecution") == 1, "the query was not stopped"
    again = engine.query("SELECT 1")  # the next check (or the check's retry) runs
    assert again.rows and again.rows[0]["failing"] == 0
    table(
        "Athena fault during a check query",
        ("fault", "outcome", "then"),
        [(fault.describe(), outcome, "the next query succeeded")],
    )


def test_checks_on_athena_fail_clearly_and_pass_when_athena_is_back(
    proxy, aws, settings, s3, kinesis
):
    settings = dataclasses.replace(
        settings, query_engine="athena", athena_output="s3://test-archive/athena-results/"
    )
    pipeline = Pipeline.build(settings, s3, kinesis)
    pipeline.put(generated(30, seed=42))
    pipeline.settle()
    day = sorted(pipeline.keys("parquet/demand/"))[0].split("partition_date=")[1][:10]
    tags = {"dagster/asset_partition_range_start": day, "dagster/asset_partition_range_end": day}
    rebuild = dg.RunRequest(asset_selection=[dg.AssetKey("demand")], tags=tags)

    (fault,) = proxy.add(
        Fault("athena", "StartQueryExecution", code="InternalServerException", times=None)
    )
    failed = pipeline.run(rebuild)
    proxy.clear()
    assert not failed.success and "InternalServerException" in failure_text(failed)
    assert "demand" in {e.asset_key.path[-1] for e in failed.get_asset_materialization_events()}

    rows = sum(1 for k in pipeline.keys(f"parquet/demand/partition_date={day}/") if "/_" not in k)
    assert rows == 1  # the rebuild compacted the day before its checks ran
    failing = [("failing", "bigint", "0"), ("samples", "varchar", "")]
    landed = _landed_changes(pipeline, day)
    _queue(
        aws,
        [("avro_rows", "bigint", str(landed)), ("parquet_rows", "bigint", str(landed))],
        *[failing] * (2 * len(per_format_checks("demand"))),
    )
    passed = pipeline.run(rebuild)
    assert passed.success, failure_text(passed)
    evaluations = {e.check_name: e.passed for e in passed.get_asset_check_evaluations()}
    assert evaluations and all(evaluations.values()), evaluations
    table(
        "Athena outage during a rebuild's checks",
        ("fault", "outcome", "archive"),
        [
            (
                fault.describe(),
                "checks failed naming InternalServerException; the rebuild again: checks passed",
                pipeline.verdict(),
            )
        ],
    )


def _landed_changes(pipeline: Pipeline, day: str) -> int:
    return sum(1 for t, d, _ in archived(pipeline.s3, pipeline.settings)["parquet"] if d == day)
