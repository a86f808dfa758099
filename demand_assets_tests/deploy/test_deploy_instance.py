"""deploy/dagster.yaml and deploy/workspace.yaml: the production instance and workspace."""

from __future__ import annotations

import copy
import tomllib

import pytest
from dagster._core.errors import DagsterInvalidConfigError
from dagster._core.workspace.config_schema import process_workspace_config
from dagster_postgres.utils import pg_url_from_config
from sqlalchemy import create_engine

from demand_assets.defs.tags import EXCLUSIVE_TAG, STREAM_PATH_TAG, TYPE_TAG
from demand_assets_tests.deploy.instance import (
    DEPLOY,
    REPO,
    class_configs,
    concurrency,
    instance_ref,
    load_yaml,
)

PRODUCTION = load_yaml(DEPLOY / "dagster.yaml")
LOCAL = load_yaml(REPO / "dagster.yaml")


def test_the_production_instance_loads_and_each_class_accepts_its_config(production_env):
    configs = class_configs(instance_ref(PRODUCTION))

    for storage in ("DagsterPostgresStorage", "PostgresRunStorage", "PostgresEventLogStorage"):
        postgres = configs[f"dagster_postgres.{storage}"]["postgres_db"]
        assert postgres["hostname"] == "dummy-dagster_pg_host"
        assert postgres["port"] == 5432
        assert postgres["params"] == {"sslmode": "require"}
    assert "dagster_postgres.PostgresScheduleStorage" in configs
    # The engine dagster-postgres builds from it loads its driver (no connection is made).
    url = pg_url_from_config(configs["dagster_postgres.DagsterPostgresStorage"])
    assert create_engine(url).dialect.driver == "psycopg2"

    # The stream path's runs in the code server, the others in ECS tasks (test_deploy_launcher).
    (launcher,) = configs["demand_assets.deploy_launcher.StreamPathRunLauncher"].values()
    assert launcher["task_definition"] == {"env": "DAGSTER_RUN_TASK_DEFINITION"}
    assert launcher["container_name"] == "run"
    assert launcher["secrets_tag"] is None
    assert launcher["use_current_ecs_task_config"] is True

    logs = configs["dagster_aws.s3.compute_log_manager.S3ComputeLogManager"]
    assert logs["bucket"] == "dummy-dagster_compute_logs_bucket"
    assert logs["prefix"] == "dummy-dagster_compute_logs_prefix"

    assert any(name.endswith(".QueuedRunCoordinator") for name in configs)


@pytest.mark.parametrize(
    "path, right, wrong",
    [
        (("run_launcher", "config", "ecs"), "task_definition", "task_defintion"),
        (("run_launcher", "config"), "ecs", "ecs_launcher"),
        (("compute_logs", "config"), "upload_interval", "upload_intervall"),
        (("storage", "postgres", "postgres_db"), "hostname", "hostnme"),
        ((), "run_monitoring", "run_monitorin"),
        (("run_retries",), "max_retries", "max_retrys"),
        (("concurrency", "pools"), "default_limit", "default_limt"),
    ],
)
def test_a_misspelled_key_fails_the_check(production_env, path, right, wrong):
    config = copy.deepcopy(PRODUCTION)
    node = config
    for key in path:
        node = node[key]
    node[wrong] = node.pop(right)

    with pytest.raises(DagsterInvalidConfigError):
        class_configs(instance_ref(config))


def test_a_class_key_is_checked_by_the_class_schema_not_the_instance_schema(production_env):
    config = copy.deepcopy(PRODUCTION)
    launcher = config["run_launcher"]["config"]["ecs"]
    launcher["container_nme"] = launcher.pop("container_name")

    ref = instance_ref(config)  # the instance schema takes any `config:` of a class

    with pytest.raises(DagsterInvalidConfigError, match="StreamPathRunLauncher"):
        class_configs(ref)


def test_a_missing_variable_fails_the_check(production_env, monkeypatch):
    monkeypatch.delenv("DAGSTER_PG_HOST")

    with pytest.raises(DagsterInvalidConfigError, match="DAGSTER_PG_HOST"):
        class_configs(instance_ref(PRODUCTION))


def test_production_keeps_the_local_concurrency_limits(production_env):
    assert PRODUCTION["concurrency"] == LOCAL["concurrency"]

    production = concurrency(instance_ref(PRODUCTION))
    assert production == concurrency(instance_ref(LOCAL))
    assert production.run_queue_config.max_concurrent_runs == 4
    # One archive_batches run at a time; rebuilds of a type, and each operation job, queue.
    assert list(production.run_queue_config.tag_concurrency_limits) == [
        {"key": STREAM_PATH_TAG, "limit": 1},
        {"key": TYPE_TAG, "value": {"applyLimitPerUniqueValue": True}, "limit": 1},
        {"key": EXCLUSIVE_TAG, "value": {"applyLimitPerUniqueValue": True}, "limit": 1},
    ]
    assert production.pool_config.default_pool_limit == 1


def test_the_workspace_points_at_the_code_server(monkeypatch):
    workspace = load_yaml(DEPLOY / "workspace.yaml")
    monkeypatch.setenv("DAGSTER_CODE_SERVER_HOST", "code.demand-assets-dev1.internal")

    result = process_workspace_config(workspace)

    assert result.success, result.errors
    (entry,) = result.value["load_from"]
    assert entry["grpc_server"] == {
        "host": "code.demand-assets-dev1.internal",
        "port": 4000,
        "location_name": "demand_assets",
    }
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["dagster"]
    assert entry["grpc_server"]["location_name"] == pyproject["code_location_name"]


def test_the_workspace_fails_without_its_variable(monkeypatch):
    monkeypatch.delenv("DAGSTER_CODE_SERVER_HOST", raising=False)

    assert not process_workspace_config(load_yaml(DEPLOY / "workspace.yaml")).success
