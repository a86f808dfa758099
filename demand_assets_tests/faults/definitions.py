"""The definitions of the fault tests: the project's, with the waiting shortened, not the
faults. Steps retry with `TEST_RETRY_POLICY` (AWS_RETRY_POLICY's shape, tenths of a second
apart), and the S3, Glue and Athena clients make `SDK_ATTEMPTS` attempts (as the proxy
fixture's standard mode) instead of production's five. The child processes of the kill tests
build the same (`faults/child.py`); this module imports nothing of the test helpers, so that a
child starts quickly."""

from __future__ import annotations

import dagster as dg

from demand_assets import aws
from demand_assets.catalog.glue import GlueCatalog
from demand_assets.checks.engines import AthenaEngine
from demand_assets.config import Settings
from demand_assets.definitions import build_definitions
from demand_assets.defs.resources import GlueResource, QueryEngineResource, S3Resource
from demand_assets.storage.archive import Archive

# The steps' retry policy in these tests: AWS_RETRY_POLICY's shape (retries with exponential
# back-off), with waits of a tenth of a second instead of 2, 6 and 14 seconds.
TEST_RETRY_POLICY = dg.RetryPolicy(max_retries=2, delay=0.1, backoff=dg.Backoff.EXPONENTIAL)
SDK_ATTEMPTS = 3  # attempts of every SDK call, the first one included (hardening.S3_CALLS)


class FewAttemptsGlue(GlueResource):
    def catalog(self) -> GlueCatalog:
        return GlueCatalog(aws.client("glue", self.region_name, SDK_ATTEMPTS), self.database)


class FewAttemptsQueryEngine(QueryEngineResource):
    def build(self, archive: Archive):
        if self.engine != "athena":
            return super().build(archive)
        client = aws.client("athena", self.region_name, SDK_ATTEMPTS)
        return AthenaEngine(client, self.database, self.workgroup, self.output)


def fault_definitions(
    settings: Settings,
    s3: S3Resource | None = None,
    retry_policy: dg.RetryPolicy | None = TEST_RETRY_POLICY,
) -> dg.Definitions:
    """The project's definitions, with fewer SDK attempts and shorter step retries."""
    defs = build_definitions(
        settings, s3=s3 or S3Resource(max_attempts=SDK_ATTEMPTS), retry_policy=retry_policy
    )
    glue, engine = defs.resources["glue"], defs.resources["query_engine"]
    resources = {
        **defs.resources,
        "glue": FewAttemptsGlue(**glue.model_dump()),
        "query_engine": FewAttemptsQueryEngine(**engine.model_dump()),
    }
    return dg.Definitions(
        assets=defs.assets,
        asset_checks=defs.asset_checks,
        jobs=defs.jobs,
        schedules=defs.schedules,
        sensors=defs.sensors,
        resources=resources,
    )


def child_settings(settings: Settings) -> dict:
    """What a child process needs to build the same definitions (`faults/child.py`)."""
    return {
        "bucket": settings.bucket,
        "prefix": settings.prefix,
        "stream_name": settings.stream_name,
        "buffer_seconds": settings.buffer_seconds,
    }
