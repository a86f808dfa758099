"""Running the pipeline without the daemon: a sensor tick evaluated on an instance, and its run
requests executed in process with their job, partition, config, tags and selection. Used by
tests, benchmarks and the headless demo. Schedules likewise."""

from datetime import datetime

import dagster as dg

from demand_assets.defs.sensor import SENSOR_NAME
from demand_assets.defs.tags import RUN_KEY_TAG


def evaluate_sensor(defs: dg.Definitions, instance: dg.DagsterInstance, cursor: str | None):
    sensor = defs.resolve_sensor_def(SENSOR_NAME)
    with dg.build_sensor_context(
        instance=instance, cursor=cursor, definitions=defs, resources=defs.resources
    ) as context:
        return sensor.evaluate_tick(context)


def execute_request(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    request: dg.RunRequest,
    raise_on_error: bool = True,
) -> dg.ExecuteInProcessResult:
    if request.job_name:
        job = defs.resolve_job_def(request.job_name)
    else:
        job = defs.resolve_implicit_global_asset_job_def()
    tags = dict(request.tags)
    if request.run_key:
        tags[RUN_KEY_TAG] = request.run_key  # as the daemon tags the runs it launches
    return job.execute_in_process(
        run_config=request.run_config,
        partition_key=request.partition_key,
        tags=tags,
        asset_selection=request.asset_selection,
        instance=instance,
        raise_on_error=raise_on_error,
    )


def evaluate_schedule(
    defs: dg.Definitions, instance: dg.DagsterInstance, name: str, scheduled: datetime
) -> list[dg.RunRequest]:
    """A schedule's tick at `scheduled` (the instance must be persistent)."""
    schedule = defs.resolve_schedule_def(name)
    with dg.build_schedule_context(
        instance=instance,
        scheduled_execution_time=scheduled,
        resources=defs.resources,
        repository_def=defs.get_repository_def(),
    ) as context:
        data = schedule.evaluate_tick(context)
    return list(data.run_requests or [])
