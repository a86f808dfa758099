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

import base64
import bisect
import gc
import math
import random
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal

import orjson
from orjson import Fragment

from demand_assets.records.schemas import RECORD_TYPES

TABLE_NAME = "demand-capture"
AWS_REGION = "us-east-1"

DEFAULT_TYPE_WEIGHTS: Mapping[str, float] = {
    "demand": 0.55,
    "notification": 0.25,
    "event": 0.10,
    "sale": 0.10,
}
DEFAULT_MODIFY_SHARE = 1 / 3
DEFAULT_REMOVE_SHARE = 0.05

# Item types the table holds besides the four archived ones; None is an item without `type`.
OTHER_TYPES: tuple[str | None, ...] = ("fanProfile", "config", None)

# Labels of malformed records: GeneratedChange.kind is "malformed:<label>".
MALFORMED_KINDS = (
    "not_json",  # the payload is not a JSON document (truncated, binary garbage, plain text)
    "missing_new_image",  # INSERT or MODIFY without dynamodb.NewImage
    "unknown_event_name",  # eventName other than INSERT / MODIFY / REMOVE
    "bad_system_user_id",  # demand whose systemUserId is not <id>.<databaseId>.<memberId>
    "missing_date_requested",  # demand without date.requested (no partition date)
    "wrong_attribute_type",  # a field of the wrong attribute type, e.g. fanId as {"N": "5"}
    "bad_sale_start",  # sale whose saleStartDateTime does not parse
)

# The user identity DynamoDB puts on a REMOVE done by Time To Live.
TTL_USER_IDENTITY = {"type": "Service", "principalId": "dynamodb.amazonaws.com"}

SECOND_MS = 1_000
MINUTE_MS = 60 * SECOND_MS
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS


@dataclass(frozen=True)
class GeneratedChange:
    """One Kinesis record as a producer would put it."""

    data: bytes  # the Kinesis record payload (JSON bytes, or garbage for malformed)
    partition_key: str  # what a producer would use as Kinesis PartitionKey (the item's pk)
    kind: str  # "valid", "other_type", or "malformed:<label>"
    record_type: str | None  # "demand" | "notification" | "event" | "sale" | other | None


# --------------------------------------------------------------------------------------------
# Marshalling: plain Python values -> DynamoDB attribute-value JSON
# --------------------------------------------------------------------------------------------

_BYTES_TYPES = (bytes, bytearray, memoryview)


def marshal(value: object) -> dict:
    """A plain Python value as a DynamoDB attribute value.

    str -> S, int/float/Decimal -> N, bool -> BOOL, None -> NULL, dict/Mapping -> M,
    list/tuple -> L, bytes/bytearray/memoryview -> B (base64), and sets (set/frozenset) of
    strings / numbers / bytes -> SS / NS / BS (sorted, so the output is deterministic).
    """
    t = type(value)
    if t is str:
        return {"S": value}
    if t is dict:
        return {"M": {_attribute_name(k): marshal(v) for k, v in value.items()}}
    if value is None:
        return {"NULL": True}
    if t is bool:
        return {"BOOL": value}
    if t is int:
        return {"N": str(value)}
    if t is float or t is Decimal:
        return {"N": _number(value)}
    if t is list or t is tuple:
        return {"L": [marshal(v) for v in value]}
    if isinstance(value, _BYTES_TYPES):
        return {"B": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, set | frozenset):
        return _marshal_set(value)
    if isinstance(value, str):
        return {"S": str(value)}
    if isinstance(value, int | float | Decimal):  # subclasses, e.g. IntEnum
        return {"N": _number(value)}
    if isinstance(value, Mapping):
        return {"M": {_attribute_name(k): marshal(v) for k, v in value.items()}}
    if isinstance(value, list | tuple):
        return {"L": [marshal(v) for v in value]}
    raise TypeError(f"cannot marshal a {t.__name__} to a DynamoDB attribute value")


def marshal_item(item: Mapping) -> dict:
    """A whole item (`{"name": value}`) as an image (`{"name": {"S": ...}}`)."""
    return {_attribute_name(k): marshal(v) for k, v in item.items()}


def _attribute_name(name: object) -> str:
    if type(name) is not str:
        raise TypeError(f"attribute names must be strings, got {name!r}")
    return name


def _number(value: int | float | Decimal) -> str:
    if isinstance(value, bool):
        raise TypeError("a bool is not a number")
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"DynamoDB numbers must be finite, got {value!r}")
        return repr(float(value))
    if not value.is_finite():
        raise ValueError(f"DynamoDB numbers must be finite, got {value!r}")
    return str(value)


def _marshal_set(values: set | frozenset) -> dict:
    if not values:
        raise ValueError("DynamoDB sets cannot be empty")
    if all(isinstance(v, str) for v in values):
        return {"SS": sorted(values)}
    if all(isinstance(v, int | float | Decimal) and not isinstance(v, bool) for v in values):
        return {"NS": [_number(v) for v in sorted(values)]}
    if all(isinstance(v, _BYTES_TYPES) for v in values):
        return {"BS": [base64.b64encode(b).decode("ascii") for b in sorted(map(bytes, values))]}
    raise TypeError("a set must hold only strings, only numbers or only bytes")


# --------------------------------------------------------------------------------------------
# Stream records
# --------------------------------------------------------------------------------------------


def iso_ms(ms: int) -> str:
    """Epoch milliseconds as `2026-03-01T12:34:56.789Z`."""
    day, rest = divmod(int(ms), DAY_MS)
    prefix = _DAY_PREFIX.get(day)
    if prefix is None:
        prefix = _DAY_PREFIX[day] = date.fromordinal(_EPOCH_ORDINAL + day).isoformat() + "T"
    hours, rest = divmod(rest, HOUR_MS)
    minutes, rest = divmod(rest, MINUTE_MS)
    seconds, millis = divmod(rest, SECOND_MS)
    return f"{prefix}{_TWO[hours]}:{_TWO[minutes]}:{_TWO[seconds]}.{_THREE[millis]}Z"


_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_DAY_PREFIX: dict[int, str] = {}  # days since the epoch -> "YYYY-MM-DDT"
_TWO = [f"{i:02d}" for i in range(100)]
_THREE = [f"{i:03d}" for i in range(1000)]


def epoch_ms(moment: datetime) -> int:
    """An aware datetime (naive means UTC) as epoch milliseconds."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return round(moment.timestamp() * 1000)


def table_keys(item: Mapping) -> dict:
    """The table keys of a plain item: its `pk` / `sk`, or the ones the generator would use."""
    if "pk" in item and "sk" in item:
        return {"pk": item["pk"], "sk": item["sk"]}
    pk, sk = _default_keys(item)
    return {"pk": pk, "sk": sk}


def _default_keys(item: Mapping) -> tuple[str, str]:
    kind = item.get("type")
    if kind == "demand":
        return f"FAN#{item.get('fanId')}", f"DEMAND#{item.get('eventId')}#{item.get('saleId')}"
    if kind == "notification":
        return (
            f"FAN#{item.get('fanId')}",
            f"NOTIFICATION#{item.get('eventId')}#{item.get('saleId')}",
        )
    if kind == "event":
        return f"EVENT#{item.get('id')}", "EVENT"
    if kind == "sale":
        return f"EVENT#{item.get('eventId')}", f"SALE#{item.get('id')}"
    return f"{str(kind).upper()}#{item.get('id', item.get('fanId', ''))}", str(kind).upper()


def change_record(
    event_name: str,
    item: dict,
    *,
    change_time_ms: int,
    event_id: str,
    old_item: dict | None = None,
    keys: dict | None = None,
) -> bytes:
    """One stream record (JSON bytes) from plain Python items, for hand-written test cases.

    INSERT / MODIFY: `item` is the NewImage, `old_item` (if given) the OldImage.
    REMOVE: the OldImage is `old_item` if given, else `item`; there is no NewImage.
    Any other `event_name` is written as given, with `item` as the NewImage.
    `keys` are plain values (`{"pk": "...", "sk": "..."}`); by default the item's `pk` / `sk`
    (see `table_keys`).
    """
    if event_name == "REMOVE":
        old = item if old_item is None else old_item
        new_image = None
        old_image = _image_json(old)
        key_source = old
    else:
        new_image = _image_json(item)
        old_image = None if old_item is None else _image_json(old_item)
        key_source = item
    key_values = table_keys(key_source) if keys is None else keys
    return _record(
        event_name, _image_json(key_values), new_image, old_image, int(change_time_ms), event_id
    )


def _image_json(item: Mapping) -> bytes:
    return _compact(orjson.dumps(marshal_item(item)))


def _fast_image_json(item: dict) -> bytes:
    """`_image_json` for the generator's own items (string names, mostly string values)."""
    return _compact(
        orjson.dumps(
            {
                k: {"S": v}
                if type(v) is str
                else {
                    "M": {dk: {"S": dv} if type(dv) is str else marshal(dv) for dk, dv in v.items()}
                }
                if type(v) is dict
                else marshal(v)
                for k, v in item.items()
            }
        )
    )


def _compact(data: bytes) -> bytes:
    """A copy of exactly its length: orjson's bytes keep a buffer of at least 4 KiB, which adds
    up when 100,000 records (and the images of the live items) are kept in memory."""
    return memoryview(data).tobytes()


def _record(
    event_name: str,
    keys: bytes,
    new_image: bytes | None,
    old_image: bytes | None,
    change_time_ms: int,
    event_id: str,
    user_identity: dict | None = None,
) -> bytes:
    """The stream record as JSON bytes; keys and images are given as serialised JSON.

    SizeBytes approximates the size of keys and images by the length of their JSON.
    """
    dynamodb: dict = {"ApproximateCreationDateTime": change_time_ms, "Keys": Fragment(keys)}
    size = len(keys)
    if new_image is not None:
        dynamodb["NewImage"] = Fragment(new_image)
        size += len(new_image)
    if old_image is not None:
        dynamodb["OldImage"] = Fragment(old_image)
        size += len(old_image)
    dynamodb["SizeBytes"] = size
    record = orjson.dumps(
        {
            "awsRegion": AWS_REGION,
            "eventID": event_id,
            "eventName": event_name,
            "userIdentity": user_identity,
            "recordFormat": "application/json",
            "tableName": TABLE_NAME,
            "dynamodb": dynamodb,
            "eventSource": "aws:dynamodb",
        }
    )
    return _compact(record)


# --------------------------------------------------------------------------------------------
# The simulated table
# --------------------------------------------------------------------------------------------

_UUID_MASK = ~((0xF << 76) | (0x3 << 62))  # clear the version and variant bits
_UUID_V4 = (0x4 << 76) | (0x2 << 62)  # version 4, RFC 4122 variant
_ALNUM = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

_FIRST_NAMES = (
    "Ava", "Liam", "Mia", "Noah", "Zoë", "José", "Chloé", "Mateo", "Amara", "Kenji", "Priya",
    "Oliver", "Sofía", "Lukas", "Nora", "Émile", "Aaliyah", "Ravi", "Freya", "Malik",
)  # fmt: skip
_LAST_NAMES = (
    "Smith", "García", "Nguyen", "Okafor", "Müller", "Rossi", "Kowalski", "Haddad", "Tanaka",
    "O'Brien", "Johansson", "Silva", "Dubois", "Patel", "Kim", "Brown", "Larsen", "Novak",
)  # fmt: skip
_ASCII = str.maketrans("ëéóíáüöñ'", "eeoiauon-")
_MAIL_DOMAINS = ("example.com", "example.org", "example.net", "mail.example.com")
_ARTIST_WORDS_A = (
    "Velvet", "Neon", "Midnight", "Crimson", "Golden", "Electric", "Silent", "Wild",
    "Paper", "Lunar", "Static", "Hollow", "Mañana", "Nordic", "Sapphire", "Rusty",
)  # fmt: skip
_ARTIST_WORDS_B = (
    "Echoes", "Foxes", "Drifters", "Harbors", "Owls", "Pilots", "Tigers", "Satellites",
    "Rivers", "Ghosts", "Comets", "Lanterns", "Wolves", "Sparrows", "Giants", "Bandits",
)  # fmt: skip
_TOURS = (
    "World Tour", "Reunion Tour", "Live", "Unplugged", "Summer Tour", "The Farewell Tour",
    "Arena Tour", "Stadium Tour", "In Concert", "Anniversary Tour",
)  # fmt: skip
_VENUES = (
    "Harbor Arena", "Riverside Amphitheatre", "The Palladium", "Union Hall", "Skyline Stadium",
    "Lakeshore Pavilion", "Grand Théâtre", "Civic Center", "Warehouse 9", "Red Rock Bowl",
)  # fmt: skip
_SALE_NAMES = (
    "General Onsale", "Verified Fan Presale", "Fan Club Presale", "Cardmember Presale",
    "Venue Presale", "Official Platinum", "Spotify Presale", "Local Presale", "VIP Packages",
)  # fmt: skip
_DEMAND_TYPES = ("remind", "remind", "remind", "remind", "notify", "waitlist")
_SYSTEMS = ("tm", "tm", "tm", "lnk", "tmx", "uk")
_GENRES = ("rock", "pop", "jazz", "hip-hop", "country", "edm", "classical", "metal", "indie")
_MARKETS = ("US", "CA", "GB", "IE", "MX", "AU", "NZ", "DE", "NL")
_UTC_OFFSETS_H = (-8, -7, -6, -5, -5, -5, -4, 0, 1)


@dataclass(slots=True)
class _Event:
    id: str
    name: str
    artist_id: str
    artist_name: str
    start_ms: int


@dataclass(slots=True)
class _Sale:
    id: str
    event: _Event
    name: str
    start_ms: int


@dataclass(slots=True)
class _Fan:
    id: str
    phone: str
    email: str


@dataclass(slots=True)
class _Entry:
    item: dict  # plain values
    image: bytes  # the item marshalled, as JSON
    updated_ms: int  # the change time of its latest version


class _Pool:
    """The live items of one type, with O(1) random pick and removal."""

    __slots__ = ("keys", "index", "entries")

    def __init__(self) -> None:
        self.keys: list[tuple[str, str]] = []
        self.index: dict[tuple[str, str], int] = {}
        self.entries: dict[tuple[str, str], _Entry] = {}

    def __len__(self) -> int:
        return len(self.keys)

    def __contains__(self, key: object) -> bool:
        return key in self.entries

    def put(self, key: tuple[str, str], entry: _Entry) -> None:
        if key not in self.entries:
            self.index[key] = len(self.keys)
            self.keys.append(key)
        self.entries[key] = entry

    def pick(self, rng: random.Random) -> tuple[str, str]:
        return self.keys[int(rng.random() * len(self.keys))]

    def pop(self, key: tuple[str, str]) -> _Entry:
        i = self.index.pop(key)
        last = self.keys.pop()
        if i < len(self.keys):
            self.keys[i] = last
            self.index[last] = i
        return self.entries.pop(key)


def _keys_of(item: dict) -> tuple[str, str]:
    return item["pk"], item["sk"]


class _Simulation:
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
        rng = self.rng
        label = MALFORMED_KINDS[int(rng.random() * len(MALFORMED_KINDS))]
        record_type: str | None = "demand"
        event_name = "INSERT"
        old_image = None
        if label == "not_json":
            item = self._demand(ct)
            variant = rng.randrange(4)
            if variant < 2:  # a truncated record (cut anywhere before its closing brace)
                whole = _record("INSERT", _keys_json(item), _image_json(item), None, ct, "x")
                data = whole[: rng.randrange(1, len(whole) - 1)]
            elif variant == 2:  # binary garbage, not even UTF-8
                data = b"\xff\xfe\x00" + rng.randbytes(rng.randrange(8, 64))
            else:
                data = rng.choice((b"heartbeat", b" ", b"{'type': 'demand'}", b"[1, 2,"))
            return GeneratedChange(data, item["pk"], f"malformed:{label}", None)
        if label in ("bad_system_user_id", "missing_date_requested"):
            item = self._demand(ct)
            if label == "bad_system_user_id":
                item["systemUserId"] = rng.choice(("bad-form", "tm..4481", "tm.db12", ".db1.7"))
            elif rng.random() < 0.5:
                del item["date"]
            else:
                item["date"] = {k: v for k, v in item["date"].items() if k != "requested"}
                item["date"]["triggered"] = iso_ms(ct)
            image = marshal_item(item)
        elif label == "bad_sale_start":
            record_type = "sale"
            item = self._sale(ct)
            item["saleStartDateTime"] = rng.choice(
                ("TBA", "next tuesday", "2026-13-45T99:00:00.000Z", "", "31/12/2026 10:00")
            )
            image = marshal_item(item)
        else:
            record_type = rng.choice(RECORD_TYPES)
            item = self.builders[record_type][0](ct)
            image = marshal_item(item)
            if label == "wrong_attribute_type":
                name, value = rng.choice(_WRONG_TYPES[record_type])
                if name == "date.requested":
                    image["date"]["M"]["requested"] = value
                else:
                    image[name] = value
            elif label == "unknown_event_name":
                event_name = rng.choice(("UPSERT", "DELETE", "insert", "TTL", ""))
            # missing_new_image: an INSERT or MODIFY whose NewImage is simply not there
            elif rng.random() < 0.5:
                event_name = "MODIFY"
                old_image = image
        image_json = orjson.dumps(image)
        new_image = None if label == "missing_new_image" else image_json
        old_json = None if old_image is None else image_json
        data = _record(event_name, _keys_json(item), new_image, old_json, ct, self._event_id())
        return GeneratedChange(data, item["pk"], f"malformed:{label}", record_type)

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


# Wrong attribute types per record type: (attribute, the wrong attribute value).
_WRONG_TYPES: dict[str, tuple[tuple[str, dict], ...]] = {
    "demand": (
        ("fanId", {"N": "5"}),
        ("saleId", {"N": "123456"}),
        ("eventName", {"BOOL": True}),
        ("date", {"S": "2026-03-01T12:00:00.000Z"}),
        ("date.requested", {"N": "1772366400000"}),
    ),
    "notification": (
        ("fanId", {"N": "5"}),
        ("eventId", {"L": [{"S": "vvG1abc"}]}),
        ("messageBody", {"M": {"text": {"S": "hi"}}}),
    ),
    "event": (("id", {"N": "42"}), ("name", {"SS": ["a", "b"]}), ("eventDate", {"S": "soon"})),
    "sale": (("id", {"N": "7"}), ("eventId", {"BOOL": False}), ("name", {"N": "1"})),
}


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
