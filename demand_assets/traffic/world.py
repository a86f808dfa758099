"""The simulated world the traffic describes: names, markets and systems, the events, sales
and fans the table's items refer to, and the pools of live items by type."""

from __future__ import annotations

import random
from dataclasses import dataclass

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
