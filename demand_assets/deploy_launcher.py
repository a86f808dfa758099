"""The production run launcher (deploy/dagster.yaml): the stream path's runs in the code server,
every other run in an ECS task of its own.

An `archive_batches` run (tagged `demand/stream_path`, defs/archive_job.py) is requested every
15-20 s and must turn a put into Parquet within 60 s. Measured locally with Dagster's default
launcher, such a run takes about 5 s, waits about 4 s in the queue, and 1.7 s of it is the
code location's import; a Fargate task takes 30-60 s just to start. So those runs go to
Dagster's `DefaultRunLauncher`, which asks the code location's gRPC server to start the run
as a subprocess of its own: on the always-on code-server ECS task, with its role and its
environment. Every other run (compactions, backfills, bootstrap_from_table, replay_errors)
goes to `EcsRunLauncher`, configured exactly as before under `ecs:`.

The routing rule is the run's tags, so whatever later concerns a run (terminate from the UI,
run monitoring's worker health check, a resume, debug info) goes to the launcher that
started it: the run's tags are looked up again for each.

Dagster has no public name for the run launcher interface, so this module imports from
`dagster._core` (as dagster_aws.ecs does); the names it needs are all here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self

from dagster import DagsterInstance, DagsterRun, DefaultRunLauncher, Field
from dagster._core.launcher import (
    CheckRunHealthResult,
    LaunchRunContext,
    ResumeRunContext,
    RunLauncher,
    WorkerStatus,
)
from dagster._serdes import ConfigurableClass
from dagster._serdes.config_class import ConfigurableClassData
from dagster_aws.ecs import EcsRunLauncher

from demand_assets.defs.tags import STREAM_PATH_TAG

__all__ = ["NOT_CHECKED", "StreamPathRunLauncher", "is_stream_path"]

# What run monitoring is told about a run whose launcher cannot check its worker (the default
# launcher cannot). RUNNING makes the monitor do what it does for such a launcher: skip the
# check and fail the run only once it outlives its `dagster/max_runtime` tag (archive runs:
# defs/archive_job.py, 600 s by default). The code server's gRPC server itself fails a run whose
# subprocess died; the max runtime covers a lost code-server task. UNKNOWN, or an error, would
# fail (or log an error for) every archive run at its first poll.
NOT_CHECKED = CheckRunHealthResult(
    WorkerStatus.RUNNING,
    "not checked: a subprocess of the code server, which fails the run if the subprocess dies",
)


def is_stream_path(run: DagsterRun) -> bool:
    """A run of the stream path: the code server runs it."""
    return STREAM_PATH_TAG in run.tags


class StreamPathRunLauncher(RunLauncher, ConfigurableClass):
    """Runs tagged `demand/stream_path` by the `DefaultRunLauncher` (a subprocess of the code
    server), every other run by the `EcsRunLauncher` configured under `ecs`."""

    def __init__(
        self,
        ecs: RunLauncher,
        default: RunLauncher | None = None,
        inst_data: ConfigurableClassData | None = None,
    ):
        self._inst_data = inst_data
        self.ecs_launcher = ecs
        self.default_launcher = default if default is not None else DefaultRunLauncher()
        super().__init__()

    # ConfigurableClass ---------------------------------------------------------------------

    @property
    def inst_data(self) -> ConfigurableClassData | None:
        return self._inst_data

    @classmethod
    def config_type(cls) -> Mapping[str, Field]:
        return {
            "ecs": Field(
                EcsRunLauncher.config_type(),
                is_required=True,
                description=(
                    "The EcsRunLauncher's configuration, for every run not tagged "
                    f"{STREAM_PATH_TAG}."
                ),
            ),
        }

    @classmethod
    def from_config_value(
        cls, inst_data: ConfigurableClassData, config_value: Mapping[str, Any]
    ) -> Self:
        return cls(ecs=EcsRunLauncher(**config_value["ecs"]), inst_data=inst_data)

    # Routing ---------------------------------------------------------------------------------

    def register_instance(self, instance: DagsterInstance) -> None:
        super().register_instance(instance)
        for launcher in self._launchers():
            launcher.register_instance(instance)

    def launcher_for(self, run: DagsterRun) -> RunLauncher:
        return self.default_launcher if is_stream_path(run) else self.ecs_launcher

    def _launchers(self) -> tuple[RunLauncher, RunLauncher]:
        return self.default_launcher, self.ecs_launcher

    def _stored(self, run_id: str) -> DagsterRun | None:
        return self._instance.get_run_by_id(run_id)

    # RunLauncher -----------------------------------------------------------------------------

    def launch_run(self, context: LaunchRunContext) -> None:
        self.launcher_for(context.dagster_run).launch_run(context)

    def terminate(self, run_id: str) -> bool:
        run = self._stored(run_id)
        if run is None:  # what both launchers answer for a run they do not know
            return False
        return self.launcher_for(run).terminate(run_id)

    @property
    def supports_check_run_worker_health(self) -> bool:
        return any(launcher.supports_check_run_worker_health for launcher in self._launchers())

    def check_run_worker_health(self, run: DagsterRun) -> CheckRunHealthResult:
        stored = self._stored(run.run_id) or run
        launcher = self.launcher_for(stored)
        if not launcher.supports_check_run_worker_health:
            return NOT_CHECKED
        return launcher.check_run_worker_health(stored)

    def get_run_worker_debug_info(
        self, run: DagsterRun, include_container_logs: bool | None = True
    ) -> str | None:
        stored = self._stored(run.run_id) or run
        return self.launcher_for(stored).get_run_worker_debug_info(
            stored, include_container_logs=include_container_logs
        )

    @property
    def supports_resume_run(self) -> bool:
        # Run monitoring asks this once, for the whole instance; a run of the code server is
        # never found unhealthy (NOT_CHECKED), so it is never asked to resume one.
        return self.ecs_launcher.supports_resume_run

    def resume_run(self, context: ResumeRunContext) -> None:
        stored = self._stored(context.dagster_run.run_id) or context.dagster_run
        self.launcher_for(stored).resume_run(context)

    def join(self, timeout: int = 30) -> None:
        for launcher in self._launchers():
            launcher.join(timeout)

    def dispose(self) -> None:
        for launcher in self._launchers():
            launcher.dispose()
