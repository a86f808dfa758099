"""Hypothesis over the whole decode + land path: generated batches of valid, structurally hostile,
byte-mangled and other-type records go through the real stream and sensor tick, and what lands
in S3 is held against the record rules, change by change: every archivable change in the landing
object of its (type, day) unless an earlier change had its eventID (dropped, counted as a
duplicate), every rejected one in an error document, every skipped one counted, the batch's
eventID digests, its intent and its pending marks as they must be, one archive run requested,
the whole batch read, no object of another kind and no key outside the prefix. The record rules'
own properties (never raising, scrubbing) are in records/test_properties.py; its strategies are
reused here."""

from __future__ import annotations

import gzip
import re
from collections import Counter

import orjson
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from demand_assets.defs.archive_job import ARCHIVE_JOB
from demand_assets.records import RECORD_TYPES, Archivable, Rejected, decode_change
from demand_assets.storage.recent import digest
from demand_assets_tests.builders import change, change_document, valid_item
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


# A change delivered again (Kinesis may: the same eventID under a new sequence number): one of
# the valid changes put before, in this batch or an earlier one, chosen by the drawn index.
redelivered = st.integers(0, 10_000).map(lambda index: ("re-delivered", index))
records = st.one_of(valid_changes, structured, other_types, mangled(), redelivered)
batches = st.lists(records, min_size=1, max_size=12)


def _payload(kind_and_value, serial: int, valid: list[bytes]) -> tuple[str, bytes]:
    kind, value = kind_and_value
    if kind == "re-delivered":
        if valid:
            return kind, valid[value % len(valid)]
        kind, value = "valid", change_document("INSERT", valid_item("demand"))
    if isinstance(value, bytes):
        return kind, value
    if kind != "structurally hostile":
        value = {**value, "eventID": f"fuzz-{serial}"}  # unique, so the archive can be checked
    data = orjson.dumps(value)
    if kind == "valid":
        valid.append(data)
    return kind, data


class Ledger:
    """What the fuzz run tried and where each record ended, by kind."""

    def __init__(self):
        self.fates: Counter = Counter()
        self.examples = 0
        self.serial = 0
        self.landed: set[str] = set()  # eventIDs landed so far: a re-delivery is dropped
        self.valid: list[bytes] = []  # the valid changes put so far, for re-deliveries


def _family(prefix: str, key: str) -> str:
    """Which kind of object a tick wrote (SPEC section 4, storage/layout.py)."""
    relative = key.removeprefix(f"{prefix}/")
    families = [
        ("summary", r"landing/_batches/\d{4}-\d\d-\d\d/[A-Za-z0-9_-]+\.json"),
        ("ids", r"landing/_batches/\d{4}-\d\d-\d\d/[A-Za-z0-9_-]+\.ids"),
        ("intent", r"landing/_intents/[0-9a-f]{32}\.json"),
        ("pending", rf"landing/_pending/({'|'.join(RECORD_TYPES)})/[A-Za-z0-9_-]+\.json"),
        (
            "landing",
            rf"landing/({'|'.join(RECORD_TYPES)})/partition_date=\d{{4}}-\d\d-\d\d/"
            r"[A-Za-z0-9_-]+\.jsonl\.gz",
        ),
        ("error", r"errors/[0-9TZ.-]+-[0-9a-f-]{36}\.json"),
    ]
    for family, pattern in families:
        if re.fullmatch(pattern, relative):
            return family
    raise AssertionError(f"a tick wrote an object of no known kind: {key}")


def _land_and_check(pipeline: Pipeline, ledger: Ledger, batch) -> None:
    payloads = []
    for kind_and_value in batch:
        ledger.serial += 1
        payloads.append(_payload(kind_and_value, ledger.serial, ledger.valid))
    window = pipeline.window
    model = [decode_change(data, "-", "-", window) for _, data in payloads]
    before = set(pipeline.keys())
    pipeline.put([data for _, data in payloads])

    result = pipeline.tick()

    written: dict[str, list[str]] = {}
    for key in sorted(set(pipeline.keys()) - before):
        written.setdefault(_family(pipeline.settings.prefix, key), []).append(key)
    (summary_key,) = written["summary"]
    summary = orjson.loads(pipeline.get(summary_key))
    name = summary["batch"]
    assert summary_key.endswith(f"/{name}.json")
    assert summary["records"] == len(payloads), "the tick did not read the whole batch"
    (intent_key,) = written["intent"]
    intent = orjson.loads(pipeline.get(intent_key))
    assert (intent["batch"], intent["ranges"]) == (name, summary["shards"])

    landed = Counter()
    for key in written.get("landing", []):
        assert key.endswith(f"/{name}.jsonl.gz"), key
        record_type, day = key.split("/")[-3], key.split("/")[-2].removeprefix("partition_date=")
        for line in gzip.decompress(pipeline.get(key)).splitlines():
            decoded = decode_change(orjson.loads(line)["data"].encode(), "-", "-", window)
            assert type(decoded) is Archivable, decoded
            assert (decoded.record_type, decoded.partition_date) == (record_type, day), key
            landed[(decoded.record["provenance"]["eventID"], record_type, day)] += 1
    events = Counter()
    for key in written.get("error", []):
        document = orjson.loads(pipeline.get(key))
        # SPEC's fields, plus where each event was read and its batch (kept for replays)
        assert {"timestamp", "error", "events"} <= set(document)
        assert set(document) <= {"timestamp", "error", "events", "positions", "batch"}
        assert document["error"]["message"]
        assert document["batch"] == name
        events.update(document["events"])

    # The model: every archivable change lands once, unless an earlier change (of this batch or
    # of one landed before, all within the dedup window) had its eventID.
    want_landed, duplicates, fates = Counter(), 0, []
    for m in model:
        if type(m) is not Archivable:
            fates.append("errors/" if type(m) is Rejected else "skipped")
            continue
        event_id = m.record["provenance"]["eventID"]
        if event_id in ledger.landed:
            duplicates += 1
            fates.append("duplicate")
            continue
        ledger.landed.add(event_id)
        want_landed[(event_id, m.record_type, m.partition_date)] += 1
        fates.append("landed")
    assert landed == want_landed
    assert summary["duplicates"] == duplicates
    assert events == Counter(m.original for m in model if type(m) is Rejected)
    skipped = Counter(m.item_type for m in model if type(m) not in (Archivable, Rejected))
    assert Counter(summary["skipped"]) == skipped

    # the batch's eventIDs, as digests, for the dedup of the batches that follow
    (ids_key,) = written["ids"]
    assert ids_key == summary_key.removesuffix(".json") + ".ids"
    assert pipeline.get(ids_key) == b"".join(sorted({digest(e) for e, _, _ in want_landed}))

    # pending for the archive run, per type touched, with each day's changes
    touched: dict[str, dict[str, int]] = {}
    for (_, record_type, day), n in want_landed.items():
        days = touched.setdefault(record_type, {})
        days[day] = days.get(day, 0) + n
    marks = {}
    for key in written.get("pending", []):
        assert key.endswith(f"/{name}.json"), key
        mark = orjson.loads(pipeline.get(key))
        assert mark["arrival"] == summary["last_arrival"]
        marks[key.split("/")[-2]] = mark["days"]
    assert marks == touched
    # and one archive run requested for it all (the test settings buffer nothing)
    assert [r.job_name for r in result.run_requests] == [ARCHIVE_JOB]

    everything = [
        o["Key"]
        for page in pipeline.s3.get_paginator("list_objects_v2").paginate(
            Bucket=pipeline.settings.bucket
        )
        for o in page.get("Contents", [])
    ]
    assert all(key.startswith(f"{pipeline.settings.prefix}/") for key in everything)

    ledger.examples += 1
    for (kind, _), fate in zip(payloads, fates, strict=True):
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
        "accounted for in landing/, the duplicates, errors/ or the skipped counts",
        ("generated", "tried", "landed", "duplicate", "errors/", "skipped"),
        [
            (
                kind,
                sum(n for (k, _), n in ledger.fates.items() if k == kind),
                ledger.fates[(kind, "landed")],
                ledger.fates[(kind, "duplicate")],
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
