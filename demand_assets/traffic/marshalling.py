"""Python values -> DynamoDB attribute values (`{"S": ...}`, `{"N": ...}`, ...), as the
AWS SDK marshals them, refusing what DynamoDB cannot hold."""

from __future__ import annotations

import base64
import math
from collections.abc import Mapping
from decimal import Decimal

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
