"""Shared by the hardening tests (faults, hostile input, privacy): a pipeline on the moto server
driven through its public surface (stream, sensor ticks, run requests, S3), the exactly-once
verdict read back from S3, and the tables the tests print of what they tried."""

from __future__ import annotations

import gzip
import os
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime

import dagster as dg
import orjson
import pytest
from dagster_aws.s3 import S3Resource

from demand_assets.config import Settings
from demand_assets.definitions import build_definitions
from demand_assets.defs.partitions import partition_window
from demand_assets.environment import partitions_from_settings
from demand_assets.records import Archivable, PartitionWindow, decode_change
from demand_assets.traffic.generator import ChangeGenerator
from demand_assets_tests.defs.pipeline import (
    archived,
    event_id_counts,
    execute,
    keys,
    put,
    tick,
    without_position,
)

NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)
S3_RETRIES = 2  # S3 clients' `retries.max_attempts` in these tests (standard retry mode)
S3_CALLS = S3_RETRIES + 1  # botocore counts retries there: one call and its retries


def generated(n: int, seed: int, now: datetime = NOW, **options) -> list[bytes]:
    """Realistic demand changes (by default) over the two days up to `now`."""
    options.setdefault("type_weights", {"demand": 1.0})
    changes = ChangeGenerator(seed=seed, now=now, days=2, **options).changes(n)
    return [c.data for c in changes]


@dataclass
class Pipeline:
    """The pipeline as the daemon runs it, one step at a time: ticks, then the runs they ask."""

    settings: Settings
    s3: object  # a boto3 S3 client that reads the emulator directly, past any fault proxy
    kinesis: object
    defs: dg.Definitions
    instance: dg.DagsterInstance = field(default_factory=dg.DagsterInstance.ephemeral)
    payloads: list[bytes] = field(default_factory=list)
    cursor: str | None = None

    @classmethod
    def build(cls, settings: Settings, s3, kinesis, s3_resource: S3Resource | None = None):
        s3_resource = s3_resource or S3Resource(max_attempts=S3_RETRIES)
        return cls(settings, s3, kinesis, build_definitions(settings, s3=s3_resource))

    def put(self, payloads: list[bytes]) -> None:
        put(
            self.kinesis,
            self.settings.stream_name,
            [(p, f"pk-{i}") for i, p in enumerate(payloads)],
        )
        self.payloads += payloads

    def tick(self):
        """One tick; its cursor is kept only when the tick returns, as the daemon does."""
        result = tick(self.defs, self.instance, self.cursor)
        self.cursor = result.cursor or self.cursor
        return result

    def run(self, request) -> dg.ExecuteInProcessResult:
        return execute(self.defs, self.instance, request, raise_on_error=False)

    def settle(self, max_ticks: int = 10) -> int:
        """Tick and run until a tick asks for nothing; every run must succeed. Returns the runs."""
        runs = 0
        for _ in range(max_ticks):
            result = self.tick()
            if not result.run_requests:
                return runs
            for request in result.run_requests:
                outcome = self.run(request)
                assert outcome.success, failure_text(outcome)
                runs += 1
        raise AssertionError("the stream did not drain")

    @property
    def window(self) -> PartitionWindow:
        """The dates the pipeline's partitions accept today."""
        return partition_window(partitions_from_settings(self.settings))

    def expected(self) -> dict[str, tuple[str, str, dict]]:
        """eventID -> (type, day, record) of every archivable change put, as the rules derive
        them with the pipeline's partitions."""
        expected = {}
        for data in self.payloads:
            result = decode_change(data, "-", "-", self.window)
            if type(result) is Archivable:
                record = result.record
                expected[record["provenance"]["eventID"]] = (
                    result.record_type,
                    result.partition_date,
                    record,
                )
        return expected

    def verdict(self) -> str:
        """Every archivable change once in each format, equal to what the rules derive; else an
        AssertionError naming what is lost or doubled. Returns a one-line summary."""
        expected = self.expected()
        rows = archived(self.s3, self.settings)
        for fmt, found in rows.items():
            counts = event_id_counts(found)
            lost = set(expected) - set(counts)
            doubled = {e: n for e, n in counts.items() if n > 1}
            stray = set(counts) - set(expected)
            assert not lost, f"{fmt}: {len(lost)} changes lost, e.g. {sorted(lost)[:3]}"
            assert not doubled, f"{fmt}: changes doubled: {list(doubled.items())[:3]}"
            assert not stray, f"{fmt}: rows of no change put: {sorted(stray)[:3]}"
            for record_type, day, record in found:
                want_type, want_day, want = expected[record["provenance"]["eventID"]]
                assert (record_type, day) == (want_type, want_day), record["provenance"]
                assert without_position(record) == without_position(want), fmt
        return f"{len(expected)} changes, each once in avro and parquet"

    def keys(self, under: str = "") -> list[str]:
        return keys(self.s3, self.settings.bucket, f"{self.settings.prefix}/{under}")

    def get(self, key: str) -> bytes:
        return self.s3.get_object(Bucket=self.settings.bucket, Key=key)["Body"].read()

    def error_documents(self) -> list[dict]:
        return [orjson.loads(self.get(k)) for k in self.keys("errors/")]

    def summaries(self) -> list[dict]:
        """Every batch summary (the `.ids` next to them are eventID digests)."""
        keys = [k for k in self.keys("landing/_batches/") if k.endswith(".json")]
        return [orjson.loads(self.get(k)) for k in keys]

    def landed_data(self) -> list[bytes]:
        """The `data` of every landed change, from every landing object."""
        out = []
        for key in self.keys("landing/"):
            if key.endswith(".jsonl.gz"):
                for line in gzip.decompress(self.get(key)).splitlines():
                    out.append(orjson.loads(line)["data"].encode())
        return out


def case(name: str, *values, slow: bool = False):
    """One case of a parametrized hardening test; `slow` ones run with `make test-hardening`."""
    return pytest.param(*values, id=name, marks=[pytest.mark.slow] if slow else [])


def failure_text(result: dg.ExecuteInProcessResult) -> str:
    """The messages of a run's failed steps, with their causes: what its log shows."""
    texts = []
    for event in result.all_events:
        if event.event_type_value in ("STEP_FAILURE", "RUN_FAILURE"):
            error = getattr(event.event_specific_data, "error", None)
            while error is not None:
                texts.append(error.message.strip())
                error = error.cause
            if event.message:
                texts.append(event.message)
    return "\n".join(texts)


def error_text(exc: BaseException) -> str:
    """An exception with its chain of causes, as a tick's failure shows it."""
    texts = []
    while exc is not None:
        texts.append(f"{type(exc).__name__}: {exc}")
        exc = exc.__cause__ or exc.__context__
    return "\n".join(texts)


def counted(items) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(Counter(items).items()))


def table(title: str, header: tuple[str, ...], rows: list[tuple]) -> str:
    """A plain text table of what a test tried and how it ended: printed, and appended to the
    file `HARDENING_REPORT` names, if set."""
    cells = [tuple(str(c) for c in header)] + [tuple(str(c) for c in r) for r in rows]
    widths = [min(100, max(len(r[i]) for r in cells)) for i in range(len(header))]
    lines = [f"\n{title}"]
    for n, row in enumerate(cells):
        lines.append(
            " | ".join(c[: widths[i]].ljust(widths[i]) for i, c in enumerate(row)).rstrip()
        )
        if n == 0:
            lines.append("-+-".join("-" * w for w in widths))
    text = "\n".join(lines)
    print(text)
    report = os.environ.get("HARDENING_REPORT")  # `make test-hardening` collects them there
    if report:
        with open(report, "a", encoding="utf-8") as out:
            out.write(text + "\n")
    return text
