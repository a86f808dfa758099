"""Pure record rules: decode a stream record, unmarshal, select image, validate, mark deleted,
scrub, reference, system, partition date, provenance. No Dagster, no AWS in here."""

from demand_assets.records.decode import (
    Archivable,
    DecodedBatch,
    Rejected,
    Skipped,
    decode_batch,
    decode_change,
)
from demand_assets.records.errors import RecordError, error_document
from demand_assets.records.partition_date import PartitionWindow
from demand_assets.records.schemas import RECORD_TYPES, avro_schema

__all__ = [
    "RECORD_TYPES",
    "Archivable",
    "DecodedBatch",
    "PartitionWindow",
    "RecordError",
    "Rejected",
    "Skipped",
    "avro_schema",
    "decode_batch",
    "decode_change",
    "error_document",
]
