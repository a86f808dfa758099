"""When the stream sensor requests an archive run: single flight, with buffering hints.

At most one `archive_batches` run is queued and one in progress at any moment. A run archives
every batch landed and not yet archived when it starts, so what lands while one runs goes into
the next (single flight with a follow-up). While a run is queued the sensor requests nothing:
the queued run will take what lands meanwhile. Otherwise it requests a run once the oldest
change landed since its last request arrived `interval_seconds` ago, or once `max_changes`
changes have landed, like Firehose's buffering hints. Batches a failed, killed or cancelled
run left pending are requested again as soon as no run is queued or in progress.

No Dagster in here: the sensor gives the counts it read from the instance.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class BufferingHints:
    interval_seconds: float = 15.0
    max_changes: int = 5000


@dataclass
class Buffer:
    """What landed since the sensor last requested a run (kept in its cursor)."""

    since: str | None = None  # arrival of the oldest of those changes (ISO-8601)
    changes: int = 0

    def add(self, changes: int, first_arrival: str | None) -> None:
        if changes:
            self.changes += changes
            if first_arrival and (self.since is None or first_arrival < self.since):
                self.since = first_arrival

    def clear(self) -> None:
        self.since, self.changes = None, 0


def decide(
    buffer: Buffer,
    *,
    queued: int,
    in_progress: int,
    leftover_since: str | None,
    now: datetime,
    hints: BufferingHints,
) -> tuple[bool, str]:
    """(request a run now?, why). `leftover_since` names the oldest batch still pending, looked
    up only when nothing is queued or in progress and nothing is buffered: leftovers of a run
    that failed or was cut short, or batches a bootstrap or a replay landed, due at once."""
    if queued:
        buffer.clear()
        return False, "a run is queued; it will archive everything landed before it starts"
    since, changes = buffer.since, buffer.changes
    if not changes:
        if in_progress or leftover_since is None:
            return False, "nothing landed since the last run was requested"
        buffer.clear()
        return (
            True,
            f"batches pending from {leftover_since} on, left by a run that failed or was cut short",
        )
    age = (now - datetime.fromisoformat(since)).total_seconds() if since else hints.interval_seconds
    if age >= hints.interval_seconds or changes >= hints.max_changes:
        buffer.clear()
        return True, f"{changes} changes pending, the oldest arrived {age:.0f} s ago"
    return False, f"buffering: {changes} changes, the oldest arrived {age:.0f} s ago"
