"""Shared fixtures: one moto server per test session (a real HTTP endpoint on 127.0.0.1), reset
before each test that uses AWS, and the environment that points the AWS SDK at it."""

from __future__ import annotations

import logging

import boto3
import pytest
import requests

from demand_assets.config import Settings

REGION = "us-east-1"


@pytest.fixture(scope="session")
def moto_endpoint():
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def aws(moto_endpoint, monkeypatch):
    """A clean emulated AWS account; returns its endpoint URL."""
    requests.post(f"{moto_endpoint}/moto-api/reset", timeout=10).raise_for_status()
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_REGION", REGION)
    return moto_endpoint


@pytest.fixture
def settings() -> Settings:
    """No buffering: a tick that lands changes requests its archive run at once."""
    return Settings(
        bucket="test-archive", prefix="demand", stream_name="test-stream", buffer_seconds=0
    )


@pytest.fixture
def s3(aws, settings):
    client = boto3.client("s3")
    client.create_bucket(Bucket=settings.bucket)
    return client


@pytest.fixture
def kinesis(aws, settings):
    client = boto3.client("kinesis")
    client.create_stream(StreamName=settings.stream_name, ShardCount=2)
    return client
