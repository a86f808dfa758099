"""Which of a partition's files an archive run merges: size-tiered, with a cap on the count.

Every archive run that touches a partition writes one new file there, holding the batches it
archives. Left alone, a busy partition would hold one small file per run all day. So each run
folds existing files into its writes, as a size-tiered (log-structured) store does:

- tiers: a file's tier is `floor(log_FANOUT(records))`; when the new file would be the
  FANOUT-th of its tier, the others of that tier are folded into it, and again for the tier the
  merged file lands in;
- cap: while more than MAX_FILES files would be left, the two smallest are merged.

So a partition never holds more than MAX_FILES data files per format after a run (the one a
run writes included), and a record is rewritten about log_FANOUT(runs) times a day on
average: under 10 times over 8,640 runs (a day of runs every ten seconds), measured in
storage/test_coverage_rules.py; the cap's merges of the smallest files rewrite the unluckiest
records more (28-65 times in the same day). The nightly
compaction then rewrites each touched partition into one file.
"""

from __future__ import annotations

import math

FANOUT = 4
MAX_FILES = 12
NEW = ""  # stands for the batches the run archives, in the groups `plan_merges` returns


def plan_merges(
    existing: dict[str, int],
    new_records: int,
    fanout: int = FANOUT,
    max_files: int = MAX_FILES,
) -> list[frozenset[str]]:
    """The files to write: each a group of `existing` names (file -> records) merged into one,
    the group holding `NEW` also holding the run's new batches. Files in no group stay."""
    if max_files < 2 or fanout < 2:
        raise ValueError("fanout and max_files must be at least 2")
    entries: list[tuple[int, frozenset[str]]] = [(r, frozenset({n})) for n, r in existing.items()]
    entries.append((new_records, frozenset({NEW})))

    def merge(chosen: list[tuple[int, frozenset[str]]]) -> None:
        for entry in chosen:
            entries.remove(entry)
        entries.append((sum(r for r, _ in chosen), frozenset().union(*(m for _, m in chosen))))

    while True:  # tiers: FANOUT files of one tier become one file of a higher tier
        by_tier: dict[int, list[tuple[int, frozenset[str]]]] = {}
        for entry in entries:
            by_tier.setdefault(_tier(entry[0], fanout), []).append(entry)
        full = [group for _, group in sorted(by_tier.items()) if len(group) >= fanout]
        if not full:
            break
        merge(sorted(full[0], key=_order)[:fanout])
    while len(entries) > max_files:  # cap: the two smallest become one
        merge(sorted(entries, key=_order)[:2])
    return [members for _, members in entries if len(members) > 1 or NEW in members]


def _order(entry: tuple[int, frozenset[str]]) -> tuple[int, list[str]]:
    return entry[0], sorted(entry[1])


def _tier(records: int, fanout: int) -> int:
    return int(math.log(max(records, 1), fanout) + 1e-9)
