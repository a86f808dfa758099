"""Strict validation of an item image against its record type's Avro schema (BR-003).

The schema is compiled once per type into nested checkers that read the image in DynamoDB
attribute-value form directly: a string field must be `{"S": ...}`, a record field `{"M": ...}`,
and so on, with `{"NULL": true}` or absence allowed only where the schema allows null. A checker
returns the value projected onto the schema (attributes the schema does not know are not
archived, and are not even unmarshalled) and raises `RecordError` naming the field path for a
missing required field or a value of the wrong type. Nothing is coerced: `{"N": "5"}` where a
string belongs is an error.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

from demand_assets.records.attribute_values import unmarshal
from demand_assets.records.errors import RecordError
from demand_assets.records.schemas import DERIVED_FIELDS, avro_schema

Checker = Callable[[object, str], object]  # (attribute value, path) -> plain value

_INT_RANGE = {"int": (-(2**31), 2**31 - 1), "long": (-(2**63), 2**63 - 1)}
_NULL = {"NULL": True}


@cache
def validator(record_type: str) -> Callable[[dict, str], dict]:
    """The compiled validator of a record type: (image, path) -> record (derived fields None)."""
    check = _record(avro_schema(record_type), skip=DERIVED_FIELDS)
    return lambda image, path="": check({"M": image}, path)


@cache
def blank(record_type: str, field: str) -> dict:
    """A record-typed field of a type with every member null, e.g. an event's `date`."""
    (schema,) = [f["type"] for f in avro_schema(record_type)["fields"] if f["name"] == field]
    record = next(s for s in schema if s != "null") if isinstance(schema, list) else schema
    return dict.fromkeys(f["name"] for f in record["fields"])


def _compile(schema: object) -> tuple[bool, Checker | None]:
    """(nullable, checker); a None checker means "must be a string" (the common case, inlined)."""
    if isinstance(schema, list):
        branches = [s for s in schema if s != "null"]
        if len(branches) != 1:
            raise NotImplementedError(f"unions other than [null, T] are not supported: {schema}")
        return True, _compile(branches[0])[1]
    if isinstance(schema, dict) and isinstance(schema["type"], dict | list):
        return _compile(schema["type"])
    name = schema["type"] if isinstance(schema, dict) else schema
    if name == "string":
        return False, None
    if name == "record":
        return False, _record(schema)
    if name == "boolean":
        return False, _plain(_exact(bool, "a boolean"))
    if name in _INT_RANGE:
        return False, _plain(_integer(*_INT_RANGE[name]))
    if name in ("double", "float"):
        return False, _plain(_floating)
    if name == "bytes":
        return False, _plain(_exact(bytes, "binary"))
    if name == "enum":
        return False, _plain(_enum(frozenset(schema["symbols"])))
    if name == "array":
        return False, _array(_compile(schema["items"]))
    if name == "map":
        return False, _map(_compile(schema["values"]))
    raise NotImplementedError(f"Avro type {name!r} is not supported")


def _record(schema: dict, skip: frozenset = frozenset()) -> Checker:
    fields = [(f["name"], *_compile(f["type"])) for f in schema["fields"] if f["name"] not in skip]
    skipped = [f["name"] for f in schema["fields"] if f["name"] in skip]

    def check(value: object, path: str) -> dict:
        image = value.get("M") if type(value) is dict and len(value) == 1 else None
        if type(image) is not dict:
            raise RecordError(path, f"expected a map (M), got {_kind(value)}")
        out = dict.fromkeys(skipped)
        get = image.get
        for name, nullable, checker in fields:
            attribute = get(name)
            if checker is None and type(attribute) is dict:  # the common case first
                text = attribute.get("S")
                if type(text) is str and len(attribute) == 1:
                    out[name] = text
                    continue
            out[name] = _value(attribute, _at(path, name), nullable, checker)
        return out

    return check


def _plain(check: Callable[[object, str], object]) -> Checker:
    """A checker of unmarshalled values, fed by the generic unmarshaller."""

    def from_attribute(attribute: object, path: str) -> object:
        return check(unmarshal(attribute, path), path)

    return from_attribute


def _exact(kind: type, label: str):
    def check(value: object, path: str) -> object:
        if type(value) is not kind:
            raise RecordError(path, f"expected {label}, got {_plain_kind(value)}")
        return value

    return check


def _integer(low: int, high: int):
    def check(value: object, path: str) -> int:
        if type(value) is not int:
            raise RecordError(path, f"expected an integer, got {_plain_kind(value)}")
        if not low <= value <= high:
            raise RecordError(path, f"integer out of range: {value}")
        return value

    return check


def _floating(value: object, path: str) -> float:
    if type(value) is float:
        return value
    if type(value) is int and abs(value) < 2**53:
        return float(value)  # an N without a fraction: same DynamoDB type, exact as a double
    raise RecordError(path, f"expected a number, got {_plain_kind(value)}")


def _enum(symbols: frozenset):
    def check(value: object, path: str) -> str:
        if type(value) is not str or value not in symbols:
            raise RecordError(path, f"expected one of {sorted(symbols)}, got {value!r:.40}")
        return value

    return check


def _array(item: tuple[bool, Checker | None]) -> Checker:
    nullable, checker = item

    def check(attribute: object, path: str) -> list:
        values = attribute.get("L") if type(attribute) is dict and len(attribute) == 1 else None
        if type(values) is not list:
            if checker is None and type(attribute) is dict and "SS" in attribute:
                values = [{"S": v} for v in unmarshal(attribute, path)]
            else:
                raise RecordError(path, f"expected a list (L), got {_kind(attribute)}")
        return [_value(v, f"{path}[{i}]", nullable, checker) for i, v in enumerate(values)]

    return check


def _map(values: tuple[bool, Checker | None]) -> Checker:
    nullable, checker = values

    def check(attribute: object, path: str) -> dict:
        entries = attribute.get("M") if type(attribute) is dict and len(attribute) == 1 else None
        if type(entries) is not dict:
            raise RecordError(path, f"expected a map (M), got {_kind(attribute)}")
        return {k: _value(v, _at(path, k), nullable, checker) for k, v in entries.items()}

    return check


def _value(attribute: object, path: str, nullable: bool, checker: Checker | None) -> object:
    """One attribute value against its (nullable, checker)."""
    if attribute is None or attribute == _NULL:
        if nullable:
            return None
        raise RecordError(path, "required field missing" if attribute is None else "null")
    if checker is None:
        text = attribute.get("S") if type(attribute) is dict else None
        if type(text) is not str or len(attribute) != 1:
            raise RecordError(path, f"expected a string (S), got {_kind(attribute)}")
        return text
    return checker(attribute, path)


def _at(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _kind(attribute: object) -> str:
    """How a wrong attribute value is described: its DynamoDB type and a short excerpt."""
    if type(attribute) is dict and len(attribute) == 1:
        ((tag, inner),) = attribute.items()
        if tag in ("M", "L", "SS", "NS", "BS", "B"):
            return tag
        return f"{tag} {inner!r:.24}"
    return f"a malformed attribute value {attribute!r:.40}"


def _plain_kind(value: object) -> str:
    if isinstance(value, bool):
        return f"a boolean ({value})"
    if isinstance(value, int | float):
        return f"a number ({value!r:.20})"
    if isinstance(value, str):
        return f"a string ({value!r:.20})"
    if isinstance(value, bytes):
        return "binary"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a map"
    return type(value).__name__
