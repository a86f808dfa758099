"""The reference of each record type: its deduplication id and version timestamp (BR-006)."""

from __future__ import annotations

from demand_assets.records.timestamps import parse_instant

# reference.id: these fields joined by "_" (BR-006).
REFERENCE_ID_FIELDS: dict[str, tuple[str, ...]] = {
    "demand": ("eventId", "saleId", "fanId"),
    "notification": ("eventId", "saleId", "fanId"),
    "event": ("id",),
    "sale": ("eventId", "id"),
}


def reference(record_type: str, record: dict, change_time: str) -> dict:
    """`{id, timestamp}` per SPEC section 3. `record` is validated, so ids are strings."""
    try:
        id_fields = REFERENCE_ID_FIELDS[record_type]
    except KeyError:
        raise ValueError(f"no reference rule for record type {record_type!r}") from None
    dates = record.get("date") or {}
    if record_type == "demand":
        timestamp = latest_timestamp(dates, "date")
    elif record_type == "sale":
        timestamp = _first(dates.get("deleted"), record["saleStartDateTime"], change_time)
    else:
        timestamp = _first(dates.get("deleted"), dates.get("updated"), change_time)
    return {"id": "_".join(record[name] for name in id_fields), "timestamp": timestamp}


def _first(*values: str | None) -> str:
    """The first value that is not null: the `??` of SPEC section 3."""
    return next(v for v in values if v is not None)


def latest_timestamp(dates: dict, path: str) -> str:
    """The latest of the `date.*` timestamps present, as written in the record."""
    latest_text, latest = None, None
    for name, text in dates.items():
        if text is None:
            continue
        moment = parse_instant(text, f"{path}.{name}")
        if latest is None or moment > latest:
            latest_text, latest = text, moment
    if latest_text is None:
        raise ValueError("a demand record always has date.requested")
    return latest_text
