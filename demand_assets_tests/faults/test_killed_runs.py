"""An archive run SIGKILLed while later batches land: the run's process (`faults/child.py`) is
held at the fault proxy mid-way, the sensor lands two more batches meanwhile (in this
process, at the same time), then the run is killed. The next run archives every batch, the
killed run's included, each change once in each format: the killed run cleared no pending
mark it had not finished, and what it had written makes its redone work a no-op."""

from __future__ import annotations

import pytest

from demand_assets_tests.faults.child import request_to_json
from demand_assets_tests.faults.pipeline import FaultPipeline as Pipeline
from demand_assets_tests.faults.processes import Child, kill_when_held
from demand_assets_tests.faults.proxy import Fault
from demand_assets_tests.hardening import generated, table

HOLD = 120  # seconds a held call waits: far past the kill


def pending_batches(pipeline: Pipeline) -> set[str]:
    return {k.rsplit("/", 1)[1].removesuffix(".json") for k in pipeline.pending()}


def sidecar_of(data_key: str) -> str:
    head, leaf = data_key.rsplit("/", 1)
    return f"{head}/_covers-{leaf.rsplit('.', 1)[0]}.json"


def unpaired(pipeline: Pipeline) -> tuple[set[str], set[str]]:
    """(sidecars without their data, data objects without their sidecar), every format."""
    sidecars, data = set(), set()
    for fmt in ("avro", "parquet"):
        with_data = {sidecar_of(k) for k in pipeline.data_files(fmt)}
        found = set(pipeline.sidecars(fmt))
        sidecars |= found - with_data
        data |= {k for k in pipeline.data_files(fmt) if sidecar_of(k) not in found}
    return sidecars, data


@pytest.fixture
def pipeline(proxy, settings, s3, kinesis):
    return Pipeline.build(settings, s3, kinesis)


KILLS = [
    pytest.param(
        "mid-write: Avro of a partition written, its Parquet not",
        Fault("s3", "PutObject", key_contains=".parquet", action="hold", hold_seconds=HOLD),
        id="mid-write",
    ),
    pytest.param(
        # Into an empty archive a run deletes nothing before it clears its batches' marks.
        "every partition written, the pending marks not yet cleared",
        Fault("s3", "DeleteObjects", action="hold", hold_seconds=HOLD),
        id="before-clearing",
    ),
    pytest.param(
        "the pending marks cleared, the run not finished (Glue not registered)",
        Fault("s3", "DeleteObjects", action="hold", hold_seconds=HOLD, forward_first=True),
        id="after-clearing",
    ),
]


@pytest.mark.parametrize(("name", "fault"), KILLS)
def test_a_run_killed_while_later_batches_land_is_made_good_by_the_next_run(
    name, fault, pipeline, proxy
):
    pipeline.put(generated(60, seed=51))
    (request,) = pipeline.tick().run_requests
    (first,) = pending_batches(pipeline)
    (summary,) = pipeline.summaries()
    first_days = {key.split("/")[1] for key in summary["archivable"]}
    assert {key.split("/")[0] for key in summary["archivable"]} == {"demand"}
    (fault,) = proxy.add(fault)

    later = []
    with Child(pipeline.settings, "run", request_to_json(request)) as run:
        run.held(fault)
        for seed in (52, 53):  # the sensor goes on landing while the run is held
            pipeline.put(generated(40, seed=seed))
            later += pipeline.tick().run_requests
        assert kill_when_held(run, fault) == ""
    proxy.clear()

    pending = pending_batches(pipeline)
    assert len(pending) == 3 - (1 if fault.forward_first else 0), pending
    assert (first in pending) is not fault.forward_first  # cleared only if it was written
    if fault.operation == "DeleteObjects":  # every partition of its batch written by then
        assert {d for d in first_days if pipeline.data_files("parquet", "demand", d)} == first_days
    # This instance knows nothing of the killed run (the daemon's would have it STARTED until
    # run monitoring fails it): the ticks asked for runs; the first of them archives it all.
    assert later
    outcome = pipeline.run(later[0])
    assert outcome.success
    assert not pipeline.pending()
    verdict = pipeline.verdict()  # after that one run
    for request in later[1:]:
        assert pipeline.run(request).success  # nothing left for them
    assert not pipeline.tick().run_requests
    # Killed between a sidecar and its data, the run left that sidecar alone: a write that
    # died, which counts for nothing and goes after an hour (`ABANDONED_AFTER`). No data
    # object is ever left without its sidecar.
    lone_sidecars, lone_data = unpaired(pipeline)
    assert not lone_data, lone_data
    dead = fault.keys_hit[0] if fault.operation == "PutObject" else None
    assert lone_sidecars == ({sidecar_of(dead)} if dead else set()), lone_sidecars
    table(
        "Archive run killed while later batches land",
        ("killed", "meanwhile", "then", "archive"),
        [
            (
                f"{name}: {fault.describe()}",
                "2 more batches landed by the sensor",
                "the next run archived all 3",
                verdict,
            )
        ],
    )
