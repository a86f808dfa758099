"""The coverage rules of a partition's files (`storage.partition_files`, rules 1-4) and the
merge plan of `storage.tiering`, each stated as a test.

The rules on listings are tested as functions; on a partition, through the production writer
(`archiving.archive_partition`) on an in-memory S3 (`storage/memory.py`), where two writers
are interleaved call by call in a scripted order (`script`), and killed at a chosen call.
Every data object is read back (fastavro, pyarrow), as Athena would read it."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from demand_assets.storage.partition_files import (
    ABANDONED_AFTER,
    DataFile,
    Listing,
    crossing,
    file_name,
    held,
    subsumed,
    tangles,
)
from demand_assets.storage.partition_write import archive_partition
from demand_assets.storage.tiering import MAX_FILES, NEW, plan_merges
from demand_assets_tests.builders import WINDOW
from demand_assets_tests.storage.memory import (
    DAY,
    FORMATS,
    GO,
    KILL_BEFORE,
    Interleaver,
    committed,
    data_keys,
    event_ids,
    four_files,
    is_data_put,
    is_list,
    land,
    memory_archive,
    once,
    script,
    sidecar_of,
    writer,
)


def f(*batches: str) -> DataFile:
    return DataFile(file_name(batches), frozenset(batches), len(batches))


# -- the rules, on listings --------------------------------------------------------------------


def test_a_name_stands_for_a_set_of_batches():
    assert file_name(["b2", "b1"]) == file_name(["b1", "b2", "b1"])
    assert file_name(["b1"]) != file_name(["b1", "b2"])
    assert file_name(["b1"]).startswith("part-")


def test_rule_2_a_file_whose_batches_another_holds_is_subsumed():
    one, both, other = f("b1"), f("b1", "b2"), f("b3")
    assert subsumed([one, both, other]) == {one.name}
    assert subsumed([both, f("b2", "b3")]) == set()  # overlap without holding: not subsumed
    assert subsumed([one]) == set()


def test_rule_3_files_cross_when_they_share_batches_and_the_other_holds_more():
    mine = f("b1", "b2")
    assert crossing(mine, [f("b2", "b3")]) == [f("b2", "b3")]  # shares b2, holds b3
    assert crossing(mine, [f("b1", "b2", "b3")]) == [f("b1", "b2", "b3")]  # holds all of mine
    assert crossing(mine, [f("b1"), f("b3"), mine]) == []  # inside mine, apart, itself


def test_rule_4_tangles_group_files_linked_by_partial_overlaps():
    a, b, c = f("b1", "b2"), f("b2", "b3"), f("b3", "b4")
    inside, apart = f("b1"), f("b9")
    groups = tangles([a, b, c, inside, apart])
    assert groups == [{a.name, b.name, c.name}]  # a-b-c, linked through b; inside a is no tangle
    assert tangles([a, inside, apart]) == []


def test_held_and_live():
    one, both = f("b1"), f("b1", "b2")
    listing = Listing({one.name: one, both.name: both})
    assert held([one, both]) == {"b1", "b2"}
    assert listing.live == [both]


@given(
    st.lists(st.frozensets(st.sampled_from([f"b{i}" for i in range(6)]), min_size=1), max_size=6)
)
def test_the_rules_agree_on_any_set_of_files(sets):
    files = list({file_name(s): DataFile(file_name(s), s, len(s)) for s in sets}.values())
    gone = subsumed(files)
    groups = tangles(files)
    for file in files:
        others = [o for o in files if o.name != file.name]
        assert (file.name in gone) == any(file.batches <= o.batches for o in others)
        for other in crossing(file, others):
            assert other.batches & file.batches and not other.batches <= file.batches
    in_groups = [name for group in groups for name in group]
    assert len(in_groups) == len(set(in_groups))  # a file is in one tangle at most
    for group in groups:
        assert len(group) >= 2
    # Files that are not subsumed and in no tangle hold each batch once among them.
    settled = [x for x in files if x.name not in gone and x.name not in in_groups]
    counts = Counter(b for x in settled for b in x.batches)
    assert all(n == 1 for n in counts.values()), counts


# -- one partition: writers interleaved call by call -------------------------------------------


def test_rule_1_a_sidecar_is_written_before_its_data_and_removed_after_it():
    archive = memory_archive()
    ids = four_files(archive)
    archive.bucket.history.clear()
    archive_partition(archive, "demand", DAY, None, WINDOW)  # a rebuild: one file for four
    calls = [(op, key) for op, keys in archive.bucket.history for key in keys]
    puts = [key for op, key in calls if op == "put"]
    deletes = [key for op, key in calls if op == "delete"]
    written = [key for key in puts if "/part-" in key]
    removed = [key for key in deletes if "/part-" in key]
    assert len(written) == len(FORMATS) and len(removed) == 4 * len(FORMATS)
    for key in written:
        assert puts.index(sidecar_of(key)) < puts.index(key), key
    for key in removed:
        assert deletes.index(key) < deletes.index(sidecar_of(key)), key
    once(archive, set().union(*ids.values()))


def test_rule_1_a_sidecar_without_its_data_counts_for_nothing():
    archive = memory_archive()
    ids = four_files(archive)
    ids["b4"] = land(archive, "b4", 1)
    # A rebuild dies between its sidecar and its data: its sidecar says b0..b4, alone.
    outcomes = Interleaver(archive.bucket).run(
        [writer(archive, None)], script((0, is_data_put, KILL_BEFORE))
    )
    assert outcomes[0][0] == "killed"
    for fmt in FORMATS:
        assert sorted(map(sorted, committed(archive, fmt).values())) == [
            ["b0"],
            ["b1"],
            ["b2"],
            ["b3"],
        ]
    # The next archive run does not take the lone sidecar for a file holding b4 (nor for
    # one holding b0..b3, which would remove their files): it archives b4, merging.
    archive_partition(archive, "demand", DAY, {"b4": 1}, WINDOW)
    once(archive, set().union(*ids.values()))
    assert any(len(b) == 4 for b in committed(archive, "avro").values())


def test_a_lone_sidecar_or_data_object_goes_once_it_is_older_than_abandoned_after():
    archive = memory_archive()
    ids = four_files(archive)
    ids["b4"] = land(archive, "b4", 1)
    Interleaver(archive.bucket).run([writer(archive, None)], script((0, is_data_put, KILL_BEFORE)))
    with_data = {sidecar_of(k) for k in data_keys(archive, "avro")}
    lone = [k for k in archive.bucket.objects if "/avro/" in k and "/_covers-" in k]
    lone = [k for k in lone if k not in with_data]
    assert len(lone) == 1, lone
    archive.bucket.age(ABANDONED_AFTER - timedelta(minutes=1))
    archive_partition(archive, "demand", DAY, {"b4": 1}, WINDOW)
    assert lone[0] in archive.bucket.objects  # perhaps a write still in flight: left alone
    archive.bucket.age(timedelta(minutes=2))
    ids["b5"] = land(archive, "b5", 1)
    archive_partition(archive, "demand", DAY, {"b5": 1}, WINDOW)
    assert lone[0] not in archive.bucket.objects  # a write that died: removed
    once(archive, set().union(*ids.values()))


def test_rule_2_files_held_by_an_unsettled_file_stay_until_it_is_settled():
    """A rebuild dies after its data is written, before it settles and removes the four files
    it holds. Its file might yet be withdrawn (rule 3), so the next writer keeps the four
    (counting them for nothing); once the file is older than ABANDONED_AFTER its writer has
    settled it or died, and the next writer removes them."""
    archive = memory_archive()
    ids = four_files(archive)
    outcomes = Interleaver(archive.bucket).run(
        [writer(archive, None)], script((0, is_data_put, GO), (0, is_list, KILL_BEFORE))
    )
    assert outcomes[0][0] == "killed"
    assert len(committed(archive, "avro")) == 5
    ids["b4"] = land(archive, "b4", 1)
    result = archive_partition(archive, "demand", DAY, {"b4": 1}, WINDOW)
    assert sorted(map(sorted, committed(archive, "avro").values())) == [
        ["b0"],
        ["b0", "b1", "b2", "b3"],
        ["b1"],
        ["b2"],
        ["b3"],
        ["b4"],
    ]
    assert result.rows["avro"] == sum(map(len, ids.values()))  # the held four count for nothing
    archive.bucket.age(ABANDONED_AFTER + timedelta(minutes=1))
    ids["b5"] = land(archive, "b5", 1)
    archive_partition(archive, "demand", DAY, {"b5": 1}, WINDOW)
    held_sets = list(committed(archive, "avro").values())
    assert frozenset({"b0", "b1", "b2", "b3"}) <= set().union(*held_sets)
    assert not any(len(b) == 1 and b <= {"b0", "b1", "b2", "b3"} for b in held_sets)
    once(archive, set().union(*ids.values()))


def test_rule_3_an_archive_run_finishing_after_a_rebuild_withdraws_its_file():
    archive = memory_archive()
    ids = four_files(archive)
    ids["b4"] = land(archive, "b4", 1)
    run = Interleaver(archive.bucket)
    outcomes = run.run(
        [writer(archive, {"b4": 1}), writer(archive, None)],
        script((0, is_data_put, "pause"), (1, None, GO)),  # the run held at its data
    )
    assert [o[0] for o in outcomes.values()] == ["ok", "ok"]
    merged = file_name(["b0", "b2", "b3", "b4"])
    assert any(merged in k for k in outcomes[0][1].removed["avro"])  # written, withdrawn
    assert list(committed(archive, "avro").values()) == [frozenset(ids)]
    once(archive, set().union(*ids.values()))


def test_rule_3_a_rebuild_finishing_after_a_crossing_archive_run_rebuilds_again():
    archive = memory_archive()
    ids = four_files(archive)
    run = Interleaver(archive.bucket)
    outcomes = run.run(
        [writer(archive, None), writer(archive, {"b4": 1}, lands={"b4": 1})],
        script((0, is_data_put, "pause"), (1, None, GO)),  # b4 lands after the rebuild listed
    )
    ids["b4"] = {"b4-0"}
    assert [o[0] for o in outcomes.values()] == ["ok", "ok"]
    first = file_name(["b0", "b1", "b2", "b3"])
    assert any(first in k for k in outcomes[0][1].removed["avro"])  # crossed: withdrawn
    assert list(committed(archive, "avro").values()) == [frozenset(ids)]
    once(archive, set().union(*ids.values()))


@pytest.mark.parametrize("next_writer", ["archive-run", "rebuild"])
def test_rule_4_the_next_writer_merges_files_left_crossing(next_writer):
    archive = memory_archive()
    ids = four_files(archive)
    outcomes = Interleaver(archive.bucket).run(
        [writer(archive, None), writer(archive, {"b4": 1}, lands={"b4": 1})],
        script(
            (0, is_data_put, "pause"),  # the rebuild at its data; b4 lands and is archived
            (1, None, GO),
            (0, is_data_put, GO),  # the rebuild's data is written: it crosses the run's
            (0, is_list, KILL_BEFORE),  # and it dies before it looks again
        ),
    )
    ids["b4"] = {"b4-0"}
    assert outcomes[0][0] == "killed" and outcomes[1][0] == "ok"
    avro = committed(archive, "avro")
    assert tangles(DataFile(n, b, 0) for n, b in avro.items())  # the rebuild's and the run's
    assert max(event_ids(archive, "avro").values()) == 2

    if next_writer == "archive-run":
        ids["b5"] = land(archive, "b5", 1)
        archive_partition(archive, "demand", DAY, {"b5": 1}, WINDOW)
    else:
        archive_partition(archive, "demand", DAY, None, WINDOW)
    assert not tangles(DataFile(n, b, 0) for n, b in committed(archive, "avro").items())
    once(archive, set().union(*ids.values()))


# -- the merge plan ----------------------------------------------------------------------------


def test_the_merge_plan_folds_a_full_tier_and_keeps_the_rest():
    assert plan_merges({}, 5) == [{NEW}]
    assert plan_merges({"a": 1, "b": 1, "c": 1}, 1) == [{NEW, "a", "b", "c"}]  # 4 of tier 0
    assert plan_merges({"a": 1, "b": 1, "big": 16}, 1) == [{NEW}]  # 3 of tier 0: no merge
    with pytest.raises(ValueError):
        plan_merges({}, 1, max_files=1)


@settings(max_examples=150, deadline=None)
@given(
    runs=st.lists(st.integers(1, 400), min_size=1, max_size=60),
    fanout=st.integers(2, 6),
    max_files=st.integers(2, 14),
)
def test_any_sequence_of_runs_keeps_every_batch_once_in_at_most_max_files(runs, fanout, max_files):
    """Runs into one partition, each its plan applied as an archive run applies it: the files
    hold every batch archived so far, each once, and never more than `max_files` of them."""
    files: dict[str, tuple[int, frozenset[str]]] = {}  # name -> (records, batches)
    for number, records in enumerate(runs):
        batch = f"run-{number}"
        groups = plan_merges({n: r for n, (r, _) in files.items()}, records, fanout, max_files)
        members = [m for g in groups for m in g]
        assert len(members) == len(set(members)), groups  # a file is merged into one file
        assert sum(NEW in g for g in groups) == 1, groups  # the run's batches go in one
        assert set(members) - {NEW} <= set(files)
        for group in groups:
            merged = [files.pop(n) for n in group if n != NEW]
            batches = frozenset().union(*(b for _, b in merged))
            total = sum(r for r, _ in merged)
            if NEW in group:
                batches, total = batches | {batch}, total + records
            files[file_name(batches)] = (total, batches)
        assert len(files) <= max_files
        counts = Counter(b for _, batches in files.values() for b in batches)
        assert set(counts) == {f"run-{i}" for i in range(number + 1)}
        assert set(counts.values()) == {1}
        assert sum(r for r, _ in files.values()) == sum(runs[: number + 1])


@pytest.mark.parametrize("per_run", [1, 10, 100])
def test_a_day_of_runs_writes_each_record_a_few_times_on_average(per_run):
    """8,640 runs (every ten seconds for a day) of `per_run` changes each: never more than
    MAX_FILES files, and each record written about log_FANOUT(runs) times on average (6 to 8
    here; some records are rewritten far more often: the cap merges the smallest files)."""
    files: dict[str, int] = {}  # name -> records
    written = 0
    for number in range(8_640):
        groups = plan_merges(files, per_run)
        for i, group in enumerate(groups):
            records = sum(files.pop(n) for n in group if n != NEW)
            records += per_run if NEW in group else 0
            written += records
            files[f"{number}-{i}"] = records
        assert len(files) <= MAX_FILES
    assert sum(files.values()) == 8_640 * per_run
    assert written / (8_640 * per_run) < 10
