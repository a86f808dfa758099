"""Running the pipeline without the daemon: a sensor tick evaluated on an instance, and its run
requests executed in process with their job, partition, config, tags and selection. Used by
tests, benchmarks and the headless demo."""

import dagster as dg

from demand_assets.defs.sensor import SENSOR_NAME


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
    return job.execute_in_process(
        run_config=request.run_config,
        partition_key=request.partition_key,
        tags=request.tags,
        asset_selection=request.asset_selection,
        instance=instance,
        raise_on_error=raise_on_error,
    )
