"""Load a dagster.yaml as Dagster does, without a database, a cluster or AWS: the instance schema
(`InstanceRef.from_dir` validates the file against it), then each configurable class's own
config schema (what `ConfigurableClassData.rehydrate` checks before it builds the object)."""

from __future__ import annotations

import importlib
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from dagster._config import process_config, resolve_to_config_type
from dagster._core.errors import DagsterInvalidConfigError
from dagster._core.instance.config import ConcurrencyConfig
from dagster._core.instance.ref import InstanceRef
from dagster._serdes.config_class import ConfigurableClassData

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"

# The InstanceRef fields that name a configurable class.
CLASS_FIELDS = (
    "local_artifact_storage_data",
    "storage_data",
    "run_storage_data",
    "event_storage_data",
    "schedule_storage_data",
    "compute_logs_data",
    "scheduler_data",
    "run_coordinator_data",
    "run_launcher_data",
)


def env_vars(node: Any) -> set[str]:
    """The variables a YAML configuration reads with `{env: NAME}`."""
    if isinstance(node, Mapping):
        if set(node) == {"env"} and isinstance(node["env"], str):
            return {node["env"]}
        return set().union(*(env_vars(v) for v in node.values())) if node else set()
    if isinstance(node, list):
        return set().union(*(env_vars(v) for v in node)) if node else set()
    return set()


def instance_ref(config: Mapping[str, Any]) -> InstanceRef:
    """The InstanceRef of a dagster.yaml with this content (validated against the schema)."""
    with tempfile.TemporaryDirectory() as home:
        Path(home, "dagster.yaml").write_text(yaml.safe_dump(dict(config)))
        return InstanceRef.from_dir(home)


def class_configs(ref: InstanceRef) -> dict[str, Mapping[str, Any]]:
    """`module.Class` -> its config, processed by the class's own schema (raises on an error)."""
    processed = {}
    for field in CLASS_FIELDS:
        data: ConfigurableClassData | None = getattr(ref, field)
        if data is None:
            continue
        klass = getattr(importlib.import_module(data.module_name), data.class_name)
        result = process_config(resolve_to_config_type(klass.config_type()), data.config_dict)
        if not result.success:
            raise DagsterInvalidConfigError(
                f"{data.module_name}.{data.class_name} in {field}", result.errors, data.config_dict
            )
        processed[f"{data.module_name}.{data.class_name}"] = result.value
    return processed


def concurrency(ref: InstanceRef) -> ConcurrencyConfig:
    """The run queue and pool limits the instance enforces, as Dagster combines them."""
    coordinator = ref.run_coordinator_data.rehydrate()
    return ConcurrencyConfig.from_concurrency_settings(
        ref.settings.get("concurrency", {}), coordinator.get_run_queue_config()
    )


def load_yaml(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())
