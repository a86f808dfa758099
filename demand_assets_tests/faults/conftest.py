"""Fixtures of the fault tests: the fault proxy in front of the session's moto server, with
`AWS_ENDPOINT_URL` pointing at it, so that every client the pipeline builds goes through it."""

from __future__ import annotations

import pytest

from demand_assets_tests.faults.proxy import FaultProxy


@pytest.fixture
def proxy(aws, s3, kinesis, monkeypatch):
    """The fault proxy; tests arm faults with `proxy.add(Fault(...))`. The pipeline's clients
    set their own attempts (`demand_assets.aws`: Kinesis 2; S3, Glue and Athena
    `faults.definitions.SDK_ATTEMPTS`); the environment bounds any other client the same way,
    in standard mode, so that bursts exhaust them.

    The `s3` and `kinesis` fixtures' clients are made before, so they reach the emulator
    directly: what a test puts and reads back is never faulted."""
    faults = FaultProxy(aws).start()
    monkeypatch.setenv("AWS_ENDPOINT_URL", faults.url)
    monkeypatch.setenv("AWS_RETRY_MODE", "standard")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "3")
    yield faults
    faults.stop()
