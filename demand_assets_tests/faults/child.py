"""One pipeline step in a process of its own, for the tests that SIGKILL it mid-write:

    python -m demand_assets_tests.faults.child tick SETTINGS [CURSOR]
    python -m demand_assets_tests.faults.child run SETTINGS REQUEST

SETTINGS is JSON (`faults.definitions.child_settings`); REQUEST is a run request as JSON
(`run_key`, `job_name`, `partition_key`, `run_config`, `tags`, `asset_selection` as key
strings). The step runs as the daemon would run it (a sensor tick evaluated, a run request
executed in process) with the fault tests' definitions (`faults.definitions`), against
whatever `AWS_ENDPOINT_URL` says, and prints one JSON line when done.
"""

from __future__ import annotations

import json
import sys

import dagster as dg

from demand_assets.config import Settings
from demand_assets.defs.inprocess import evaluate_sensor, execute_request
from demand_assets_tests.faults.definitions import fault_definitions


def request_to_json(request: dg.RunRequest) -> str:
    return json.dumps(
        {
            "run_key": request.run_key,
            "job_name": request.job_name,
            "partition_key": request.partition_key,
            "run_config": dict(request.run_config or {}),
            "tags": dict(request.tags or {}),
            "asset_selection": [k.to_user_string() for k in request.asset_selection or []] or None,
        }
    )


def request_from_json(text: str) -> dg.RunRequest:
    fields = json.loads(text)
    selection = fields.pop("asset_selection")
    if selection:
        fields["asset_selection"] = [dg.AssetKey.from_user_string(k) for k in selection]
    return dg.RunRequest(**fields)


def main(argv: list[str]) -> int:
    command, settings = argv[0], Settings(**json.loads(argv[1]))
    defs = fault_definitions(settings)
    instance = dg.DagsterInstance.ephemeral()
    if command == "tick":
        result = evaluate_sensor(defs, instance, argv[2] if len(argv) > 2 else None)
        print(json.dumps({"cursor": result.cursor, "runs": len(result.run_requests or [])}))
        return 0
    if command == "run":
        result = execute_request(defs, instance, request_from_json(argv[2]), False)
        print(json.dumps({"success": result.success}))
        return 0 if result.success else 1
    raise SystemExit(f"unknown command {command!r}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
