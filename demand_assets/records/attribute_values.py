"""DynamoDB attribute-value JSON -> plain Python values.

Hand-written for the stream's hot path. Every type of the attribute-value format is handled:
S, N, B, BOOL, NULL, M, L, SS, NS, BS. A malformed value raises `RecordError` naming the
attribute path.
"""

from __future__ import annotations

import base64
import binascii
import math
import re

from demand_assets.records.errors import RecordError

_MAX_NUMBER_CHARS = 64  # DynamoDB numbers have at most 38 significant digits
_NUMBER = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
MAX_DEPTH = 32  # DynamoDB nests maps and lists at most 32 levels deep


def unmarshal_image(image: object, path: str) -> dict:
    """Unmarshal a whole item image (`{"attr": {"S": ...}, ...}`) into a dict."""
    if type(image) is not dict:
        raise RecordError(path, f"expected an item (a JSON object), got {_kind(image)}")
    return {name: unmarshal(value, path, name) for name, value in image.items()}


def unmarshal(value: object, path: str, name: str | None = None, depth: int = 0) -> object:
    """Unmarshal one attribute value. `path` (and `name`) locate it for error messages."""
    # The common cases first; `len == 1` keeps `{"S": "a", "N": "1"}` an error.
    if type(value) is dict and len(value) == 1:
        ((tag, inner),) = value.items()
        if tag == "S":
            if type(inner) is str:
                return inner
        elif tag == "M":
            if type(inner) is dict:
                here = _nested(path, name, depth)
                return {k: unmarshal(v, here, k, depth + 1) for k, v in inner.items()}
        elif tag == "N":
            if type(inner) is str:
                return _number(inner, path, name)
        elif tag == "BOOL":
            if type(inner) is bool:
                return inner
        elif tag == "NULL":
            if inner is True:
                return None
        elif tag == "L":
            if type(inner) is list:
                here = _nested(path, name, depth)
                return [unmarshal(v, here, f"[{i}]", depth + 1) for i, v in enumerate(inner)]
        elif tag == "B":
            if type(inner) is str:
                return _binary(inner, path, name)
        elif tag == "SS":
            if type(inner) is list and all(type(v) is str for v in inner):
                return _set(inner, path, name)
        elif tag == "NS":
            if type(inner) is list and all(type(v) is str for v in inner):
                return _set([_number(v, path, name) for v in inner], path, name)
        elif tag == "BS":
            if type(inner) is list and all(type(v) is str for v in inner):
                return _set([_binary(v, path, name) for v in inner], path, name)
        else:
            raise RecordError(_join(path, name), f"unknown attribute-value type {tag!r}")
        raise RecordError(_join(path, name), f"malformed {tag} value: {_kind(inner)}")
    raise RecordError(_join(path, name), f"expected an attribute value, got {_kind(value)}")


def _number(text: str, path: str, name: str | None) -> int | float:
    if len(text) > _MAX_NUMBER_CHARS:
        raise RecordError(_join(path, name), f"number too long ({len(text)} characters)")
    if _NUMBER.fullmatch(text) is None:
        raise RecordError(_join(path, name), f"not a number: {text[:40]!r}")
    try:
        if "." in text or "e" in text or "E" in text:
            number = float(text)
            if not math.isfinite(number):
                raise ValueError(text)
            return number
        return int(text)
    except ValueError:
        raise RecordError(_join(path, name), f"not a number: {text[:40]!r}") from None


def _binary(text: str, path: str, name: str | None) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise RecordError(_join(path, name), "binary value is not valid base64") from None


def _set(values: list, path: str, name: str | None) -> list:
    """DynamoDB sets are non-empty with unique members; kept as a list in input order."""
    if not values:
        raise RecordError(_join(path, name), "empty set")
    if len(set(values)) != len(values):
        raise RecordError(_join(path, name), "set has duplicate members")
    return values


def _nested(path: str, name: str | None, depth: int) -> str:
    here = _join(path, name)
    if depth >= MAX_DEPTH:
        raise RecordError(here, f"nested deeper than {MAX_DEPTH} levels")
    return here


def _join(path: str, name: str | None) -> str:
    if name is None:
        return path
    if name.startswith("["):
        return f"{path}{name}"
    return f"{path}.{name}" if path else name


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object with keys " + ",".join(sorted(map(str, value))[:5]) if value else "{}"
    return type(value).__name__
