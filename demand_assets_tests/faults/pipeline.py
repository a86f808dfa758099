"""The hardening tests' `Pipeline` for the fault tests, on the stream-path design: built with
the fault tests' definitions (`faults/definitions.py`), its partition window the one the
definitions derive, and what the stream path leaves in S3 between its steps (summaries,
`.ids` digests, pending marks, sidecars) read back from the emulator directly."""

from __future__ import annotations

import dataclasses

import dagster as dg
import orjson

from demand_assets.config import Settings
from demand_assets.defs.partitions import partition_window
from demand_assets.defs.resources import S3Resource
from demand_assets.environment import partitions_from_settings
from demand_assets.records import PartitionWindow
from demand_assets_tests.faults.definitions import TEST_RETRY_POLICY, fault_definitions
from demand_assets_tests.hardening import Pipeline

AVRO, PARQUET = ".avro", ".parquet"


@dataclasses.dataclass
class FaultPipeline(Pipeline):
    @classmethod
    def build(
        cls,
        settings: Settings,
        s3,
        kinesis,
        s3_resource: S3Resource | None = None,
        retry_policy: dg.RetryPolicy | None = TEST_RETRY_POLICY,
    ) -> FaultPipeline:
        return cls(settings, s3, kinesis, fault_definitions(settings, s3_resource, retry_policy))

    @property
    def window(self) -> PartitionWindow:
        """The dates the pipeline's partitions accept today."""
        return partition_window(partitions_from_settings(self.settings))

    def summaries(self) -> list[dict]:
        """Every batch summary (`.json`; the `.ids` next to them are eventID digests)."""
        return [orjson.loads(self.get(k)) for k in self.summary_keys()]

    def summary_keys(self) -> list[str]:
        return [k for k in self.keys("landing/_batches/") if k.endswith(".json")]

    def pending(self) -> list[str]:
        """Keys of the pending marks: batches landed and not yet archived in every partition."""
        return self.keys("landing/_pending/")

    def landing_objects(self) -> list[str]:
        """Keys of the landed changes (`landing/{type}/partition_date=.../{batch}.jsonl.gz`)."""
        return [k for k in self.keys("landing/") if k.endswith(".jsonl.gz")]

    def data_files(self, fmt: str, record_type: str = "", day: str = "") -> list[str]:
        """Keys of the data objects of a format (of one type, one day), without sidecars."""
        under = f"{fmt}/" + (f"{record_type}/" if record_type else "")
        under += f"partition_date={day}/" if day else ""
        return [k for k in self.keys(under) if "/_" not in k and k.endswith(f".{fmt}")]

    def sidecars(self, fmt: str) -> list[str]:
        return [k for k in self.keys(f"{fmt}/") if "/_covers-" in k]

    def days(self, fmt: str = "parquet", record_type: str = "demand") -> set[str]:
        return {k.split("partition_date=")[1][:10] for k in self.data_files(fmt, record_type)}

    def drained(self) -> str:
        """The pipeline drained: no tick asks for a run, no batch is left pending, every
        archivable change once in each format, every data file with its sidecar. Returns the
        verdict."""
        assert not self.tick().run_requests, "a tick still asks for a run"
        assert not self.pending(), f"batches left pending: {self.pending()[:3]}"
        for fmt in ("avro", "parquet"):
            names = {k.removesuffix(f".{fmt}") for k in self.data_files(fmt)}
            covers = {k.replace("/_covers-", "/").removesuffix(".json") for k in self.sidecars(fmt)}
            assert names == covers, f"{fmt}: data files and sidecars differ"
        return self.verdict()
