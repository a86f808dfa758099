"""What the local runs print: a line per sensor tick, the checks grouped by outcome, and the
verdict of a headless run (its exit code). No Dagster in here: the callers give plain values."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from demand_assets.storage.batches import BatchSummary

STATUSES = ("failed", "warned", "passed")
LISTED = 6  # partitions named in full on a check's line; past that, counted per asset


@dataclass(frozen=True)
class CheckOutcome:
    """One check on one partition of one asset."""

    asset: str
    check: str
    partition: str
    severity: str  # "ERROR" or "WARN"
    passed: bool
    evaluated: bool = True  # False: its run failed before the check reported

    @property
    def status(self) -> str:
        if self.passed and self.evaluated:
            return "passed"
        return "warned" if self.severity == "WARN" and self.evaluated else "failed"


@dataclass(frozen=True)
class Verdict:
    exit_code: int
    lines: list[str]


def plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'s' * (n != 1)}"


def verdict(outcomes: list[CheckOutcome], lost: int) -> Verdict:
    """Exit 1 on a failed ERROR-severity check (or one its run never reported) or a lost change
    (put on the stream, not in the archive); warned checks exit 0. With the lines saying so."""
    lines = check_lines(outcomes)
    failed = sum(o.status == "failed" for o in outcomes)
    reasons = []
    if failed:
        reasons.append(f"{plural(failed, 'ERROR check')} failed")
    if lost:
        reasons.append(f"{plural(lost, 'change')} lost")
    if reasons:
        lines.append(f"exit 1: {' and '.join(reasons)}")
        return Verdict(1, lines)
    warned = sum(o.status == "warned" for o in outcomes)
    note = f" ({warned} warned: a WARN check does not fail the run)" if warned else ""
    lines.append(f"exit 0: no ERROR check failed, no change lost{note}")
    return Verdict(0, lines)


def check_lines(outcomes: list[CheckOutcome]) -> list[str]:
    """A count per outcome, then a line per (outcome, check name) with where it happened."""
    by_status: dict[str, dict[str, list[CheckOutcome]]] = {s: defaultdict(list) for s in STATUSES}
    for outcome in outcomes:
        by_status[outcome.status][outcome.check].append(outcome)
    counts = ", ".join(f"{sum(map(len, by_status[s].values()))} {s}" for s in reversed(STATUSES))
    lines = [f"checks: {counts} (one per check and partition)"]
    for status in STATUSES:
        for check, found in sorted(by_status[status].items()):
            severity = found[0].severity
            unevaluated = sum(not o.evaluated for o in found)
            note = f", {unevaluated} not evaluated (run failed)" if unevaluated else ""
            listed = status != "passed" and len(found) <= LISTED
            where = _named(found) if listed else _counted(found)
            lines.append(f"  {status:6s} {check} ({severity}): {where}{note}")
    return lines


def _named(found: list[CheckOutcome]) -> str:
    by_asset: dict[str, list[str]] = defaultdict(list)
    for outcome in found:
        by_asset[outcome.asset].append(outcome.partition)
    return "; ".join(f"{a} {', '.join(sorted(days))}" for a, days in sorted(by_asset.items()))


def _counted(found: list[CheckOutcome]) -> str:
    per_asset: dict[str, int] = defaultdict(int)
    for outcome in found:
        per_asset[outcome.asset] += 1
    assets = ", ".join(f"{a} {n}" for a, n in sorted(per_asset.items()))
    return f"{plural(len(found), 'partition')} ({assets})"


def tick_line(
    label: str,
    batches: list[BatchSummary],
    runs: list[bool] | None,
    archived: int,
    expected: int | None = None,
) -> str:
    """`label`: changes read (the new batches), partitions touched, lag, runs requested (True:
    succeeded; None: not known here), changes visible in the archive."""
    changes = sum(b.records for b in batches)
    partitions = {key for b in batches for key in b.archivable}
    lag = max((b.millis_behind_latest for b in batches), default=0) / 1000
    requested = ""
    if runs is not None:
        requested = f"{plural(len(runs), 'run')} requested" if runs else "no run"
        if runs.count(False):
            requested += f" ({runs.count(False)} failed)"
        requested += "; "
    total = f" of {expected:,}" if expected is not None else ""
    return (
        f"{label}: read {plural(changes, 'change')}, {plural(len(partitions), 'partition')}, "
        f"lag {lag:.1f} s; "
        f"{requested}{archived:,}{total} archived"
    )
