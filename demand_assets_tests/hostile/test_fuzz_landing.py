"""Hypothesis over the whole decode + land path: generated batches of valid, structurally hostile,
byte-mangled and other-type records go through the real stream and sensor tick, and what lands
in S3 is held against the record rules, change by change: every archivable change in the landing
object of its (type, day), every rejected one in an error document, every skipped one counted,
the cursor past them all, no key outside the prefix. The record rules' own properties (never
raising, scrubbing) are in records/test_properties.py; its strategies are reused here."""

from __future__ import annotations

import gzip
from collections import Counter

import orjson
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from demand_assets.records import Archivable, Rejected, decode_change
from demand_assets_tests.builders import change
from demand_assets_tests.hardening import Pipeline, table
from demand_assets_tests.records.test_properties import stream_records
from demand_assets_tests.strategies import change_times, valid_items

HOSTILE_TYPES = ["../../x", "demand/../../etc", "demand\0", "", "Demand", "s" * 300, "/"]


def _valid(item_when_event) -> tuple[str, dict]:
    item, when, event_name = item_when_event
    return "valid", orjson.loads(change(event_name, item, change_time_ms=when))


valid_changes = st.tuples(
    valid_items, change_times, st.sampled_from(["INSERT", "MODIFY", "REMOVE"])
).map(_valid)
structured = stream_records.map(lambda document: ("structurally hostile", document))
other_types = st.tuples(valid_changes, st.sampled_from(HOSTILE_TYPES)).map(
    lambda pair: ("other type", _retyped(pair[0][1], pair[1]))
)


def _retyped(document: dict, item_type: str) -> dict:
    for image in ("NewImage", "OldImage"):
        if image in document["dynamodb"]:
            document["dynamodb"][image]["type"] = {"S": item_type}
    return document


@st.composite
def mangled(draw) -> tuple[str, bytes]:
    """A valid change's bytes, cut, corrupted or wrapped."""
    _, document = draw(valid_changes)
    data = orjson.dumps(document)
    how = draw(st.sampled_from(["cut", "bad byte", "BOM", "array", "doubled"]))
    if how == "cut":
        return "bytes mangled", data[: draw(st.integers(0, len(data) - 1))]
    if how == "bad byte":
        at = draw(st.integers(0, len(data)))
        return "bytes mangled", data[:at] + draw(
            st.sampled_from([b"\xff", b"\x00", b"\xc3"])
        ) + data[at:]
    if how == "BOM":
        return "bytes mangled", b"\xef\xbb\xbf" + data
    if how == "array":
        return "bytes mangled", b"[" + data + b"]"
    return "bytes mangled", data + data


records = st.one_of(valid_changes, structured, other_types, mangled())
batches = st.lists(records, min_size=1, max_size=12)


def _payload(kind_and_value, serial: int) -> tuple[str, bytes]:
    kind, value = kind_and_value
    if isinstance(value, bytes):
        return kind, value
    if kind != "structurally hostile":
        value = {**value, "eventID": f"fuzz-{serial}"}  # unique, so the archive can be checked
    return kind, orjson.dumps(value)


class Ledger:
    """What the fuzz run tried and where each record ended, by kind."""

    def __init__(self):
        self.fates: Counter = Counter()
        self.examples = 0
        self.serial = 0


def _land_and_check(pipeline: Pipeline, ledger: Ledger, batch) -> None:
    payloads = []
    for kind_and_value in batch:
        ledger.serial += 1
        payloads.append(_payload(kind_and_value, ledger.serial))
    window = pipeline.window
    model = [decode_change(data, "-", "-", window) for _, data in payloads]
    summaries_before = set(pipeline.keys("landing/_batches/"))
    errors_before = set(pipeline.keys("errors/"))
    landing_before = set(pipeline.keys("landing/"))
    pipeline.put([data for _, data in payloads])

    result = pipeline.tick()

    (summary_key,) = set(pipeline.keys("landing/_batches/")) - summaries_before
    summary = orjson.loads(pipeline.get(summary_key))
    assert summary["records"] == len(payloads), "the tick did not read the whole batch"
    landed = Counter()
    for key in sorted(set(pipeline.keys("landing/")) - landing_before - {summary_key}):
        record_type, day = key.split("/")[-3], key.split("/")[-2].removeprefix("partition_date=")
        for line in gzip.decompress(pipeline.get(key)).splitlines():
            decoded = decode_change(orjson.loads(line)["data"].encode(), "-", "-", window)
            assert type(decoded) is Archivable, decoded
            assert (decoded.record_type, decoded.partition_date) == (record_type, day), key
            landed[(decoded.record["provenance"]["eventID"], record_type, day)] += 1
    events = Counter()
    for key in set(pipeline.keys("errors/")) - errors_before:
        document = orjson.loads(pipeline.get(key))
        # SPEC's fields, plus where each event was read and its batch (kept for replays)
        assert {"timestamp", "error", "events"} <= set(document)
        assert set(document) <= {"timestamp", "error", "events", "positions", "batch"}
        assert document["error"]["message"]
        events.update(document["events"])

    want_landed = Counter(
        (m.record["provenance"]["eventID"], m.record_type, m.partition_date)
        for m in model
        if type(m) is Archivable
    )
    assert landed == want_landed
    assert events == Counter(m.original for m in model if type(m) is Rejected)
    skipped = Counter(m.item_type for m in model if type(m) not in (Archivable, Rejected))
    assert Counter(summary["skipped"]) == skipped
    touched = {(t, d) for _, t, d in want_landed}
    requested = {r.tags["demand/record_type"] for r in result.run_requests}
    assert requested == {t for t, _ in touched}
    everything = pipeline.s3.list_objects_v2(Bucket=pipeline.settings.bucket).get("Contents", [])
    assert all(o["Key"].startswith(f"{pipeline.settings.prefix}/") for o in everything)

    ledger.examples += 1
    for (kind, _), m in zip(payloads, model, strict=True):
        fate = {Archivable: "landed", Rejected: "errors/"}.get(type(m), "skipped")
        ledger.fates[(kind, fate)] += 1


def _fuzz(pipeline: Pipeline, examples: int) -> Ledger:
    ledger = Ledger()

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(batch=batches)
    def land(batch):
        _land_and_check(pipeline, ledger, batch)

    land()
    kinds = sorted({kind for kind, _ in ledger.fates})
    table(
        f"Fuzzed decode + land: {ledger.examples} batches, {ledger.serial} records, each "
        "accounted for in landing/, errors/ or the skipped counts",
        ("generated", "tried", "landed", "errors/", "skipped"),
        [
            (
                kind,
                sum(n for (k, _), n in ledger.fates.items() if k == kind),
                ledger.fates[(kind, "landed")],
                ledger.fates[(kind, "errors/")],
                ledger.fates[(kind, "skipped")],
            )
            for kind in kinds
        ],
    )
    return ledger


@pytest.fixture
def pipeline(settings, s3, kinesis):
    return Pipeline.build(settings, s3, kinesis)


def test_fuzzed_batches_land_change_by_change(pipeline):
    ledger = _fuzz(pipeline, examples=6)
    assert ledger.examples == 6


@pytest.mark.slow
def test_fuzzed_batches_land_change_by_change_many(pipeline):
    ledger = _fuzz(pipeline, examples=60)
    assert ledger.examples == 60
