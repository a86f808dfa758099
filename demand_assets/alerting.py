"""Alerts, without Dagster: the conditions an operator is told about, what each alert says
(what failed, where to look, the UI's pages, the README's runbook section for it), and which
to send. A condition that starts to hold alerts once; while it holds, not again; once it has
cleared, it may alert again. `settle` keeps that book on the conditions' keys, which the
sensor keeps in its cursor (README, "Alerts"; defs/alerts.py runs them as sensors).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import orjson

from demand_assets.records import RECORD_TYPES
from demand_assets.storage.batches import BatchSummary

# The code location's name (workspace.yaml, deploy/workspace.yaml): the UI's paths include it.
LOCATION = "demand_assets"
STREAM_SENSOR = "demand_stream_sensor"
ARCHIVE_JOB = "archive_batches"
# The tags Dagster's run retries set on a failed run (dagster._core.storage.tags).
WILL_RETRY_TAG = "dagster/will_retry"
RETRY_NUMBER_TAG = "dagster/retry_number"
PARTITION_TAG = "dagster/partition"
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"

# Alert kind -> the README's runbook subsection (its GitHub anchor).
RUNBOOK = {
    "run_failed": "run-failed",
    "stream_lag": "stream-lag",
    "check_failed": "error-check-failed",
    "error_rate": "error-rate",
    "archive_stalled": "archive-stalled",
}
SUBJECT_LIMIT = 100  # SNS: at most 100 printable ASCII characters, no line breaks


@dataclass(frozen=True)
class Thresholds:
    """When the sensor's conditions hold (DEMAND_ALERT_*; README, "Configuration")."""

    lag_seconds: float  # the stream sensor reads further behind the stream's tip
    error_rate: float  # share of a type's changes of the day that went to errors
    archive_minutes: float  # a landed batch still not archived after this long


@dataclass(frozen=True)
class Alert:
    key: str  # the condition: one alert per key until it clears
    kind: str  # a key of RUNBOOK
    title: str  # what failed, in one line
    details: tuple[str, ...] = ()  # what was measured, what happened
    where: tuple[str, ...] = ()  # asset, partition, run, stream
    pages: tuple[str, ...] = ()  # the UI's pages, as paths under its address

    @property
    def runbook(self) -> str:
        return f"README.md#{RUNBOOK[self.kind]}"

    def subject(self) -> str:
        text = "demand-assets: " + " ".join(self.title.split())
        text = text.encode("ascii", "replace").decode()
        return text if len(text) <= SUBJECT_LIMIT else text[: SUBJECT_LIMIT - 3] + "..."

    def links(self, ui_url: str) -> list[str]:
        return [ui_url.rstrip("/") + page for page in self.pages]

    def message(self, ui_url: str) -> str:
        lines = [self.title, ""]
        lines += [f"What: {d}" for d in self.details]
        lines += [f"Where: {w}" for w in self.where]
        lines += [f"UI: {link}" for link in self.links(ui_url)]
        lines += [
            f"Runbook: {self.runbook}",
            f"Condition: {self.key} (alerted once; again only after it has cleared)",
        ]
        return "\n".join(lines)

    def line(self, ui_url: str) -> str:
        """The alert as one log line."""
        parts = [f"ALERT {self.title}", *self.details, *self.where, *self.links(ui_url)]
        return " | ".join([*parts, f"runbook {self.runbook}"])


def settle(
    active: Mapping[str, str], holding: Iterable[Alert], now: datetime
) -> tuple[list[Alert], list[str], dict[str, str]]:
    """The alerts to send (conditions that started to hold), the keys that cleared, and the new
    active set (key -> since when it holds)."""
    holding = {alert.key: alert for alert in holding}
    new = [alert for key, alert in holding.items() if key not in active]
    cleared = sorted(key for key in active if key not in holding)
    still = {key: since for key, since in active.items() if key in holding}
    still.update({alert.key: now.isoformat() for alert in new})
    return new, cleared, still


# UI pages --------------------------------------------------------------------------------------


def asset_page(asset: str, view: str | None = None, partition: str | None = None) -> str:
    page = f"/assets/{asset}"
    query = [f"view={view}"] if view else []
    if partition:
        query.append(f"partition={partition}")
    return page + ("?" + "&".join(query) if query else "")


def sensor_page(name: str) -> str:
    return f"/locations/{LOCATION}/sensors/{name}"


def job_page(name: str) -> str:
    return f"/locations/{LOCATION}/jobs/{name}"


def run_page(run_id: str) -> str:
    return f"/runs/{run_id}"


# The sensor's state (its cursor) -----------------------------------------------------------------


@dataclass
class AlertState:
    active: dict[str, str] = field(default_factory=dict)  # condition key -> since
    # Batch summaries read so far: the last key, the newest batch's lag, the day's totals.
    summaries_after: str | None = None
    newest: dict | None = None  # {"batch", "millis_behind_latest", "last_arrival"}
    totals: dict[str, dict[str, list[int]]] = field(default_factory=dict)  # day -> type -> [r, n]
    # Check evaluations read so far (the newest one's time), and the ERROR checks failing:
    # check key -> {"scopes": [[first, last], ...], "asset", "check", "run_id", ...}.
    checks_after: float = 0.0
    failing: dict[str, dict] = field(default_factory=dict)

    @classmethod
    def load(cls, cursor: str | None) -> AlertState:
        if not cursor:
            return cls()
        fields = orjson.loads(cursor)
        return cls(**{k: v for k, v in fields.items() if k in cls.__dataclass_fields__})

    def dump(self) -> str:
        return orjson.dumps(self.__dict__, option=orjson.OPT_SORT_KEYS).decode()


# Stream lag and error rate: from the batch summaries ------------------------------------------


def summary_days(today: str) -> tuple[str, str]:
    """The arrival days whose summaries the sensor reads: yesterday and today."""
    return (datetime.fromisoformat(today) - timedelta(days=1)).date().isoformat(), today


def take_summaries(
    state: AlertState, summaries: Iterable[BatchSummary], today: str, last_key: str | None
) -> None:
    """Add the summaries read after `state.summaries_after` (in key order) to the per-day
    totals of the arrival days kept (yesterday and today); `last_key` is the last one read."""
    keep = set(summary_days(today))
    for summary in summaries:
        day = _day(summary.batch)
        if day in keep:
            by_type = state.totals.setdefault(day, {})
            for record_type, changes in summary.touched().items():
                by_type.setdefault(record_type, [0, 0])[1] += sum(changes.values())
            for record_type, rejected in summary.rejected.items():
                counts = by_type.setdefault(record_type, [0, 0])
                counts[0] += rejected
                counts[1] += rejected
    state.totals = {day: t for day, t in state.totals.items() if day in keep}
    if last_key is not None:
        state.summaries_after = last_key


def take_newest(state: AlertState, summary: BatchSummary) -> None:
    """The newest batch landed: its lag is the stream sensor's latest."""
    state.newest = {
        "batch": summary.batch,
        "millis_behind_latest": summary.millis_behind_latest,
        "last_arrival": summary.last_arrival,
    }


def _day(batch: str) -> str:
    """The day a stream batch's first change arrived, from its name (stream/checkpoints.py)."""
    return f"{batch[0:4]}-{batch[4:6]}-{batch[6:8]}"


def batch_arrival(batch: str) -> str | None:
    """When a stream batch's first change arrived (ISO-8601 UTC, to the second), from its name
    `20261120T101010Z-...`; None for a batch of another kind (a table scan's, a replay's)."""
    if len(batch) < 16 or batch[8] != "T" or batch[15] != "Z" or not batch[:8].isdigit():
        return None
    return f"{_day(batch)}T{batch[9:11]}:{batch[11:13]}:{batch[13:15]}+00:00"


def stream_lag(state: AlertState, thresholds: Thresholds, stream: str) -> Alert | None:
    """The newest batch was read further behind the stream's tip than the threshold."""
    newest = state.newest
    if not newest or newest["millis_behind_latest"] <= thresholds.lag_seconds * 1000:
        return None
    behind = newest["millis_behind_latest"] / 1000
    return Alert(
        key="stream_lag",
        kind="stream_lag",
        title=f"stream lag {behind:,.0f} s on {stream} (over {thresholds.lag_seconds:g} s)",
        details=(
            f"the newest batch {newest['batch']} was read {behind:,.0f} s behind the tip of "
            f"stream {stream} (MillisBehindLatest); its last change arrived "
            f"{newest['last_arrival']}",
        ),
        where=(f"sensor {STREAM_SENSOR}", f"stream {stream}"),
        pages=(sensor_page(STREAM_SENSOR),),
    )


def error_rates(state: AlertState, thresholds: Thresholds, errors_at: str) -> list[Alert]:
    """Per arrival day and record type: the share of the changes claiming the type that went to
    errors/ (`errors_at`), counted as the check `error_rate_below_0_1_percent` counts it, at
    or over the bound (where that check fails)."""
    alerts = []
    for day, by_type in sorted(state.totals.items()):
        for record_type, (rejected, changes) in sorted(by_type.items()):
            if record_type not in RECORD_TYPES or not changes:
                continue
            rate = rejected / changes
            if rate < thresholds.error_rate:
                continue
            alerts.append(
                Alert(
                    key=f"error_rate:{record_type}:{day}",
                    kind="error_rate",
                    title=(
                        f"{record_type} error rate {rate:.2%} on {day} "
                        f"(bound {thresholds.error_rate:.2%})"
                    ),
                    details=(
                        f"{rejected:,} of the {changes:,} {record_type} changes that arrived on "
                        f"{day} went to errors/",
                    ),
                    where=(
                        f"asset {record_type}, partition {day}, check error_rate_below_0_1_percent",
                        f"error documents under {errors_at}",
                    ),
                    pages=(asset_page(record_type, "checks"),),
                )
            )
    return alerts


# No batch archived -----------------------------------------------------------------------------


def archive_stalled(
    oldest: Mapping[str, tuple[str, str]],
    now: datetime,
    thresholds: Thresholds,
    last_success: str | None,
    pending_at: str,
) -> Alert | None:
    """`oldest`: record type -> (its oldest pending batch, when that batch's first change
    arrived). Holds when one has waited longer than the threshold: while the stream has traffic,
    nothing archived it."""
    limit = timedelta(minutes=thresholds.archive_minutes)
    late = {
        t: (batch, arrival)
        for t, (batch, arrival) in sorted(oldest.items())
        if now - datetime.fromisoformat(arrival) > limit
    }
    if not late:
        return None
    waited = max(now - datetime.fromisoformat(arrival) for _, arrival in late.values())
    return Alert(
        key="archive_stalled",
        kind="archive_stalled",
        title=(
            f"no batch archived for {waited.total_seconds() / 60:.0f} min "
            f"(over {thresholds.archive_minutes:g} min)"
        ),
        details=(
            *(f"{t}: batch {b} pending since {a}" for t, (b, a) in late.items()),
            f"last successful {ARCHIVE_JOB} run ended {last_success or 'never'}",
        ),
        where=(f"job {ARCHIVE_JOB}", f"pending marks under {pending_at}"),
        pages=(job_page(ARCHIVE_JOB), sensor_page(STREAM_SENSOR)),
    )


# Failed ERROR checks ---------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckResult:
    """One evaluation of a check: its scope is the days it covered (a partition, a range run's
    first..last), or None when not known (then a pass clears every failing scope)."""

    asset: str
    check: str
    passed: bool
    severity: str  # "ERROR" or "WARN"
    run_id: str
    scope: tuple[str, str] | None
    failed_days: tuple[str, ...] = ()  # a range run's failing days, when it names them
    blocking: bool = False
    summary: str = ""  # what the evaluation measured, one line

    @property
    def key(self) -> str:
        return f"check:{self.asset}:{self.check}"


def take_check_result(failing: dict[str, dict], result: CheckResult) -> None:
    """A failed ERROR evaluation adds its days to the check's failing scopes; a passing one of
    any severity removes the failing scopes inside its own."""
    entry = failing.get(result.key)
    if result.passed:
        if entry is None:
            return
        if result.scope is None:
            entry["scopes"] = []
        else:
            first, last = result.scope
            entry["scopes"] = [s for s in entry["scopes"] if not (first <= s[0] and s[1] <= last)]
        if not entry["scopes"]:
            del failing[result.key]
        return
    if result.severity != "ERROR":
        return
    if result.failed_days:
        scopes = [[day, day] for day in result.failed_days]
    elif result.scope is not None:
        scopes = [list(result.scope)]
    else:
        scopes = [["*", "*"]]
    entry = failing.setdefault(result.key, {"scopes": []})
    entry["scopes"] = [list(s) for s in sorted({tuple(s) for s in entry["scopes"] + scopes})]
    entry.update(asset=result.asset, check=result.check, run_id=result.run_id)
    entry.update(blocking=result.blocking, summary=result.summary)


def check_failed(key: str, entry: Mapping) -> Alert:
    days = [a if a == b else f"{a}..{b}" for a, b in entry["scopes"]]
    shown = ", ".join(d for d in days[:10] if d != "*") or "unpartitioned"
    if len(days) > 10:
        shown += f" and {len(days) - 10} more"
    asset, check = entry["asset"], entry["check"]
    blocking = " (blocking: the run's later steps did not run)" if entry.get("blocking") else ""
    first = next((a for a, _ in entry["scopes"] if a != "*"), None)
    return Alert(
        key=key,
        kind="check_failed",
        title=f"ERROR check {check} failed on {asset} {shown}",
        details=tuple(d for d in (entry.get("summary"), f"severity ERROR{blocking}") if d),
        where=(f"asset {asset}, check {check}, partitions {shown}", f"run {entry['run_id']}"),
        pages=(asset_page(asset, "checks", first), run_page(entry["run_id"])),
    )


# Failed runs -----------------------------------------------------------------------------------


def will_retry(tags: Mapping[str, str]) -> bool:
    """Dagster's run retries will run this failed run again (it is not the last attempt)."""
    return tags.get(WILL_RETRY_TAG, "").lower() == "true"


def run_failed(
    job: str,
    run_id: str,
    tags: Mapping[str, str],
    message: str,
    steps: Iterable[tuple[str, str]],
) -> Alert:
    """`steps`: (step key, its error's first line) of each failed step."""
    partition = tags.get(PARTITION_TAG)
    if partition is None and RANGE_START_TAG in tags:
        partition = f"{tags[RANGE_START_TAG]}..{tags.get(RANGE_END_TAG, '')}"
    attempt = int(tags.get(RETRY_NUMBER_TAG, "0") or 0)
    where = [f"job {job}, run {run_id}", *([f"partition {partition}"] if partition else [])]
    details = [*([message] if message else []), *(f"step {s}: {e}" for s, e in steps)]
    if attempt:
        details.append(f"it was retry {attempt}: Dagster does not retry it again")
    return Alert(
        key=f"run_failed:{job}",
        kind="run_failed",
        title=f"run of {job} failed{f' ({partition})' if partition else ''}",
        details=tuple(details),
        where=tuple(where),
        pages=(run_page(run_id), job_page(job)),
    )


def first_line(text: str | None, limit: int = 300) -> str:
    line = next(iter((text or "").strip().splitlines()), "")
    return line if len(line) <= limit else line[: limit - 3] + "..."
