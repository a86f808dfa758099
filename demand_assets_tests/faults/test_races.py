"""Writers of one partition racing for real: an archive run and a rebuild in two processes, one
of them held at the fault proxy between two of its S3 calls while the other runs to the end.

The coverage rules (`storage.partition_files`) keep every change once per format whatever
order the writers finish in; each case below needs one of them:

- an archive run's data PUT held while a rebuild of the day completes: on release the run
  finds its file inside the rebuilt one and withdraws it, and plans nothing more, because
  the rebuilt file already holds its batches (the coverage check before writing);
  with the PUT held after it reached S3, the rebuild removed the run's sidecar meanwhile:
  the run's data lands again without one, and the run withdraws it (rule 3);
- a rebuild held between its sidecar and its data while an archive run of a newer batch
  merges some of the day's files: the two files cross (each holds batches the other lacks),
  and the rebuild, finishing last, withdraws its file and rebuilds again (rule 3);
- a rebuild killed there: its sidecar alone counts for nothing (rule 1);
- a rebuild killed after its data landed, before it looked again: the crossing files are
  left both (a tangle), and the next archive run merges them (rule 4).

Every file is read back (fastavro, pyarrow): each change once in each format, nothing lost.
The day's files are built so that the archive run merges three of its four files (tiering:
FANOUT 4): sizes 1, 16, 1, 1 and then 1 change, so the 16-change file stays out of the merge.
"""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg
import orjson
import pytest

from demand_assets.storage.partition_write import archive_partition
from demand_assets.storage.pending import clear_pending
from demand_assets.storage.tiering import plan_merges
from demand_assets_tests.builders import change, valid_item
from demand_assets_tests.defs.operating import archive_of, land
from demand_assets_tests.defs.pipeline import archived, event_id_counts
from demand_assets_tests.faults.child import request_to_json
from demand_assets_tests.faults.pipeline import FaultPipeline as Pipeline
from demand_assets_tests.faults.processes import Child, kill_when_held
from demand_assets_tests.faults.proxy import Fault
from demand_assets_tests.hardening import table

DAY = "2026-11-20"
SIZES = (1, 16, 1, 1)  # changes of the four batches that make the day's four files
HOLD = 120  # seconds a held call waits: far past the race it makes room for
CHANGE_TIME_MS = 1_795_000_000_000


@pytest.fixture
def pipeline(proxy, settings, s3, kinesis):
    return Pipeline.build(settings, s3, kinesis)


def demand_on(day: str, n: int, tag: str) -> list[bytes]:
    """n demand changes of partition `day`, each its own eventID."""
    return [
        change(
            "INSERT",
            valid_item(
                "demand",
                pk=f"fan#{tag}-{i}",
                sk=f"demand#e-{tag}#s-{i}",
                requestedDateTime=f"{day}T10:00:00.000Z",
                date={"requested": f"{day}T10:00:00.000Z"},
            ),
            change_time_ms=CHANGE_TIME_MS + i,
            event_id=f"{tag}-{i}",
        )
        for i in range(n)
    ]


def land_and_archive(pipeline: Pipeline, n: int, tag: str) -> str:
    """One batch of n changes of DAY, landed and archived (one tick, its run); its name."""
    before = set(landed(pipeline))
    pipeline.put(demand_on(DAY, n, tag))
    pipeline.settle()
    (batch,) = set(landed(pipeline)) - before
    return batch


def landed(pipeline: Pipeline) -> list[str]:
    prefix = f"landing/demand/partition_date={DAY}/"
    return [k.rsplit("/", 1)[1].split(".")[0] for k in pipeline.keys(prefix)]


def four_files(pipeline: Pipeline) -> list[str]:
    """The day's four files, one batch each, as four archive runs leave them (written here
    with the storage calls those runs make, to save their time); the batches, oldest first."""
    archive = archive_of(pipeline.s3, pipeline.settings)
    batches = []
    for i, n in enumerate(SIZES):
        payloads = demand_on(DAY, n, f"b{i}")
        arrival = datetime(2026, 11, 20, 12, i, tzinfo=UTC)
        summary = land(pipeline.s3, pipeline.settings, payloads, arrival, first_seq=1000 * i)
        archive_partition(archive, "demand", DAY, {summary.batch: n}, pipeline.window)
        clear_pending(archive, "demand", [summary.batch])
        pipeline.payloads += payloads
        batches.append(summary.batch)
    for fmt in ("avro", "parquet"):
        assert set(committed(pipeline, fmt).values()) == {frozenset({b}) for b in batches}
    # The case is what we meant: one more small batch merges the three small files only.
    (group,) = plan_merges({b: n for b, n in zip(batches, SIZES, strict=True)}, 1)
    assert group == {"", batches[0], batches[2], batches[3]}, group
    return batches


def committed(pipeline: Pipeline, fmt: str) -> dict[str, frozenset[str]]:
    """The day's committed files of a format (data and sidecar both there): name -> batches."""
    prefix = f"{fmt}/demand/partition_date={DAY}/"
    keys = pipeline.keys(prefix)
    data = {k.rsplit("/", 1)[1].removesuffix(f".{fmt}") for k in keys if k.endswith(f".{fmt}")}
    files = {}
    for key in keys:
        leaf = key.rsplit("/", 1)[1]
        if leaf.startswith("_covers-") and leaf[len("_covers-") : -len(".json")] in data:
            files[leaf[len("_covers-") : -len(".json")]] = covers(pipeline, key)
    return files


def covers(pipeline: Pipeline, key: str) -> frozenset[str]:
    """The batches a sidecar (or the sidecar of a data key) lists."""
    if not key.rsplit("/", 1)[1].startswith("_covers-"):
        head, leaf = key.rsplit("/", 1)
        key = f"{head}/_covers-{leaf.rsplit('.', 1)[0]}.json"
    return frozenset(orjson.loads(pipeline.get(key))["batches"])


def day_objects(pipeline: Pipeline, fmt: str) -> list[str]:
    return pipeline.keys(f"{fmt}/demand/partition_date={DAY}/")


def rebuild_request() -> dg.RunRequest:
    """The day's rebuild, as a materialization of the record asset's partition launches it."""
    return dg.RunRequest(asset_selection=[dg.AssetKey("demand")], partition_key=DAY)


def data_put(nth: int = 1, forward_first: bool = False) -> Fault:
    """The nth data PUT into the day's partition, any format (sidecars do not match)."""
    return Fault(
        "s3",
        "PutObject",
        key_contains=f"/partition_date={DAY}/part-",
        nth=nth,
        action="hold",
        hold_seconds=HOLD,
        forward_first=forward_first,
    )


def one_file_each(pipeline: Pipeline, batches: set[str], alone: bool = True) -> None:
    """The day holds one committed file per format, holding every batch (and, `alone`, no
    other object: no write in flight)."""
    for fmt in ("avro", "parquet"):
        files = committed(pipeline, fmt)
        assert list(files.values()) == [batches], (fmt, files)
        if alone:
            assert len(day_objects(pipeline, fmt)) == 2, day_objects(pipeline, fmt)


def doubled(pipeline: Pipeline, fmt: str) -> int:
    counts = event_id_counts(archived(pipeline.s3, pipeline.settings)[fmt])
    return sum(1 for n in counts.values() if n > 1)


# -- an archive run held, a rebuild runs --------------------------------------------------------


@pytest.mark.parametrize(
    "forward_first", [False, True], ids=["held-before-s3", "held-after-reaching-s3"]
)
def test_a_rebuild_completes_while_an_archive_runs_data_put_is_held(forward_first, pipeline, proxy):
    batches = four_files(pipeline)
    pipeline.put(demand_on(DAY, 1, "b4"))
    (request,) = pipeline.tick().run_requests
    (newest,) = set(landed(pipeline)) - set(batches)
    (fault,) = proxy.add(data_put(forward_first=forward_first))

    with Child(pipeline.settings, "run", request_to_json(request)) as run:
        run.held(fault)
        held = fault.keys_hit[0]
        merged = covers(pipeline, held)  # its sidecar is written, its data held
        assert merged == {batches[0], batches[2], batches[3], newest}
        rebuilt = pipeline.run(rebuild_request())  # in this process, while the run waits
        assert rebuilt.success
        one_file_each(pipeline, {*batches, newest}, alone=False)
        fault.release()
        assert run.finish()["success"]

    # The run's data PUT went through after the rebuild (sent again by the SDK, or it had
    # reached S3 before), and the run withdrew its file: the rebuilt one holds its batches.
    assert proxy.count("s3", "PutObject", held) == 2
    assert not any(held.rsplit("/", 1)[1].split(".")[0] in k for k in day_objects(pipeline, "avro"))
    one_file_each(pipeline, {*batches, newest})
    table(
        "Writers racing: an archive run held, a rebuild runs",
        ("held", "meanwhile", "then", "archive"),
        [
            (
                fault.describe(),
                "the day rebuilt into one file per format",
                "released: the run withdrew its file",
                pipeline.drained(),
            )
        ],
    )


# -- a rebuild held, an archive run runs --------------------------------------------------------


def test_an_archive_run_merges_while_a_rebuilds_data_put_is_held(pipeline, proxy):
    batches = four_files(pipeline)
    (fault,) = proxy.add(data_put())

    with Child(pipeline.settings, "run", request_to_json(rebuild_request())) as rebuild:
        rebuild.held(fault)
        rebuilding = covers(pipeline, fault.keys_hit[0])
        assert rebuilding == set(batches)
        newest = land_and_archive(pipeline, 1, "b4")  # lands, and its run merges, meanwhile
        merged = committed(pipeline, "avro")
        assert set(merged.values()) == {
            frozenset({batches[1]}),
            frozenset({batches[0], batches[2], batches[3], newest}),
        }  # it crosses the held rebuild's file: each holds a batch the other lacks
        fault.release()
        assert rebuild.finish()["success"]

    one_file_each(pipeline, {*batches, newest})
    table(
        "Writers racing: a rebuild held, an archive run runs",
        ("held", "meanwhile", "then", "archive"),
        [
            (
                fault.describe(),
                "a newer batch landed and archived, merging 3 of the 4 files",
                "released: the rebuild crossed it, withdrew and rebuilt",
                pipeline.drained(),
            )
        ],
    )


def test_a_rebuild_killed_between_its_sidecar_and_its_data_leaves_nothing_that_counts(
    pipeline, proxy
):
    batches = four_files(pipeline)
    (fault,) = proxy.add(data_put())

    with Child(pipeline.settings, "run", request_to_json(rebuild_request())) as rebuild:
        assert kill_when_held(rebuild, fault) == ""
    proxy.clear()
    held = fault.keys_hit[0]
    orphan = covers(pipeline, held)  # its sidecar, without data
    assert orphan == set(batches) and held not in day_objects(pipeline, held.rsplit(".", 1)[1])

    newest = land_and_archive(pipeline, 1, "b4")  # an archive run next: it merges, keeps F1
    pipeline.verdict()
    for fmt in ("avro", "parquet"):
        assert set(committed(pipeline, fmt).values()) == {
            frozenset({batches[1]}),
            frozenset({batches[0], batches[2], batches[3], newest}),
        }, fmt
    assert pipeline.run(rebuild_request()).success  # and a rebuild again
    for fmt in ("avro", "parquet"):
        assert list(committed(pipeline, fmt).values()) == [{*batches, newest}], fmt
    table(
        "Rebuild killed between its sidecar and its data",
        ("killed at", "then", "archive"),
        [
            (
                fault.describe(),
                "an archive run, then a rebuild; the dead write's sidecar is ignored",
                pipeline.verdict(),
            )
        ],
    )


def test_a_rebuild_killed_after_its_data_landed_is_untangled_by_the_next_archive_run(
    pipeline, proxy
):
    """(A rebuild as the next writer rewrites the day whatever it holds: the unit tests of
    rule 4 cover it, storage/test_coverage_rules.py.)"""
    batches = four_files(pipeline)
    (put_held,) = proxy.add(data_put())

    with Child(pipeline.settings, "run", request_to_json(rebuild_request())) as rebuild:
        rebuild.held(put_held)
        newest = land_and_archive(pipeline, 1, "b4")  # merges 3 of the 4 files meanwhile
        # The rebuild's data goes through (the SDK sends it again once the held call is let
        # go); its next call is the listing of rule 3: SIGKILL there.
        (list_held,) = proxy.add(Fault("s3", "ListObjectsV2", action="hold", hold_seconds=HOLD))
        put_held.release()
        assert kill_when_held(rebuild, list_held) == ""
    proxy.clear()

    tangled = committed(pipeline, "avro")
    rebuilt = covers(pipeline, put_held.keys_hit[0])
    assert rebuilt == set(batches) and rebuilt in tangled.values()
    assert {batches[0], batches[2], batches[3], newest} in tangled.values()
    assert doubled(pipeline, "avro") == sum(SIZES)  # b1 too: nobody removed its file yet

    later = {land_and_archive(pipeline, 1, "b5")}  # the next archive run merges the tangle
    pipeline.drained()
    avro = committed(pipeline, "avro")
    assert set().union(*avro.values()) == {*batches, newest, *later}
    assert sum(len(b) for b in avro.values()) == len(batches) + 1 + len(later)  # no batch twice
    table(
        "Rebuild killed after its data landed, before its check",
        ("killed at", "left", "next writer", "archive"),
        [
            (
                list_held.describe(),
                f"{len(tangled)} avro files, crossing",
                "the next archive run merged the tangle",
                pipeline.drained(),
            )
        ],
    )
