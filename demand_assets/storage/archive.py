"""The archive's place in S3: one bucket and the layout of its keys under a prefix."""

from __future__ import annotations

from dataclasses import dataclass

from demand_assets.storage.layout import Layout
from demand_assets.storage.s3 import Bucket


@dataclass(frozen=True)
class Archive:
    bucket: Bucket
    layout: Layout

    def table_location(self, fmt: str, record_type: str) -> str:
        """`s3://bucket/prefix/{fmt}/{type}/`: where a Glue table's partitions live."""
        return f"s3://{self.bucket.name}/{self.layout.table_prefix(fmt, record_type)}"
