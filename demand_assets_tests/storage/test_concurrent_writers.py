"""Writers of one partition in every order: the production writer (`archive_partition`) on an
in-memory S3, interleaved call by call (`storage/memory.py`), in orders chosen by hypothesis
or scripted, with kills at chosen calls. Every data object is read back."""

from __future__ import annotations

import random
from datetime import timedelta

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from demand_assets.storage.partition_files import ABANDONED_AFTER
from demand_assets.storage.partition_write import archive_partition
from demand_assets_tests.builders import WINDOW
from demand_assets_tests.storage.memory import (
    DAY,
    FORMATS,
    GO,
    KILL_AFTER,
    KILL_BEFORE,
    Interleaver,
    committed,
    data_keys,
    event_ids,
    four_files,
    is_data_put,
    is_delete,
    is_list,
    land,
    memory_archive,
    once,
    script,
    sidecar_of,
    writer,
)


def any_call(op: str, key: str) -> bool:
    return True


# -- two orders that once lost archived changes -----------------------------------------------

# Rule 2 once removed files that another writer's file held while that file could still be
# withdrawn by rule 3; these orders lost what both crossed files held. A file held by another
# is now removed only once the holder is settled (`partition_files.removable`).


def test_two_archive_runs_crossing_lose_nothing():
    """Two runs of one partition (b4 and b5), both merging the three small files: both write,
    both see the other's file and withdraw; the first to plan again still lists the second's
    file, removes the three small files as held by it, and the second then removes its own.
    Lost in Avro: b0, b2, b3, until a rebuild; Parquet, in another order, holds them."""
    archive = memory_archive()
    ids = four_files(archive)
    ids["b4"], ids["b5"] = land(archive, "b4", 1), land(archive, "b5", 1)
    outcomes = Interleaver(archive.bucket).run(
        [writer(archive, {"b4": 1}), writer(archive, {"b5": 1})],
        script(
            (0, is_data_put, "pause"),  # both planned {b0, b2, b3, own}, sidecars written
            (1, is_data_put, "pause"),
            (0, is_list, "pause"),  # both files committed in both formats: they cross
            (1, is_list, "pause"),
            (0, is_list, GO),  # each lists, sees the other's file, will withdraw its own
            (0, is_delete, "pause"),
            (1, is_list, GO),
            (1, is_delete, "pause"),
            (0, None, GO),  # the first withdraws, plans again and ends; then the second
        ),
    )
    assert [o[0] for o in outcomes.values()] == ["ok", "ok"]
    once(archive, set().union(*ids.values()))


def test_a_rebuild_killed_after_withdrawing_a_crossed_file_loses_nothing():
    """A rebuild crosses an archive run of a batch that landed after it listed: both
    withdraw; the run plans again, still listing the rebuild's file, and removes the four
    files it holds; the rebuild removes its own and is killed before writing again. Lost:
    b0..b3 in Avro, until the next rebuild of the day (the nightly one, if the day is
    touched again; the pending marks of b0..b3 were cleared long ago)."""
    archive = memory_archive()
    ids = four_files(archive)
    outcomes = Interleaver(archive.bucket).run(
        [writer(archive, None), writer(archive, {"b4": 1}, lands={"b4": 1})],
        script(
            (0, is_data_put, "pause"),  # the rebuild planned {b0..b3}
            (1, is_data_put, "pause"),  # b4 landed; the run planned {b0, b2, b3, b4}
            (0, is_list, "pause"),  # both files committed in both formats: they cross
            (1, is_list, "pause"),
            (0, is_list, GO),  # each lists, sees the other's file, will withdraw its own
            (0, is_delete, "pause"),
            (1, is_list, GO),
            (1, None, GO),  # the run withdraws, plans again, ends
            (0, is_delete, GO),  # the rebuild withdraws its file (data, then sidecar)
            (0, is_delete, GO),
            (0, any_call, KILL_BEFORE),  # and dies at its next call
        ),
    )
    ids["b4"] = {"b4-0"}
    assert outcomes[0][0] == "killed" and outcomes[1][0] == "ok"
    for fmt in FORMATS:
        held = set().union(*committed(archive, fmt).values())
        assert held >= {"b0", "b1", "b2", "b3", "b4"}, (fmt, held)


# -- any order: an archive run and a rebuild -------------------------------------------------

# The day's files before the two writers: often three small ones and a large one, of which
# the run's batch, if small, merges the small ones (so the two writers can cross).
INITIAL = st.one_of(
    st.just([1, 16, 1, 1]), st.lists(st.sampled_from([1, 1, 1, 2, 5, 16]), max_size=5)
)


def initial_files(archive, sizes: list[int]) -> dict[str, set[str]]:
    """Batches i0, i1... landed and archived one after another: the day's files."""
    ids = {}
    for i, n in enumerate(sizes):
        ids[f"i{i}"] = land(archive, f"i{i}", n)
        archive_partition(archive, "demand", DAY, {f"i{i}": n}, WINDOW)
    return ids


def lone_data(archive) -> list[str]:
    return [
        k
        for fmt in FORMATS
        for k in data_keys(archive, fmt)
        if sidecar_of(k) not in archive.bucket.objects
    ]


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    sizes=INITIAL,
    new=st.sampled_from([1, 1, 3, 20]),
    again=st.sampled_from([False, False, True]),
    kill=st.booleans(),
    schedule=st.integers(0, 2**32 - 1),
)
def test_an_archive_run_and_a_rebuild_in_any_order_keep_every_change_once(
    sizes, new, again, kill, schedule
):
    """What the deployment runs at once on a partition: one archive run (single flight) and
    one rebuild. The run lands its batch `b` first (so the rebuild may list it or not), or,
    `again`, archives an already archived batch once more (a killed run's batch, redone).
    The run may be killed at any call (`kill`). Afterwards no change is lost: each change of
    a file that existed, and of the run's batch if the run succeeded, is in a file that
    counts; with no kill, no change is held twice, by any data object. After a kill, the
    run's batch is archived again an hour later (its pending mark stayed), and then every
    change is once in each format."""
    archive = memory_archive()
    ids = initial_files(archive, sizes)
    if again and ids:
        batch = f"i{len(sizes) - 1}"
        run = writer(archive, {batch: sizes[-1]})
    else:
        batch = "b"
        run = writer(archive, {"b": new}, lands={"b": new})
    # The order, as in probabilistic concurrency testing: one writer goes first and keeps
    # going; at a few calls, drawn uniformly from the first 50, the other takes over. A kill
    # hits the run at one of its calls. (A seed, not hypothesis's own draws: they favour small
    # and boundary values, and these orders need switches anywhere.)
    rng = random.Random(schedule)
    first = rng.choice([0, 1])
    switches = set(rng.sample(range(50), rng.choice([1, 2, 3])))
    kill_at = rng.randrange(40) if kill else None
    how = rng.choice([KILL_BEFORE, KILL_AFTER])
    state = {"calls": 0, "runs": 0, "order": [first, 1 - first]}

    def choose(options):
        if state["calls"] in switches:
            state["order"].reverse()
        state["calls"] += 1
        waiting = {w for w, _, _ in options}
        who = next(w for w in state["order"] if w in waiting)
        if who == 0:
            state["runs"] += 1
            if state["runs"] - 1 == kill_at:
                return who, how
        return who, GO

    outcomes = Interleaver(archive.bucket).run([run, writer(archive, None)], choose)
    assert outcomes[1][0] == "ok", outcomes[1]  # the rebuild
    assert outcomes[0][0] in ("ok", "killed"), outcomes[0]
    run_ok = outcomes[0][0] == "ok"
    for index, (outcome, result) in outcomes.items():
        if outcome == "ok" and set(result.written.get("avro", ())) & set(
            result.removed.get("avro", ())
        ):
            event(f"{('the run', 'the rebuild')[index]} withdrew a file it had written")
    event(f"the run: {outcomes[0][0]}")
    must_hold = set().union(set(), *ids.values()) | (set(ids.get(batch, ())) if run_ok else set())
    if batch == "b":
        ids["b"] = {f"b-{i}" for i in range(new)}
        must_hold |= ids["b"] if run_ok else set()
    for fmt in FORMATS:
        lost = must_hold - set(event_ids(archive, fmt, committed_only=True))
        assert not lost, (fmt, sorted(lost))
    if run_ok:
        assert not lone_data(archive)
        once(archive, set().union(*ids.values()))  # every data object read, as Athena does
        return
    # The killed run's batch is archived again by the next run, an hour later (its pending
    # mark stayed; what the killed run left behind has been abandoned since).
    archive.bucket.age(ABANDONED_AFTER + timedelta(minutes=1))
    if not archive.bucket.objects.get(archive.layout.landing_key("demand", DAY, batch)):
        land(archive, batch, new)  # killed before its batch landed
    archive_partition(archive, "demand", DAY, {batch: len(ids[batch])}, WINDOW)
    once(archive, set().union(*ids.values()))
