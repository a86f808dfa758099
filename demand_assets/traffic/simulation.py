"""The simulated demand-capture table: items inserted, modified and removed, and the change
records it produces."""

from __future__ import annotations

import bisect
import random
from collections.abc import Mapping

from demand_assets.records.schemas import RECORD_TYPES
from demand_assets.traffic.change_records import (
    DAY_MS,
    HOUR_MS,
    MINUTE_MS,
    SECOND_MS,
    TTL_USER_IDENTITY,
    GeneratedChange,
    _fast_image_json,
    _record,
)
from demand_assets.traffic.items import ItemBuilders, _keys_json
from demand_assets.traffic.malformed import malformed_change
from demand_assets.traffic.world import (
    _ALNUM,
    _ARTIST_WORDS_A,
    _ARTIST_WORDS_B,
    _ASCII,
    _FIRST_NAMES,
    _LAST_NAMES,
    _MAIL_DOMAINS,
    _SALE_NAMES,
    _TOURS,
    _UTC_OFFSETS_H,
    _UUID_MASK,
    _UUID_V4,
    _VENUES,
    _Entry,
    _Event,
    _Fan,
    _keys_of,
    _Pool,
    _Sale,
)

# Item types the table holds besides the four archived ones; None is an item without `type`.
OTHER_TYPES: tuple[str | None, ...] = ("fanProfile", "config", None)


class _Simulation(ItemBuilders):
    """The state of one simulated table and the change records it produces."""

    def __init__(
        self,
        seed: int,
        start_ms: int,
        type_weights: Mapping[str, float],
        other_type_share: float,
        malformed_share: float,
        modify_share: float,
        remove_share: float,
    ) -> None:
        self.rng = random.Random(seed)
        self.modify_share = modify_share
        self.remove_share = remove_share
        self.malformed_share = malformed_share
        self.noise_share = malformed_share + other_type_share
        self.types = [t for t in RECORD_TYPES if type_weights.get(t, 0) > 0]
        total = 0.0
        self.cumulative: list[float] = []
        for t in self.types:
            total += type_weights[t]
            self.cumulative.append(total)
        self.total_weight = total

        self.pools: dict[str | None, _Pool] = {t: _Pool() for t in (*RECORD_TYPES, *OTHER_TYPES)}
        self.removed_demands: list[tuple[str, str]] = []  # (fanId, saleId) of removed demands
        self.fans: list[_Fan] = []
        self.fan_by_id: dict[str, _Fan] = {}
        self.sale_by_id: dict[str, _Sale] = {}
        self._pending_event: _Event | None = None  # built by _event, registered if emitted
        self._pending_sale: _Sale | None = None
        self.artists = [(self._id("K8vZ917", 6), self._artist_name()) for _ in range(60)]
        self.events: list[_Event] = []
        self.sales: list[_Sale] = []
        # The table's history before the simulated window: events and sales that exist already.
        for _ in range(30):
            event = self._new_event(start_ms - self.rng.randrange(0, 60) * DAY_MS)
            self.events.append(event)
            for _ in range(self.rng.randint(1, 3)):
                sale_start = start_ms + self.rng.randrange(-30 * DAY_MS, 90 * DAY_MS)
                self._add_sale(_Sale(self._id("", 10), event, self._sale_name(), sale_start))

        self.builders = {
            "demand": (self._demand, self._modify_demand),
            "notification": (self._notification, self._modify_notification),
            "event": (self._event, self._modify_event),
            "sale": (self._sale, self._modify_sale),
            "fanProfile": (self._fan_profile, self._modify_fan_profile),
            "config": (self._config, self._modify_config),
            None: (self._lock, self._modify_lock),
        }

    # -- the change loop -------------------------------------------------------------------

    def next(self, ct: int) -> GeneratedChange:
        rng = self.rng
        r = rng.random()
        if r < self.noise_share:
            if r < self.malformed_share:
                return self._malformed(ct)
            record_type = OTHER_TYPES[int(rng.random() * len(OTHER_TYPES))]
            return self._change(record_type, ct, "other_type")
        i = bisect.bisect_right(self.cumulative, rng.random() * self.total_weight)
        return self._change(self.types[min(i, len(self.types) - 1)], ct, "valid")

    def _change(self, record_type: str | None, ct: int, kind: str) -> GeneratedChange:
        rng = self.rng
        pool = self.pools[record_type]
        insert, modify = self.builders[record_type]
        r = rng.random()
        if pool and r < self.remove_share:
            entry = pool.pop(pool.pick(rng))
            item = entry.item
            if record_type == "demand":
                self.removed_demands.append((item["fanId"], item["saleId"]))
            identity = None
            if record_type in ("notification", None) and rng.random() < 0.5:
                identity = TTL_USER_IDENTITY  # expired by Time To Live
            data = _record(
                "REMOVE", _keys_json(item), None, entry.image, ct, self._event_id(), identity
            )
        elif pool and r < self.remove_share + self.modify_share:
            key = pool.pick(rng)
            entry = pool.entries[key]
            for _ in range(8):  # DynamoDB streams no MODIFY for a write that changes nothing
                item = modify(entry.item, ct, entry.updated_ms)
                if item != entry.item:
                    break
            image = _fast_image_json(item)
            pool.put(key, _Entry(item, image, ct))
            data = _record("MODIFY", _keys_json(item), image, entry.image, ct, self._event_id())
        else:
            item = insert(ct)
            image = _fast_image_json(item)
            pool.put(_keys_of(item), _Entry(item, image, ct))
            self._register(record_type, item)
            data = _record("INSERT", _keys_json(item), image, None, ct, self._event_id())
        return GeneratedChange(data, item["pk"], kind, record_type)

    def _register(self, record_type: str | None, item: dict) -> None:
        """New events and sales become referable by later demands and notifications."""
        if record_type == "event" and self._pending_event is not None:
            self.events.append(self._pending_event)
        elif record_type == "sale" and self._pending_sale is not None:
            self._add_sale(self._pending_sale)
        self._pending_event = self._pending_sale = None

    def _add_sale(self, sale: _Sale) -> None:
        self.sales.append(sale)
        self.sale_by_id[sale.id] = sale

    # -- malformed records -----------------------------------------------------------------

    def _malformed(self, ct: int) -> GeneratedChange:
        return malformed_change(self, ct)

    # -- ids, names, times -----------------------------------------------------------------

    def _id(self, prefix: str, length: int) -> str:
        bits = self.rng.getrandbits(6 * length)
        chars = []
        for _ in range(length):
            chars.append(_ALNUM[(bits & 63) % 62])
            bits >>= 6
        return prefix + "".join(chars)

    def _event_id(self) -> str:
        """A version-4 UUID string made from the seeded generator (not uuid4)."""
        h = f"{self.rng.getrandbits(128) & _UUID_MASK | _UUID_V4:032x}"
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"

    def _artist_name(self) -> str:
        rng = self.rng
        a, b = rng.choice(_ARTIST_WORDS_A), rng.choice(_ARTIST_WORDS_B)
        form = rng.randrange(4)
        if form == 0:
            return f"The {a} {b}"
        if form == 1:
            return f"{rng.choice(_FIRST_NAMES)} {rng.choice(_LAST_NAMES)}"
        if form == 2:
            return f"{rng.choice(_FIRST_NAMES)} & the {a} {b}"
        return f"{a} {b}"

    def _sale_name(self) -> str:
        return self.rng.choice(_SALE_NAMES)

    def _before(self, ct: int, not_before: int | None = None, *, far: float = 0.0) -> int:
        """A moment shortly before the change time (the item is written, then streamed)."""
        rng = self.rng
        if far and rng.random() < far:
            moment = ct - rng.randrange(0, 3 * DAY_MS)  # imported or written late: days before
        else:
            moment = ct - rng.randrange(0, 2 * SECOND_MS)
        return moment if not_before is None else max(moment, not_before)

    def _fan(self) -> _Fan:
        rng = self.rng
        if self.fans and rng.random() < 0.4:
            return self.fans[int(rng.random() * len(self.fans))]
        first = rng.choice(_FIRST_NAMES).lower().translate(_ASCII)
        last = rng.choice(_LAST_NAMES).lower().translate(_ASCII)
        fan = _Fan(
            id=str(rng.randrange(10**9, 10**10)),
            phone=f"+1{rng.randrange(201, 990)}555{rng.randrange(10000):04d}",
            email=f"{first}.{last}{rng.randrange(1000)}@{rng.choice(_MAIL_DOMAINS)}",
        )
        self.fans.append(fan)
        self.fan_by_id[fan.id] = fan
        return fan

    def _new_event(self, ct: int) -> _Event:
        rng = self.rng
        artist_id, artist_name = self.artists[int(rng.random() * len(self.artists))]
        offset_h = rng.choice(_UTC_OFFSETS_H)
        day = (ct // DAY_MS + rng.randint(7, 300)) * DAY_MS
        local_start = day + rng.choice((18 * 60, 19 * 60, 19 * 60 + 30, 20 * 60)) * MINUTE_MS
        name = f"{artist_name}: {rng.choice(_TOURS)}"
        if rng.random() < 0.5:
            name += f" at {rng.choice(_VENUES)}"
        return _Event(
            id=self._id(rng.choice(("vvG1", "G5v", "Z7r9jZ1A", "1AvZ")), 10),
            name=name,
            artist_id=artist_id,
            artist_name=artist_name,
            start_ms=local_start - offset_h * HOUR_MS,
        )

    def _pick_sale(self) -> _Sale:
        """A sale to ask for: popular recent announcements more often than old ones."""
        n = len(self.sales)
        return self.sales[n - 1 - int(n * self.rng.random() ** 2)]

    def _maybe_null(self, value: str) -> str | None:
        return None if self.rng.random() < 0.02 else value
