"""Hypothesis strategies for valid items of each record type (plain values)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import strategies as st

from demand_assets.records import RECORD_TYPES

TIMEZONES = [
    UTC,
    timezone(timedelta(hours=5)),
    timezone(timedelta(hours=-8)),
    timezone(timedelta(hours=5, minutes=30)),
    timezone(timedelta(hours=-3, minutes=-30)),
]
_moments = st.datetimes(
    min_value=datetime(2021, 1, 1),
    max_value=datetime(2029, 12, 31),
    timezones=st.sampled_from(TIMEZONES),
)
_naive = st.datetimes(min_value=datetime(2021, 1, 1), max_value=datetime(2029, 12, 31))


def _zulu(moment: datetime) -> str:
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


iso = st.one_of(
    _moments.map(lambda m: m.isoformat()),
    _moments.map(_zulu),
    _naive.map(lambda m: m.isoformat(timespec="seconds")),
    _naive.map(lambda m: m.date().isoformat()),
)
text = st.text(max_size=20)
ids = st.text(max_size=12)
pii = st.text(max_size=40)
_part = st.text(
    alphabet=st.characters(blacklist_characters=".", codec="utf-8"), min_size=1, max_size=6
)
system_user_ids = st.tuples(_part, _part, _part).map(".".join)
extras = {"pk": text, "sk": text, "ttl": st.integers(0, 2**40), "gsi1": st.binary(max_size=4)}


def nullable(strategy):
    return st.none() | strategy


def _item(required: dict, optional: dict):
    return st.fixed_dictionaries(required, optional={**optional, **extras})


ITEMS = {
    "demand": _item(
        {
            "type": st.just("demand"),
            "fanId": ids,
            "eventId": ids,
            "saleId": ids,
            "requestedDateTime": iso,
            "date": st.fixed_dictionaries(
                {"requested": iso},
                optional={"triggered": nullable(iso), "notified": nullable(iso)},
            ),
        },
        {
            "artistId": nullable(ids),
            "eventName": nullable(text),
            "saleName": nullable(text),
            "artistName": nullable(text),
            "phoneNumber": nullable(pii),
            "email": nullable(pii),
            "contactMethod": nullable(st.sampled_from(["sms", "email"])),
            "demandType": nullable(text),
            "systemUserId": nullable(system_user_ids),
            "isDeleted": nullable(st.booleans()),
        },
    ),
    "notification": _item(
        {
            "type": st.just("notification"),
            "fanId": ids,
            "eventId": ids,
            "saleId": ids,
            "date": st.fixed_dictionaries({"created": iso}, optional={"updated": nullable(iso)}),
        },
        {
            "saleName": nullable(text),
            "messageBody": nullable(pii),
            "phoneNumber": nullable(pii),
            "email": nullable(pii),
        },
    ),
    "event": _item(
        {"type": st.just("event"), "id": ids},
        {
            "name": nullable(text),
            "eventDate": nullable(
                st.fixed_dictionaries(
                    {},
                    optional={
                        side: nullable(
                            st.fixed_dictionaries(
                                {},
                                optional={"dateTime": nullable(iso), "localDate": nullable(text)},
                            )
                        )
                        for side in ("start", "end")
                    },
                )
            ),
            "date": nullable(
                st.fixed_dictionaries(
                    {}, optional={"firstSeen": nullable(iso), "updated": nullable(iso)}
                )
            ),
        },
    ),
    "sale": _item(
        {"type": st.just("sale"), "id": ids, "eventId": ids, "saleStartDateTime": iso},
        {"name": nullable(text), "date": nullable(st.fixed_dictionaries({}))},
    ),
}
valid_items = st.sampled_from(RECORD_TYPES).flatmap(lambda t: ITEMS[t])
change_times = st.integers(min_value=1_609_459_200_000, max_value=1_893_369_600_000)  # 2021..2029
