"""Strict validation of an unmarshalled item against its record type's Avro schema (BR-003).

The schema is compiled once per type into nested checkers. A checker returns the value
projected onto the schema (attributes the schema does not know are not archived) and raises
`RecordError` naming the field path for a missing required field or a value of the wrong type.
Nothing is coerced: a number where a string belongs is an error.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

from demand_assets.records.errors import RecordError
from demand_assets.records.schemas import DERIVED_FIELDS, avro_schema

Checker = Callable[[object, str], object]

_INT_RANGE = {"int": (-(2**31), 2**31 - 1), "long": (-(2**63), 2**63 - 1)}


@cache
def validator(record_type: str) -> Callable[[dict], dict]:
    """The compiled validator of a record type: item -> validated record (derived fields None)."""
    check = _record(avro_schema(record_type), skip=DERIVED_FIELDS)
    return lambda item: check(item, "")


def _compile(schema: object) -> tuple[bool, Checker | None]:
    """(nullable, checker); a None checker means "must be a str" (the common case, inlined)."""
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
        return False, _exact(bool, "a boolean")
    if name in _INT_RANGE:
        return False, _integer(*_INT_RANGE[name])
    if name in ("double", "float"):
        return False, _floating
    if name == "bytes":
        return False, _exact(bytes, "binary")
    if name == "enum":
        return False, _enum(frozenset(schema["symbols"]))
    if name == "array":
        return False, _array(_compile(schema["items"]))
    if name == "map":
        return False, _map(_compile(schema["values"]))
    raise NotImplementedError(f"Avro type {name!r} is not supported")


def _record(schema: dict, skip: frozenset = frozenset()) -> Checker:
    fields = [(f["name"], *_compile(f["type"])) for f in schema["fields"] if f["name"] not in skip]
    skipped = [f["name"] for f in schema["fields"] if f["name"] in skip]

    def check(value: object, path: str) -> dict:
        if type(value) is not dict:
            raise RecordError(path, f"expected a map, got {_kind(value)}")
        out = dict.fromkeys(skipped)
        get = value.get
        for name, nullable, checker in fields:
            v = get(name)
            if v is None:
                if not nullable:
                    raise RecordError(_at(path, name), "required field missing")
                out[name] = None
            elif checker is None:
                if type(v) is not str:
                    raise RecordError(_at(path, name), f"expected a string, got {_kind(v)}")
                out[name] = v
            else:
                out[name] = checker(v, _at(path, name))
        return out

    return check


def _exact(kind: type, label: str) -> Checker:
    def check(value: object, path: str) -> object:
        if type(value) is not kind:
            raise RecordError(path, f"expected {label}, got {_kind(value)}")
        return value

    return check


def _integer(low: int, high: int) -> Checker:
    def check(value: object, path: str) -> int:
        if type(value) is not int:
            raise RecordError(path, f"expected an integer, got {_kind(value)}")
        if not low <= value <= high:
            raise RecordError(path, f"integer out of range: {value}")
        return value

    return check


def _floating(value: object, path: str) -> float:
    if type(value) is float:
        return value
    if type(value) is int and abs(value) < 2**53:
        return float(value)  # an N without a fraction: same DynamoDB type, exact as a double
    raise RecordError(path, f"expected a number, got {_kind(value)}")


def _enum(symbols: frozenset) -> Checker:
    def check(value: object, path: str) -> str:
        if type(value) is not str or value not in symbols:
            raise RecordError(path, f"expected one of {sorted(symbols)}, got {value!r:.40}")
        return value

    return check


def _array(item: tuple[bool, Checker | None]) -> Checker:
    nullable, checker = item

    def check(value: object, path: str) -> list:
        if type(value) is not list:
            raise RecordError(path, f"expected a list, got {_kind(value)}")
        return [_element(v, f"{path}[{i}]", nullable, checker) for i, v in enumerate(value)]

    return check


def _map(values: tuple[bool, Checker | None]) -> Checker:
    nullable, checker = values

    def check(value: object, path: str) -> dict:
        if type(value) is not dict:
            raise RecordError(path, f"expected a map, got {_kind(value)}")
        return {k: _element(v, _at(path, k), nullable, checker) for k, v in value.items()}

    return check


def _element(value: object, path: str, nullable: bool, checker: Checker | None) -> object:
    if value is None:
        if nullable:
            return None
        raise RecordError(path, "null where a value is required")
    if checker is None:
        if type(value) is not str:
            raise RecordError(path, f"expected a string, got {_kind(value)}")
        return value
    return checker(value, path)


def _at(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _kind(value: object) -> str:
    """How a wrong value is described: its DynamoDB type and a short excerpt."""
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
