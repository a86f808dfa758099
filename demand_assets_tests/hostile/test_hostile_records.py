"""The hostile corpus through the real stream and sensor: every record ends in errors/ with a
message naming the problem, is skipped and counted, or is archived intact; none stops the
stream, and no S3 key outside `{prefix}/` is ever written. Prints where each one ended."""

from __future__ import annotations

import re
import time
from collections import Counter
from datetime import UTC, datetime

import orjson
import pytest

from demand_assets_tests.hardening import Pipeline, generated, table
from demand_assets_tests.hostile.corpus import KINESIS_MAX_RECORD, corpus

PARTITION_KEY = "hostile"
ERROR_KEY = re.compile(r"^errors/\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d\.\d{3}Z-[0-9a-f-]{36}\.json$")
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
AROUND = datetime(2024, 1, 16, tzinfo=UTC)  # the builders' records are of 2024-01-15
MAX_PUT_BYTES = 5 * 1024 * 1024


@pytest.fixture
def pipeline(settings, s3, kinesis):
    return Pipeline.build(settings, s3, kinesis)


def _put(pipeline: Pipeline, payloads: list[bytes]) -> None:
    """In order, as few PutRecords calls as Kinesis's 500-record and 5 MiB limits allow."""
    chunk, size = [], 0
    for data in payloads + [None]:
        if data is None or len(chunk) == 500 or size + len(data) + 16 > MAX_PUT_BYTES:
            if chunk:
                response = pipeline.kinesis.put_records(
                    StreamName=pipeline.settings.stream_name,
                    Records=[{"Data": d, "PartitionKey": PARTITION_KEY} for d in chunk],
                )
                assert response["FailedRecordCount"] == 0
            chunk, size = [], 0
        if data is not None:
            chunk.append(data)
            size += len(data) + len(PARTITION_KEY)
    pipeline.payloads += payloads


def _excerpt(text: str, width: int = 70) -> str:
    text = text.replace("\0", "\\0")
    return text if len(text) <= width else text[: width - 1] + "…"


def test_hostile_records_end_in_errors_skipped_or_archived_and_never_stop_the_stream(pipeline):
    window = pipeline.window
    hostile = corpus(window.first, window.last, len(PARTITION_KEY))
    assert all(len(h.data) + len(PARTITION_KEY) <= KINESIS_MAX_RECORD for h in hostile)
    # Traffic around the corpus's own dates, before and after it: the stream must go on.
    before, after = generated(20, seed=51, now=AROUND), generated(20, seed=52, now=AROUND)
    _put(pipeline, before + [h.data for h in hostile] + after)

    started = time.monotonic()
    runs = pipeline.settle()
    seconds = time.monotonic() - started
    # the runs archived every batch: none is left pending behind a hostile record
    assert not pipeline.keys("landing/_pending/"), pipeline.keys("landing/_pending/")

    # nothing outside the prefix, in the whole bucket
    everything = [
        o["Key"]
        for page in pipeline.s3.get_paginator("list_objects_v2").paginate(
            Bucket=pipeline.settings.bucket
        )
        for o in page.get("Contents", [])
    ]
    outside = [k for k in everything if not k.startswith(f"{pipeline.settings.prefix}/")]
    assert not outside, outside
    assert all(".." not in k.split("/") and "\0" not in k for k in everything)

    # error documents are named and stamped as SPEC sections 4 and 5 say
    prefix = pipeline.settings.prefix
    for key in pipeline.keys("errors/"):
        assert ERROR_KEY.match(key[len(prefix) + 1 :]), key
    for document in pipeline.error_documents():
        assert TIMESTAMP.match(document["timestamp"]), document["timestamp"]

    # where each one ended
    messages_of: dict[str, list[str]] = {}
    for document in pipeline.error_documents():
        for event in document["events"]:
            messages_of.setdefault(event, []).append(document["error"]["message"])
    skipped = Counter()
    for summary in pipeline.summaries():
        skipped.update(summary["skipped"])
    rows = pipeline.verdict()  # the archivable ones: each once, equal to what the rules derive
    archived = set(pipeline.expected())
    wanted_skips = Counter(h.says for h in hostile if h.fate == "skipped")

    report = []
    for h in hostile:
        if h.fate == "errors":
            messages = messages_of.get(h.data.decode("utf-8", "backslashreplace"), [])
            assert len(messages) == 1, f"{h.name}: in {len(messages)} error documents"
            assert h.says in messages[0], f"{h.name}: {messages[0]!r}"
            where = f"errors/: {messages[0]}"
        elif h.fate == "skipped":
            assert skipped[h.says] == wanted_skips[h.says], f"{h.name}: {skipped}"
            where = f"skipped, counted as {h.says!r}"
        else:
            assert h.says in archived, h.name
            where = "archived once in avro and parquet"
        report.append((h.name, f"{len(h.data):,}", h.fate, _excerpt(where)))
    assert set(skipped) == set(wanted_skips), skipped
    rejected = sum(len(m) for m in messages_of.values())
    assert rejected == sum(h.fate == "errors" for h in hostile)
    for payload in before + after:  # the stream went on, before and after the corpus
        event_id = orjson.loads(payload)["eventID"]
        assert event_id in archived

    table(
        f"Hostile records through the stream: {len(hostile)} tried, {runs} runs, {seconds:.1f} s; "
        f"{rows}; no key outside {pipeline.settings.prefix}/",
        ("record", "bytes", "fate", "where"),
        report,
    )
