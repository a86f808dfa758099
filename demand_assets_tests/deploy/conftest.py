"""Fixtures of the deploy/ checks: the variables the production instance reads."""

from __future__ import annotations

import pytest

from demand_assets_tests.deploy.instance import DEPLOY, env_vars, load_yaml


@pytest.fixture
def production_env(monkeypatch):
    """Dummy values for every variable the production instance reads (ECS sets the real ones)."""
    for name in env_vars(load_yaml(DEPLOY / "dagster.yaml")):
        monkeypatch.setenv(name, "5432" if name.endswith("_PORT") else f"dummy-{name.lower()}")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
