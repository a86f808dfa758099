"""Synthetic change traffic: DynamoDB changes as "Kinesis Data Streams for DynamoDB" writes them.

`ChangeGenerator` simulates the demand-capture table: items are inserted, modified (the OldImage
is the previous NewImage of the same item) and removed (an item inserted earlier in the same
simulation, so its keys reappear), and every change is serialised as the JSON document that
Kinesis carries (SPEC section 1)::

    {"awsRegion": "us-east-1", "eventID": "...", "eventName": "INSERT|MODIFY|REMOVE",
     "userIdentity": null, "recordFormat": "application/json", "tableName": "demand-capture",
     "dynamodb": {"ApproximateCreationDateTime": <epoch ms>, "Keys": {...}, "NewImage": {...},
                  "OldImage": {...}, "SizeBytes": <int>},
     "eventSource": "aws:dynamodb"}

Optional noise: items of other types (which the archive skips) and malformed records of several
kinds, each labelled in `GeneratedChange.kind` so that tests know what to expect.

Everything is derived from `random.Random(seed)` (event ids included), so a seed and a `now`
give the same bytes every time. Pure Python: stdlib and orjson only.
"""

from __future__ import annotations

import gc
import math
import random
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime

from demand_assets.records.schemas import RECORD_TYPES
from demand_assets.traffic.change_records import (  # noqa: F401 - the traffic's public names
    AWS_REGION,
    DAY_MS,
    TABLE_NAME,
    GeneratedChange,
    change_record,
    epoch_ms,
    iso_ms,
    table_keys,
)
from demand_assets.traffic.malformed import MALFORMED_KINDS  # noqa: F401
from demand_assets.traffic.marshalling import marshal, marshal_item  # noqa: F401
from demand_assets.traffic.simulation import OTHER_TYPES, _Simulation  # noqa: F401

DEFAULT_TYPE_WEIGHTS: Mapping[str, float] = {
    "demand": 0.55,
    "notification": 0.25,
    "event": 0.10,
    "sale": 0.10,
}
DEFAULT_MODIFY_SHARE = 1 / 3
DEFAULT_REMOVE_SHARE = 0.05


# --------------------------------------------------------------------------------------------
# The public generator
# --------------------------------------------------------------------------------------------


class ChangeGenerator:
    """Deterministic, realistic change traffic for the demand-capture table.

    - `changes(n)`: n changes with change times spread over the `days` days ending at `now`,
      in change-time order. Each call replays the same simulation from the seed, so it is a
      pure function of the arguments.
    - `iter(generator)`: an endless stream whose change times start at `now` and advance by
      random gaps averaging `1 / rate_per_second` seconds (a fresh simulation, same seed).

    `type_weights` weighs the four archived types (missing ones get 0). Of the changes to an
    item type, about `modify_share` are MODIFY and `remove_share` REMOVE (once items of the type
    exist), the rest INSERT. `other_type_share` and `malformed_share` are the shares of all
    changes that are items of other types, and malformed records.
    """

    def __init__(
        self,
        seed: int = 0,
        *,
        now: datetime | None = None,
        days: int = 3,
        type_weights: dict[str, float] | None = None,
        other_type_share: float = 0.0,
        malformed_share: float = 0.0,
        modify_share: float = DEFAULT_MODIFY_SHARE,
        remove_share: float = DEFAULT_REMOVE_SHARE,
        rate_per_second: float = 100.0,
    ) -> None:
        weights = dict(DEFAULT_TYPE_WEIGHTS if type_weights is None else type_weights)
        unknown = set(weights) - set(RECORD_TYPES)
        if unknown:
            raise ValueError(f"unknown record types in type_weights: {sorted(unknown)}")
        if any(w < 0 or not math.isfinite(w) for w in weights.values()):
            raise ValueError("type_weights must be finite and non-negative")
        if sum(weights.values()) <= 0:
            raise ValueError("type_weights must give some type a positive weight")
        for name, share in (
            ("other_type_share", other_type_share),
            ("malformed_share", malformed_share),
            ("modify_share", modify_share),
            ("remove_share", remove_share),
        ):
            if not 0.0 <= share <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, got {share}")
        if other_type_share + malformed_share > 1.0:
            raise ValueError("other_type_share + malformed_share must not exceed 1")
        if modify_share + remove_share > 1.0:
            raise ValueError("modify_share + remove_share must not exceed 1")
        if days < 0:
            raise ValueError(f"days must not be negative, got {days}")
        if not rate_per_second > 0:
            raise ValueError(f"rate_per_second must be positive, got {rate_per_second}")
        self.seed = seed
        self.now = datetime.now(UTC) if now is None else now
        self.now_ms = epoch_ms(self.now)
        self.days = days
        self.type_weights = weights
        self.other_type_share = other_type_share
        self.malformed_share = malformed_share
        self.modify_share = modify_share
        self.remove_share = remove_share
        self.rate_per_second = rate_per_second

    def _simulation(self, start_ms: int) -> _Simulation:
        return _Simulation(
            self.seed,
            start_ms,
            self.type_weights,
            self.other_type_share,
            self.malformed_share,
            self.modify_share,
            self.remove_share,
        )

    def changes(self, n: int) -> list[GeneratedChange]:
        """`n` changes in change-time order, spread over `days` days ending at `now`."""
        if n < 0:
            raise ValueError(f"n must not be negative, got {n}")
        end = self.now_ms
        start = end - round(self.days * DAY_MS)
        simulation = self._simulation(start)
        # A separate stream of randomness for the times, so they do not shift the content.
        times_rng = random.Random(f"{self.seed}:times")
        span = end - start + 1
        times = sorted(start + int(times_rng.random() * span) for _ in range(n))
        step = simulation.next
        # The simulation builds only acyclic data, so the cyclic garbage collector has nothing
        # to find; its passes over the growing set of live items would double the run time.
        enabled = gc.isenabled()
        gc.disable()
        try:
            return [step(t) for t in times]
        finally:
            if enabled:
                gc.enable()

    def __iter__(self) -> Iterator[GeneratedChange]:
        """An endless stream of changes, change times advancing from `now`."""
        simulation = self._simulation(self.now_ms)
        times_rng = random.Random(f"{self.seed}:times")
        mean_gap_ms = 1000.0 / self.rate_per_second
        moment = float(self.now_ms)
        while True:
            yield simulation.next(int(moment))
            moment += times_rng.expovariate(1.0) * mean_gap_ms
