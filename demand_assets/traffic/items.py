"""How the simulated table builds and modifies an item of each type (mixed into the
simulation, whose random state, pools, fans, events and sales they use)."""

from __future__ import annotations

from decimal import Decimal

import orjson

from demand_assets.traffic.change_records import (
    DAY_MS,
    HOUR_MS,
    iso_ms,
)
from demand_assets.traffic.world import (
    _DEMAND_TYPES,
    _FIRST_NAMES,
    _GENRES,
    _LAST_NAMES,
    _MAIL_DOMAINS,
    _MARKETS,
    _SYSTEMS,
    _UTC_OFFSETS_H,
    _Fan,
    _Sale,
)


class ItemBuilders:
    """Item builders of `simulation._Simulation`: `_{type}(ct)` a new item,
    `_modify_{type}(old, ct, last_ms)` its next version."""

    # -- demand ----------------------------------------------------------------------------

    def _demand(self, ct: int) -> dict:
        rng = self.rng
        pool = self.pools["demand"]
        if self.removed_demands and rng.random() < 0.1:
            # A fan asks again for a sale after removing the demand: the same keys reappear.
            fan_id, sale_id = self.removed_demands.pop(
                int(rng.random() * len(self.removed_demands))
            )
            fan = self.fan_by_id.get(fan_id) or _Fan(fan_id, "", "")
            sale = self.sale_by_id.get(sale_id) or self._pick_sale()
        else:
            fan, sale = self._fan(), self._pick_sale()
        keys = (f"FAN#{fan.id}", f"DEMAND#{sale.event.id}#{sale.id}")
        while keys in pool:
            fan = self._fan() if rng.random() < 0.5 else _Fan(str(rng.randrange(10**10)), "", "")
            keys = (f"FAN#{fan.id}", f"DEMAND#{sale.event.id}#{sale.id}")
        event = sale.event
        requested = iso_ms(self._before(ct, far=0.08))
        item: dict = {
            "pk": keys[0],
            "sk": keys[1],
            "type": "demand",
            "fanId": fan.id,
            "eventId": event.id,
            "saleId": sale.id,
        }
        if rng.random() < 0.85:
            item["artistId"] = event.artist_id
            if rng.random() < 0.9:
                item["artistName"] = self._maybe_null(event.artist_name)
        if rng.random() < 0.9:
            item["eventName"] = self._maybe_null(event.name)
        if rng.random() < 0.85:
            item["saleName"] = self._maybe_null(sale.name)
        item["requestedDateTime"] = requested
        sms = rng.random() < 0.6
        if fan.phone and (sms or rng.random() < 0.3):
            item["phoneNumber"] = fan.phone
        if fan.email and (not sms or rng.random() < 0.5):
            item["email"] = fan.email
        if rng.random() < 0.9:
            item["contactMethod"] = "sms" if sms else "email"
        if rng.random() < 0.9:
            item["demandType"] = rng.choice(_DEMAND_TYPES)
        item["date"] = {"requested": requested}
        if rng.random() < 0.7:
            item["systemUserId"] = self._system_user_id()
        return item

    def _system_user_id(self) -> str:
        rng = self.rng
        return f"{rng.choice(_SYSTEMS)}.db{rng.randrange(1, 40)}.{rng.randrange(1, 10**6)}"

    def _modify_demand(self, old: dict, ct: int, last_ms: int) -> dict:
        rng = self.rng
        item = dict(old)
        date = item["date"] = dict(old["date"])
        r = rng.random()
        if "triggered" not in date and r < 0.6:
            date["triggered"] = iso_ms(self._before(ct, last_ms))
        elif "triggered" in date and "notified" not in date and r < 0.7:
            date["notified"] = iso_ms(self._before(ct, last_ms))
        elif "systemUserId" not in item and r < 0.8:
            item["systemUserId"] = self._system_user_id()
        else:
            sms = item.get("contactMethod") != "sms"
            item["contactMethod"] = "sms" if sms else "email"
            if sms and "phoneNumber" not in item:
                item["phoneNumber"] = f"+1{rng.randrange(201, 990)}555{rng.randrange(10000):04d}"
            if not sms and "email" not in item:
                item["email"] = f"fan{rng.randrange(10**6)}@{rng.choice(_MAIL_DOMAINS)}"
        return item

    # -- notification ----------------------------------------------------------------------

    def _notification(self, ct: int) -> dict:
        rng = self.rng
        pool = self.pools["notification"]
        demands = self.pools["demand"]
        source = None
        if demands and rng.random() < 0.8:
            source = demands.entries[demands.pick(rng)].item  # notify a fan who asked
        if source is not None:
            fan_id, event_id, sale_id = source["fanId"], source["eventId"], source["saleId"]
            sale_name = source.get("saleName") or self._sale_name()
            event_name = source.get("eventName") or "your event"
            phone, email = source.get("phoneNumber"), source.get("email")
        else:
            fan, sale = self._fan(), self._pick_sale()
            fan_id, event_id, sale_id = fan.id, sale.event.id, sale.id
            sale_name, event_name = sale.name, sale.event.name
            phone, email = fan.phone, fan.email
        keys = (f"FAN#{fan_id}", f"NOTIFICATION#{event_id}#{sale_id}")
        if keys in pool:  # already notified: this notification goes to a new fan
            fan = self._fan()
            while (f"FAN#{fan.id}", keys[1]) in pool:
                fan = _Fan(str(rng.randrange(10**10)), fan.phone, fan.email)
            fan_id, phone, email = fan.id, fan.phone, fan.email
            keys = (f"FAN#{fan_id}", keys[1])
        item: dict = {
            "pk": keys[0],
            "sk": keys[1],
            "type": "notification",
            "fanId": fan_id,
            "eventId": event_id,
            "saleId": sale_id,
        }
        if rng.random() < 0.8:
            item["saleName"] = self._maybe_null(sale_name)
        if rng.random() < 0.9:
            item["messageBody"] = self._message(sale_name, event_name)
        if phone and rng.random() < 0.7:
            item["phoneNumber"] = phone
        if email and ("phoneNumber" not in item or rng.random() < 0.3):
            item["email"] = email
        item["date"] = {"created": iso_ms(self._before(ct, far=0.05))}
        return item

    def _message(self, sale_name: str, event_name: str) -> str:
        rng = self.rng
        code = self._id("", 6).upper()
        text = rng.choice(
            (
                f"{sale_name} for {event_name} starts soon. Your code: {code}",
                f"Reminder: {sale_name} for {event_name} is live now! Code {code}",
                f"You're in! {event_name} — {sale_name}. Access code: {code}",
            )
        )
        if rng.random() < 0.2:
            text += " 🎟️"
        return text

    def _modify_notification(self, old: dict, ct: int, last_ms: int) -> dict:
        rng = self.rng
        item = dict(old)
        item["date"] = dict(old["date"], updated=iso_ms(self._before(ct, last_ms)))
        if rng.random() < 0.4:
            name = item.get("saleName") or self._sale_name()
            item["messageBody"] = self._message(name, "your event")
        return item

    # -- event -----------------------------------------------------------------------------

    def _event(self, ct: int) -> dict:
        rng = self.rng
        event = self._new_event(ct)
        self._pending_event = event
        item: dict = {"pk": f"EVENT#{event.id}", "sk": "EVENT", "type": "event", "id": event.id}
        if rng.random() < 0.95:
            item["name"] = self._maybe_null(event.name)
        if rng.random() < 0.9:
            item["eventDate"] = self._event_date(event.start_ms)
        if rng.random() < 0.95:
            seen = iso_ms(self._before(ct, far=0.05))
            item["date"] = {"firstSeen": seen, "updated": seen}
            if rng.random() < 0.15:
                del item["date"]["firstSeen"]
        return item

    def _event_date(self, start_ms: int) -> dict:
        rng = self.rng
        offset = rng.choice(_UTC_OFFSETS_H) * HOUR_MS
        start: dict = {}
        if rng.random() < 0.9:
            start["dateTime"] = iso_ms(start_ms)
        if rng.random() < 0.95:
            start["localDate"] = iso_ms(start_ms + offset)[:10]
        dates: dict = {}
        if start or rng.random() < 0.5:
            dates["start"] = start
        if rng.random() < 0.4:
            end_ms = start_ms + rng.choice((2, 3, 4, 28)) * HOUR_MS
            dates["end"] = {"dateTime": iso_ms(end_ms), "localDate": iso_ms(end_ms + offset)[:10]}
        return dates

    def _modify_event(self, old: dict, ct: int, last_ms: int) -> dict:
        rng = self.rng
        item = dict(old)
        updated = iso_ms(self._before(ct, last_ms))
        item["date"] = dict(old.get("date") or {}, updated=updated)
        r = rng.random()
        if r < 0.3:
            item["name"] = f"{old.get('name') or 'Event'} - {rng.choice(('SOLD OUT', 'New Date'))}"
        elif r < 0.5:
            start_ms = (ct // DAY_MS + rng.randint(7, 300)) * DAY_MS + 20 * HOUR_MS
            item["eventDate"] = self._event_date(start_ms)
        return item

    # -- sale ------------------------------------------------------------------------------

    def _sale(self, ct: int) -> dict:
        rng = self.rng
        n = len(self.events)
        event = self.events[n - 1 - int(n * rng.random() ** 2)]
        sale = _Sale(self._id("", 10), event, self._sale_name(), self._sale_start(ct))
        self._pending_sale = sale
        item: dict = {
            "pk": f"EVENT#{event.id}",
            "sk": f"SALE#{sale.id}",
            "type": "sale",
            "id": sale.id,
            "eventId": event.id,
        }
        if rng.random() < 0.9:
            item["name"] = self._maybe_null(sale.name)
        item["saleStartDateTime"] = iso_ms(sale.start_ms)
        return item

    def _sale_start(self, ct: int) -> int:
        """Sales are announced ahead: on the hour, 0-120 days after the change."""
        latest = ct + 120 * DAY_MS - HOUR_MS
        return -(-self.rng.randrange(ct, latest) // HOUR_MS) * HOUR_MS

    def _modify_sale(self, old: dict, ct: int, last_ms: int) -> dict:
        rng = self.rng
        item = dict(old)
        if rng.random() < 0.6:
            item["name"] = f"{self._sale_name()}{rng.choice(('', ' (Extended)', ' - Day 2'))}"
        else:  # rescheduled
            item["saleStartDateTime"] = iso_ms(self._sale_start(ct))
        return item

    # -- other item types (skipped by the archive) ------------------------------------------

    def _fan_profile(self, ct: int) -> dict:
        rng = self.rng
        fan = self._fan()
        keys = (f"FAN#{fan.id}", "PROFILE")
        if keys in self.pools["fanProfile"]:
            fan = _Fan(str(rng.randrange(10**10)), "", "")
            keys = (f"FAN#{fan.id}", "PROFILE")
        return {
            "pk": keys[0],
            "sk": keys[1],
            "type": "fanProfile",
            "fanId": fan.id,
            "displayName": f"{rng.choice(_FIRST_NAMES)} {rng.choice(_LAST_NAMES)[0]}.",
            "marketingOptIn": rng.random() < 0.5,
            "loyaltyPoints": rng.randrange(0, 50_000),
            "score": round(rng.random() * 100, 3),
            "favoriteGenres": set(rng.sample(_GENRES, rng.randint(1, 3))),
            "recentEventIds": [e.id for e in rng.sample(self.events, 2)],
            "avatarThumb": rng.randbytes(12),
            "nickname": None,
            "lastLogin": iso_ms(ct),
        }

    def _modify_fan_profile(self, old: dict, ct: int, last_ms: int) -> dict:
        item = dict(old)
        item["loyaltyPoints"] = old["loyaltyPoints"] + self.rng.randrange(1, 500)
        item["lastLogin"] = iso_ms(ct)
        return item

    def _config(self, ct: int) -> dict:
        rng = self.rng
        name = self._id("", 8)
        return {
            "pk": "CONFIG",
            "sk": f"CONFIG#{name}",
            "type": "config",
            "name": name,
            "settings": {
                "maxDemandsPerFan": rng.randrange(5, 50),
                "enabled": rng.random() < 0.8,
                "markets": rng.sample(_MARKETS, 3),
                "ratio": Decimal("0.75"),
            },
            "thresholds": {rng.randrange(1, 1000) for _ in range(3)},
            "signatures": {rng.randbytes(8), rng.randbytes(8)},
            "updatedAt": iso_ms(ct),
        }

    def _modify_config(self, old: dict, ct: int, last_ms: int) -> dict:
        item = dict(old)
        item["settings"] = dict(old["settings"], enabled=not old["settings"]["enabled"])
        item["updatedAt"] = iso_ms(ct)
        return item

    def _lock(self, ct: int) -> dict:
        rng = self.rng
        return {  # no `type` attribute at all
            "pk": f"LOCK#{self._id('', 12)}",
            "sk": "LOCK",
            "owner": f"worker-{rng.randrange(64)}",
            "expiresAt": ct // 1000 + 300,
            "leaseMs": 30_000,
        }

    def _modify_lock(self, old: dict, ct: int, last_ms: int) -> dict:
        return dict(old, expiresAt=ct // 1000 + 300, owner=f"worker-{self.rng.randrange(64)}")


def _keys_json(item: dict) -> bytes:
    return orjson.dumps({"pk": {"S": item["pk"]}, "sk": {"S": item["sk"]}})
