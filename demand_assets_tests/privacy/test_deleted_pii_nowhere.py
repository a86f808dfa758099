"""No PII of a deleted record anywhere in the bucket (SPEC section 4): the pipeline runs with
deletions of records carrying PII, valid and malformed, next to ordinary traffic; a rebuild with
its checks runs too; EVERY object in the bucket, once the batches have landed (pending marks,
intents, eventID digests) and again at the end, is read (Avro and Parquet decoded, landing
gzip unpacked, JSON parsed, everything also as raw bytes) and searched for each deleted record's
PII values, in every form they could take (plain, JSON-escaped, ASCII-escaped, base64)."""

from __future__ import annotations

import base64
import contextlib
import gzip
import io
import json
from datetime import UTC, datetime

import dagster as dg
import fastavro
import orjson
import pyarrow.parquet as pq
import pytest

from demand_assets.records.deletion import PII_FIELDS
from demand_assets_tests.builders import change_document, valid_item
from demand_assets_tests.hardening import Pipeline, generated, table

AROUND = datetime(2024, 1, 16, tzinfo=UTC)  # the builders' records are of 2024-01-15
RANGE = ("dagster/asset_partition_range_start", "dagster/asset_partition_range_end")


def _secrets(n: int) -> dict[str, str]:
    """Unique PII values for the n-th deleted record, some of them non-ASCII."""
    return {
        "phoneNumber": f"+1555{n:07d}",
        "email": f"deleted.fan.{n}@pii.example",
        "messageBody": f"Grüße #{n}, your code is SECRET{n:04d} ✓ see you",
    }


def _remove(record_type: str, n: int, eid: str, **overrides) -> tuple[dict, dict]:
    secrets = _secrets(n)
    fields = {
        k: v for k, v in secrets.items() if record_type == "notification" or k != "messageBody"
    }
    document = change_document(
        "REMOVE", valid_item(record_type, **fields, **overrides), event_id=eid
    )
    return document, secrets


def _cases() -> list[tuple[str, bytes, dict, str]]:
    """(what, payload, its PII values, where it must end)."""
    cases = []

    def add(what, document_or_bytes, secrets, fate):
        data = document_or_bytes
        if isinstance(data, dict):
            data = orjson.dumps(data)
        cases.append((what, data, secrets, fate))

    n = iter(range(1, 1000))
    add("REMOVE of a demand", *_remove("demand", next(n), "p-demand"), "archived")
    add("REMOVE of a notification", *_remove("notification", next(n), "p-notif"), "archived")
    document, secrets = _remove("notification", next(n), "p-both")
    document["dynamodb"]["NewImage"] = {k: {"S": v} for k, v in secrets.items()}
    add("REMOVE with PII in NewImage too", document, secrets, "archived")
    document, secrets = _remove("demand", next(n), "p-types")
    old = document["dynamodb"]["OldImage"]
    old["email"] = {"SS": [secrets["email"]]}
    old["phoneNumber"] = {"B": base64.b64encode(secrets["phoneNumber"].encode()).decode()}
    add("REMOVE with PII as a string set and as binary", document, secrets, "archived")
    document, secrets = _remove("event", next(n), "p-event")
    document["dynamodb"]["OldImage"].update({k: {"S": v} for k, v in secrets.items()})
    add("REMOVE of an event with PII attributes (not archived)", document, secrets, "archived")
    # malformed deletions: rejected, their originals kept in errors/ without PII
    add(
        "REMOVE with a bad systemUserId",
        *_remove("demand", next(n), "p-sys", systemUserId="x"),
        "errors",
    )
    add(
        "REMOVE with no partition date",
        *_remove("notification", next(n), "p-date", date={"updated": "2024-01-15"}),
        "errors",
    )
    document, secrets = _remove("notification", next(n), "p-fan")
    document["dynamodb"]["OldImage"]["fanId"] = {"N": "5"}
    add("REMOVE with a wrongly typed fanId", document, secrets, "errors")
    document, secrets = _remove("demand", next(n), "p-time")
    document["dynamodb"]["ApproximateCreationDateTime"] = "yesterday"
    add("REMOVE with a bad change time", document, secrets, "errors")
    document, secrets = _remove("notification", next(n), "p-cut")
    data = orjson.dumps(document)
    add("REMOVE truncated inside messageBody", data[: data.index(b"SECRET") + 3], secrets, "errors")
    document, secrets = _remove("demand", next(n), "p-utf8")
    add(
        "REMOVE with a non-UTF-8 byte",
        orjson.dumps(document).replace(b'"e-1"', b'"e-\xff"'),
        secrets,
        "errors",
    )
    document, secrets = _remove("demand", next(n), "p-array")
    add("REMOVE inside a JSON array", b"[" + orjson.dumps(document) + b"]", secrets, "errors")
    document, secrets = _remove("demand", next(n), "p-1mib")
    document["dynamodb"]["OldImage"]["eventName"] = {"S": "x" * 1_000_000}
    data = orjson.dumps(document)
    add("1 MiB REMOVE truncated", data[: data.index(b"xxxx") + 500_000], secrets, "errors")
    document, secrets = _remove("demand", next(n), "p-sorted")
    data = orjson.dumps(document, option=orjson.OPT_SORT_KEYS)  # "dynamodb" before "eventName"
    add(
        "REMOVE, keys sorted, truncated before eventName",
        data[: data.index(b'"eventID"')],
        secrets,
        "errors",
    )
    document, secrets = _remove("demand", next(n), "p-escaped")
    data = orjson.dumps(document).replace(b'"REMOVE"', b'"REMOV\\u0045"')
    add("REMOVE with eventName JSON-escaped", data, secrets, "archived")
    return cases


def _forms(value: str) -> list[bytes]:
    """The ways a value can be written: plain, JSON-escaped, ASCII-escaped, base64."""
    return list(
        {
            value.encode(),
            orjson.dumps(value)[1:-1],
            json.dumps(value)[1:-1].encode(),
            base64.b64encode(value.encode()),
        }
    )


def _texts(key: str, body: bytes) -> list[bytes]:
    """The object as raw bytes, and decoded as what it is."""
    texts = [body]
    if body[:2] == b"\x1f\x8b":
        body = gzip.decompress(body)
        texts.append(body)
    if body[:4] == b"Obj\x01":
        rows = list(fastavro.reader(io.BytesIO(body)))
        texts.append(orjson.dumps(rows, default=str))
        texts.append(json.dumps(rows, default=str, ensure_ascii=False).encode())
    elif body[:4] == b"PAR1":
        rows = pq.read_table(io.BytesIO(body)).to_pylist()
        texts.append(json.dumps(rows, default=str, ensure_ascii=False).encode())
    else:
        for line in body.splitlines() or [body]:
            try:
                parsed = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            texts.append(json.dumps(parsed, ensure_ascii=False).encode())
            if isinstance(parsed, dict) and isinstance(parsed.get("data"), str):  # landing line
                texts.append(parsed["data"].encode())
            if isinstance(parsed, dict):  # error document: each original as JSON, if it is
                for event in parsed.get("events", []):
                    with contextlib.suppress(orjson.JSONDecodeError):
                        texts.append(json.dumps(orjson.loads(event), ensure_ascii=False).encode())
    return texts


@pytest.fixture
def pipeline(settings, s3, kinesis):
    return Pipeline.build(settings, s3, kinesis)


KINDS = {
    "avro": lambda k: "/avro/" in k and k.endswith(".avro"),
    "parquet": lambda k: k.endswith(".parquet"),
    "landing gzip": lambda k: k.endswith(".jsonl.gz"),
    "error documents": lambda k: "/errors/" in k,
    "batch summaries": lambda k: "/_batches/" in k and k.endswith(".json"),
    "batch eventID digests": lambda k: "/_batches/" in k and k.endswith(".ids"),
    "tick intents": lambda k: "/_intents/" in k,
    "pending marks": lambda k: "/_pending/" in k,
    "sidecars": lambda k: "/_covers-" in k,
}


def _search(pipeline: Pipeline, cases, found: dict[str, set[str]]) -> tuple[list[str], int]:
    """Read every object in the bucket and note where a deleted record's PII is; returns the
    keys read and the bytes searched."""
    bucket = pipeline.settings.bucket
    objects = [
        o["Key"]
        for page in pipeline.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
        for o in page.get("Contents", [])
    ]
    searched = 0
    for key in objects:
        body = pipeline.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        texts = _texts(key, body)
        searched += sum(len(t) for t in texts)
        for what, _, secrets, _ in cases:
            for value in secrets.values():
                if any(form in text for text in texts for form in _forms(value)):
                    found.setdefault(what, set()).add(key)
    return objects, searched


def test_no_pii_of_a_deleted_record_anywhere_in_the_bucket(pipeline):
    cases = _cases()
    traffic = generated(40, seed=61, now=AROUND, type_weights={"demand": 0.5, "notification": 0.5})
    payloads = traffic[:20] + [data for _, data, _, _ in cases] + traffic[20:]
    pipeline.put(payloads)
    # Landed, not yet archived: the bucket as an archive run finds it (pending marks, intents).
    for _ in range(10):
        pipeline.tick()
        if sum(s["records"] for s in pipeline.summaries()) == len(payloads):
            break
    found: dict[str, set[str]] = {}
    landed, searched = _search(pipeline, cases, found)
    assert any(KINDS["pending marks"](k) for k in landed), "nothing pending to search"
    pipeline.settle()
    # A rebuild of every partition with data, with its checks: compacted files, sidecars.
    days = sorted({k.split("partition_date=")[1][:10] for k in pipeline.keys("avro/")})
    types = sorted({k.split("/")[2] for k in pipeline.keys("avro/")})
    rebuild = dg.RunRequest(
        asset_selection=[dg.AssetKey(t) for t in types],
        tags={RANGE[0]: days[0], RANGE[1]: days[-1]},
    )
    assert pipeline.run(rebuild).success

    objects, more = _search(pipeline, cases, found)
    searched += more
    objects = sorted(set(landed) | set(objects))
    kinds = {kind: sum(map(test, objects)) for kind, test in KINDS.items()}
    assert all(kinds.values()), kinds  # every kind of object was written, and is searched
    unknown = [k for k in objects if not any(test(k) for test in KINDS.values())]
    assert not unknown, f"objects of no kind searched for: {unknown[:5]}"

    expected = pipeline.expected()
    archived = {r["provenance"]["eventID"]: r for _, _, r in expected.values()}
    events = {e for d in pipeline.error_documents() for e in d["events"]}
    rows = []
    for what, data, _, fate in cases:
        document_id = data.split(b'"eventID":"', 1)[-1].split(b'"', 1)[0].decode("utf-8", "replace")
        if fate == "archived":
            assert document_id in archived, what
            record = archived[document_id]
            assert record["isDeleted"] is True
            assert all(record.get(f) in (None, "[redacted]") for f in PII_FIELDS), what
            where = "archived, isDeleted, PII [redacted]"
        else:
            assert document_id not in archived, what
            where = "errors/"
        rows.append((what, where, ", ".join(sorted(found.get(what, []))) or "nowhere"))
    assert len(events) >= sum(fate == "errors" for *_, fate in cases)
    pipeline.verdict()
    table(
        f"Deleted records' PII searched in every object of the bucket ({len(objects)} objects: "
        + ", ".join(f"{n} {k}" for k, n in kinds.items())
        + f"; {searched:,} bytes searched, raw and decoded)",
        ("deletion", "ended", "its PII found in"),
        rows,
    )
    assert not found, found
