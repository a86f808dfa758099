"""The Avro schema of each record type: the single source of truth for every other schema.

The `.avsc` files beside this module define the archived record. The Parquet schema, the Glue
columns and the checks' expectations are all derived from them.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

RECORD_TYPES = ("demand", "notification", "event", "sale")
SCHEMA_DIR = Path(__file__).parent / "schemas"

# Fields the pipeline derives; an item's own values for them are ignored.
DERIVED_FIELDS = frozenset({"reference", "system", "provenance"})


@cache
def avro_schema(record_type: str) -> dict:
    """The Avro schema (a JSON dict) of a record type."""
    if record_type not in RECORD_TYPES:
        raise KeyError(f"unknown record type {record_type!r}")
    return json.loads((SCHEMA_DIR / f"{record_type}.avsc").read_text())


def avro_schema_text(record_type: str) -> str:
    """The schema as compact JSON text, e.g. for Glue's `avro.schema.literal`."""
    return json.dumps(avro_schema(record_type), separators=(",", ":"))
