"""Fixtures of the Dagster-level tests: an in-memory instance, and the definitions on the
emulated AWS account."""

import dagster as dg
import pytest

from demand_assets.definitions import build_definitions


@pytest.fixture
def instance():
    return dg.DagsterInstance.ephemeral()


@pytest.fixture
def defs(settings, s3, kinesis):
    return build_definitions(settings)
