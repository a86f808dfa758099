"""demand_assets/deploy_launcher.py: the production run launcher. The stream path's runs go to
Dagster's DefaultRunLauncher (a subprocess of the code server), every other run to the
EcsRunLauncher; whatever later concerns a run goes to the launcher that started it.

Built from deploy/dagster.yaml by Dagster's own machinery, against the emulated AWS account
(the EcsRunLauncher describes its task definition when it is built); routed with launchers that
record what they are asked; and, with a real gRPC code server, a stream-path run launched,
health-checked by run monitoring and terminated through the launcher built from dagster.yaml."""

from __future__ import annotations

import logging
import time

import boto3
import dagster as dg
import pytest
from dagster._check import CheckError
from dagster._core.launcher import (
    CheckRunHealthResult,
    LaunchRunContext,
    ResumeRunContext,
    RunLauncher,
    WorkerStatus,
)
from dagster._core.storage.tags import GRPC_INFO_TAG
from dagster._core.test_utils import create_run_for_test, poll_for_finished_run
from dagster._core.workspace.context import WorkspaceProcessContext
from dagster._core.workspace.load_target import ModuleTarget
from dagster._daemon.monitoring.run_monitoring import execute_run_monitoring_iteration
from dagster._grpc.constants import GrpcServerCommand
from dagster_aws.ecs import EcsRunLauncher

from demand_assets.config import Settings
from demand_assets.definitions import build_definitions
from demand_assets.defs.rebuilds import rebuild_request
from demand_assets.defs.tags import STREAM_PATH_TAG, TYPE_TAG, partition_range_tags
from demand_assets.deploy_launcher import NOT_CHECKED, StreamPathRunLauncher
from demand_assets_tests.deploy import launcher_jobs
from demand_assets_tests.deploy.instance import DEPLOY, REPO, instance_ref, load_yaml

PRODUCTION = load_yaml(DEPLOY / "dagster.yaml")
RUN_FAMILY = "demand-assets-test-run"


@pytest.fixture
def run_task_definition(aws, production_env, monkeypatch) -> str:
    """The run task definition in the emulated account, as Terraform registers it (ecs.tf)."""
    arn = register_run_task_definition(container="run")
    monkeypatch.setenv("DAGSTER_RUN_TASK_DEFINITION", RUN_FAMILY)
    return arn


def register_run_task_definition(container: str) -> str:
    response = boto3.client("ecs").register_task_definition(
        family=RUN_FAMILY,
        requiresCompatibilities=["FARGATE"],
        networkMode="awsvpc",
        cpu="1024",
        memory="4096",
        containerDefinitions=[{"name": container, "image": "demand-assets:test"}],
    )
    return response["taskDefinition"]["taskDefinitionArn"]


# Built from deploy/dagster.yaml ------------------------------------------------------------------


def test_the_production_launcher_builds_from_dagster_yaml(run_task_definition):
    launcher = instance_ref(PRODUCTION).run_launcher

    assert isinstance(launcher, StreamPathRunLauncher)
    assert isinstance(launcher.default_launcher, dg.DefaultRunLauncher)
    ecs = launcher.ecs_launcher
    assert isinstance(ecs, EcsRunLauncher)
    # The ECS launcher is configured as it was when it launched every run.
    assert ecs.task_definition == run_task_definition  # the family, resolved by ECS
    assert ecs.container_name == "run"
    assert ecs.use_current_ecs_task_config is True
    assert ecs.secrets_tags == []
    assert ecs.propagate_tags == {"allow_list": ["demand/record_type", "dagster/partition"]}
    # A run worker's instance is rebuilt from this (DagsterInstance.get_ref).
    assert launcher.inst_data.module_name == "demand_assets.deploy_launcher"
    assert launcher.inst_data.class_name == "StreamPathRunLauncher"
    assert isinstance(launcher.inst_data.rehydrate(), StreamPathRunLauncher)


def test_building_it_checks_the_run_task_definition(aws, production_env, monkeypatch):
    register_run_task_definition(container="runner")  # not dagster.yaml's container_name
    monkeypatch.setenv("DAGSTER_RUN_TASK_DEFINITION", RUN_FAMILY)

    with pytest.raises(CheckError, match="Cannot override container 'run'"):
        instance_ref(PRODUCTION).run_launcher  # noqa: B018


def test_routing_is_by_the_stream_path_tag_of_the_real_jobs():
    """The tags each kind of run of this project carries, taken from its definitions."""
    defs = build_definitions(Settings(bucket="b", prefix="p", stream_name="s"))
    archive = defs.resolve_job_def("archive_batches").run_tags
    compaction = rebuild_request("demand", "2026-11-20", "2026-11-20", "k", {}, "nightly").tags
    ranged = rebuild_request("demand", "2026-11-01", "2026-11-20", "k", {}, "nightly").tags
    runs = {
        "archive_batches": (archive, "default"),
        "compaction": (compaction, "ecs"),
        "compaction of a range": (ranged, "ecs"),
        "backfill": (partition_range_tags("2026-11-01", "2026-11-20"), "ecs"),
        "bootstrap_from_table": (defs.resolve_job_def("bootstrap_from_table").run_tags, "ecs"),
        "replay_errors": (defs.resolve_job_def("replay_errors").run_tags, "ecs"),
        "a run launched by hand": ({}, "ecs"),
    }
    launcher = StreamPathRunLauncher(ecs=Recorder("ecs"), default=Recorder("default"))

    assert STREAM_PATH_TAG in archive
    for kind, (tags, expected) in runs.items():
        run = dg.DagsterRun(job_name=kind, tags=tags)
        assert launcher.launcher_for(run).name == expected, kind


# Routing, with launchers that record what they are asked -----------------------------------------


class Recorder(RunLauncher):
    """A delegate that records each call. `checks_health`: whether it supports worker health
    checks (the EcsRunLauncher does, the DefaultRunLauncher does not)."""

    def __init__(self, name: str, checks_health: bool = False):
        super().__init__()
        self.name = name
        self.checks_health = checks_health
        self.calls: list[tuple[str, str]] = []

    def launch_run(self, context: LaunchRunContext) -> None:
        self.calls.append(("launch", context.dagster_run.run_id))

    def terminate(self, run_id: str) -> bool:
        self.calls.append(("terminate", run_id))
        return True

    @property
    def supports_check_run_worker_health(self) -> bool:
        return self.checks_health

    def check_run_worker_health(self, run: dg.DagsterRun) -> CheckRunHealthResult:
        self.calls.append(("health", run.run_id))
        return CheckRunHealthResult(WorkerStatus.FAILED, f"{self.name}: the task stopped")

    def get_run_worker_debug_info(self, run, include_container_logs=True) -> str | None:
        self.calls.append(("debug", run.run_id))
        return self.name

    @property
    def supports_resume_run(self) -> bool:
        return self.checks_health

    def resume_run(self, context: ResumeRunContext) -> None:
        self.calls.append(("resume", context.dagster_run.run_id))

    def dispose(self) -> None:
        self.calls.append(("dispose", ""))


@pytest.fixture
def routed():
    """An instance whose run launcher routes to two recorders."""
    ecs, default = Recorder("ecs", checks_health=True), Recorder("default")
    with dg.instance_for_test() as instance:
        launcher = StreamPathRunLauncher(ecs=ecs, default=default)
        launcher.register_instance(instance)
        yield instance, launcher, ecs, default


def stream_run(instance) -> dg.DagsterRun:
    return create_run_for_test(instance, job_name="archive_batches", tags={STREAM_PATH_TAG: "x"})


def compaction_run(instance) -> dg.DagsterRun:
    return create_run_for_test(instance, job_name="compact_partitions", tags={TYPE_TAG: "demand"})


def test_a_stream_path_run_is_launched_by_the_default_launcher_a_compaction_by_ecs(routed):
    instance, launcher, ecs, default = routed
    stream, compaction = stream_run(instance), compaction_run(instance)

    launcher.launch_run(LaunchRunContext(stream, workspace=None))
    launcher.launch_run(LaunchRunContext(compaction, workspace=None))

    assert default.calls == [("launch", stream.run_id)]
    assert ecs.calls == [("launch", compaction.run_id)]


def test_terminate_goes_to_the_launcher_that_started_the_run(routed):
    instance, launcher, ecs, default = routed
    stream, compaction = stream_run(instance), compaction_run(instance)

    assert launcher.terminate(stream.run_id) is True
    assert launcher.terminate(compaction.run_id) is True
    assert launcher.terminate("no-such-run") is False

    assert default.calls == [("terminate", stream.run_id)]
    assert ecs.calls == [("terminate", compaction.run_id)]


def test_the_run_is_looked_up_on_the_instance_for_its_tags(routed):
    instance, launcher, ecs, default = routed
    stream = stream_run(instance)
    stale = dg.DagsterRun(job_name="archive_batches", run_id=stream.run_id)  # no tags

    assert launcher.check_run_worker_health(stale) == NOT_CHECKED
    launcher.get_run_worker_debug_info(stale)

    assert ecs.calls == []
    assert default.calls == [("debug", stream.run_id)]


def test_health_checks_go_to_the_launcher_that_started_the_run(routed):
    instance, launcher, ecs, default = routed
    stream, compaction = stream_run(instance), compaction_run(instance)

    # Run monitoring asks the instance's launcher once whether it checks workers at all.
    assert launcher.supports_check_run_worker_health is True
    # A run on ECS: the ECS launcher's answer, as before.
    assert launcher.check_run_worker_health(compaction).status == WorkerStatus.FAILED
    # A run in the code server: the default launcher cannot check it; the monitor is told it
    # runs, as it assumes for a launcher without health checks, and the max runtime holds.
    assert launcher.check_run_worker_health(stream) == NOT_CHECKED
    assert NOT_CHECKED.status == WorkerStatus.RUNNING

    assert ecs.calls == [("health", compaction.run_id)]
    assert default.calls == []


def test_a_default_launcher_that_could_check_health_would_be_asked():
    ecs, default = Recorder("ecs", checks_health=True), Recorder("default", checks_health=True)
    with dg.instance_for_test() as instance:
        launcher = StreamPathRunLauncher(ecs=ecs, default=default)
        launcher.register_instance(instance)
        stream = stream_run(instance)

        assert launcher.check_run_worker_health(stream).msg == "default: the task stopped"
        assert default.calls == [("health", stream.run_id)] and ecs.calls == []


def test_resume_debug_info_and_dispose_are_delegated(routed):
    instance, launcher, ecs, default = routed
    stream, compaction = stream_run(instance), compaction_run(instance)

    assert launcher.supports_resume_run is True  # the ECS launcher's
    launcher.resume_run(ResumeRunContext(compaction, workspace=None, resume_attempt_number=1))
    assert launcher.get_run_worker_debug_info(compaction) == "ecs"
    assert launcher.get_run_worker_debug_info(stream) == "default"
    launcher.dispose()

    assert ecs.calls == [
        ("resume", compaction.run_id),
        ("debug", compaction.run_id),
        ("dispose", ""),
    ]
    assert default.calls == [("debug", stream.run_id), ("dispose", "")]


def test_both_launchers_get_the_instance(routed):
    instance, launcher, ecs, default = routed

    assert launcher._instance is instance
    assert ecs._instance is instance and default._instance is instance


# A real code server ------------------------------------------------------------------------------


@pytest.fixture
def code_server(run_task_definition, tmp_path):
    """An instance with deploy/dagster.yaml's run launcher (SQLite storage), and a workspace
    whose code location is a real `dagster code-server` serving launcher_jobs."""
    overrides = {key: PRODUCTION[key] for key in ("run_launcher", "run_monitoring")}
    with (
        dg.instance_for_test(overrides=overrides, temp_dir=str(tmp_path)) as instance,
        WorkspaceProcessContext(
            instance,
            ModuleTarget(
                module_name=launcher_jobs.__name__,
                attribute="defs",
                working_directory=str(REPO),
                location_name="launcher_jobs",
            ),
            server_command=GrpcServerCommand.CODE_SERVER_START,
        ) as process,
    ):
        yield instance, process


def launch(instance, process, job: dg.JobDefinition) -> dg.DagsterRun:
    workspace = process.create_request_context()
    location = workspace.get_code_location("launcher_jobs")
    remote_job = location.get_repository("__repository__").get_full_job(job.name)
    run = instance.create_run_for_job(
        job_def=job,
        tags=job.run_tags,
        remote_job_origin=remote_job.get_remote_origin(),
        job_code_origin=remote_job.get_python_origin(),
    )
    instance.launch_run(run.run_id, workspace)
    return run


def wait_for_status(instance, run_id: str, status: dg.DagsterRunStatus, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while (run := instance.get_run_by_id(run_id)).status != status:
        assert time.monotonic() < deadline, f"{run.status}, not {status}"
        time.sleep(0.1)
    return run


def test_stream_path_runs_run_in_the_code_server_and_are_monitored_and_terminated_there(
    code_server,
):
    """One code server for both runs (starting one takes seconds)."""
    instance, process = code_server
    assert isinstance(instance.run_launcher, StreamPathRunLauncher)

    run = launch(instance, process, launcher_jobs.quick_stream_path)

    finished = poll_for_finished_run(instance, run.run_id, timeout=60)
    assert finished.status == dg.DagsterRunStatus.SUCCESS
    # Launched by the default launcher, through the code server's gRPC API; no ECS task.
    assert GRPC_INFO_TAG in finished.tags
    assert "ecs/task_arn" not in finished.tags

    run = launch(instance, process, launcher_jobs.long_stream_path)
    started = wait_for_status(instance, run.run_id, dg.DagsterRunStatus.STARTED)

    # One pass of the daemon's run monitoring leaves the run alone. Asked of the ECS launcher,
    # a run with no ECS task is UNKNOWN, and the monitor would fail it.
    list(execute_run_monitoring_iteration(process, logging.getLogger("test")))
    assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.STARTED
    assert instance.run_launcher.check_run_worker_health(started) == NOT_CHECKED
    assert (
        instance.run_launcher.ecs_launcher.check_run_worker_health(started).status
        == WorkerStatus.UNKNOWN
    )

    # Terminate (the UI's, through the run coordinator) cancels it in the code server.
    assert instance.run_coordinator.cancel_run(run.run_id) is True
    assert poll_for_finished_run(instance, run.run_id, timeout=60).status == (
        dg.DagsterRunStatus.CANCELED
    )
