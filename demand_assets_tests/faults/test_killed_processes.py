"""Processes killed mid-write: a sensor tick or a run in a process of its own
(`demand_assets_tests.faults.child`), its S3 write held by the fault proxy at a chosen point,
SIGKILLed there. Then the step is done again, as the daemon does it (the next tick; the run's
retry): nothing lost, nothing doubled, and no manual repair."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from demand_assets_tests.faults.child import request_to_json
from demand_assets_tests.faults.proxy import Fault, wait_for
from demand_assets_tests.hardening import Pipeline, generated, table

ROOT = Path(__file__).resolve().parents[2]
RANGE_START, RANGE_END = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"


@pytest.fixture
def pipeline(proxy, settings, s3, kinesis):
    return Pipeline.build(settings, s3, kinesis)


def _kill_when_held(pipeline: Pipeline, fault: Fault, *args: str) -> str:
    """Start the child step, SIGKILL it as soon as the proxy holds the faulted call; returns
    what the child had printed (nothing, if it died before finishing)."""
    settings = pipeline.settings
    child_settings = json.dumps(
        {"bucket": settings.bucket, "prefix": settings.prefix, "stream_name": settings.stream_name}
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "demand_assets_tests.faults.child", args[0], child_settings]
        + list(args[1:]),
        cwd=ROOT,
        env=dict(os.environ),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(fault.held, f"the held call ({fault.describe()})", timeout=180)
        process.send_signal(signal.SIGKILL)
        out, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        fault.release()
    assert process.returncode == -signal.SIGKILL
    return out.decode()


def _data_files(pipeline: Pipeline, fmt: str) -> list[str]:
    return [k for k in pipeline.keys(f"{fmt}/") if "/_" not in k]


def test_a_run_killed_after_avro_before_parquet_is_run_again(pipeline, proxy):
    pipeline.put(generated(40, seed=31))
    (request,) = pipeline.tick().run_requests
    (fault,) = proxy.add(
        Fault("s3", "PutObject", key_contains=".parquet", action="hold", hold_seconds=120)
    )

    printed = _kill_when_held(pipeline, fault, "run", request_to_json(request))
    proxy.clear()
    assert printed == ""
    avro, parquet = _data_files(pipeline, "avro"), _data_files(pipeline, "parquet")
    assert fault.keys_hit[0] not in parquet and len(parquet) < len(avro)

    assert pipeline.run(request).success  # the run's retry
    assert not pipeline.tick().run_requests
    table(
        "Run process killed",
        ("killed at", "left behind", "then", "archive"),
        [
            (
                fault.describe(),
                f"{len(avro)} avro, {len(parquet)} parquet files",
                "the run again",
                pipeline.verdict(),
            )
        ],
    )


@pytest.mark.slow
def test_a_rebuild_killed_before_removing_the_files_it_replaces_is_run_again(pipeline, proxy):
    pipeline.put(generated(40, seed=32))
    pipeline.settle()
    day = pipeline.keys("avro/demand/")[0].split("partition_date=")[1][:10]
    rebuild = dg.RunRequest(
        asset_selection=[dg.AssetKey("demand")], tags={RANGE_START: day, RANGE_END: day}
    )
    (fault,) = proxy.add(Fault("s3", "DeleteObjects", action="hold", hold_seconds=120))

    _kill_when_held(pipeline, fault, "run", request_to_json(rebuild))
    proxy.clear()
    files = [k.rsplit("/", 1)[1] for k in _data_files(pipeline, "avro") if day in k]
    assert any(f.startswith("compacted-") for f in files) and len(files) > 1  # doubled now

    assert pipeline.run(rebuild).success  # the run's retry settles the partition
    files_after = [k for k in _data_files(pipeline, "avro") if day in k]
    assert len(files_after) == 1
    table(
        "Rebuild process killed",
        ("killed at", "left behind", "then", "archive"),
        [
            (
                fault.describe(),
                f"{len(files)} avro files in {day}: compacted + batch files",
                "the rebuild again: 1 file",
                pipeline.verdict(),
            )
        ],
    )


TICK_KILLS = [
    pytest.param(
        "after landing, before the cursor is stored",
        Fault(
            "s3",
            "PutObject",
            key_contains="/_batches/",
            action="hold",
            hold_seconds=120,
            forward_first=True,
        ),
        id="after-landing",
    ),
    pytest.param(
        "mid-landing (2nd landing object)",
        Fault(
            "s3",
            "PutObject",
            key_contains="/landing/demand/",
            nth=2,
            action="hold",
            hold_seconds=120,
        ),
        id="mid-landing",
        marks=pytest.mark.slow,
    ),
]


@pytest.mark.parametrize(("name", "fault"), TICK_KILLS)
def test_a_tick_killed_mid_way_is_done_again_by_the_next_tick(name, fault, pipeline, proxy):
    pipeline.put(generated(60, seed=33, malformed_share=0.1))
    (fault,) = proxy.add(fault)

    printed = _kill_when_held(pipeline, fault, "tick")
    proxy.clear()
    assert printed == "", "the killed tick returned no cursor"
    landed = pipeline.keys("landing/")
    summaries = len(pipeline.summaries())

    result = pipeline.tick()  # the next tick, from the cursor the killed one never stored
    assert result.run_requests
    relanded = pipeline.keys("landing/")
    assert set(landed) <= set(relanded), "the next tick wrote other keys than the killed one"
    for request in result.run_requests:
        assert pipeline.run(request).success
    pipeline.settle()
    assert len(pipeline.summaries()) == 1
    events = [e for d in pipeline.error_documents() for e in d["events"]]
    assert len(events) == sum(sum(s["rejected"].values()) for s in pipeline.summaries())
    table(
        "Sensor tick process killed",
        ("killed", "left behind", "then", "archive"),
        [
            (
                f"{name}: {fault.describe()}",
                f"{len(landed)} landing objects, {summaries} summaries",
                f"next tick: {len(relanded)} landing objects, same keys",
                pipeline.verdict() + f"; {len(events)} rejected changes once in errors/",
            )
        ],
    )
