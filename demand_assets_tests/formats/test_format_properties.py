"""Property: any batch of archivable records round-trips through Avro and Parquet unchanged."""

from __future__ import annotations

import io

import fastavro
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from demand_assets.formats.avro import decode_avro, encode_avro, parsed_schema
from demand_assets.formats.parquet import decode_parquet, encode_parquet
from demand_assets.records import RECORD_TYPES, Archivable
from demand_assets_tests.builders import change, decode
from demand_assets_tests.strategies import ITEMS, change_times

changes = st.tuples(st.sampled_from(["INSERT", "MODIFY", "REMOVE"]), change_times)
batches = st.sampled_from(RECORD_TYPES).flatmap(
    lambda t: st.tuples(st.just(t), st.lists(st.tuples(ITEMS[t], changes), min_size=1, max_size=8))
)


def _records(batch) -> tuple[str, list[dict]]:
    record_type, drawn = batch
    records = []
    for i, (item, (event_name, when)) in enumerate(drawn):
        result = decode(change(event_name, item, change_time_ms=when, event_id=f"e{i}"))
        assert type(result) is Archivable, result
        records.append(result.record)
    return record_type, records


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batches, st.sampled_from(["null", "deflate", "snappy"]))
def test_avro_round_trip(batch, codec):
    record_type, records = _records(batch)
    data = encode_avro(record_type, records, codec=codec)
    assert decode_avro(data) == records
    reference = io.BytesIO()
    fastavro.writer(reference, parsed_schema(record_type), records, codec=codec)
    assert decode_avro(reference.getvalue()) == records


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batches)
def test_parquet_round_trip(batch):
    record_type, records = _records(batch)
    assert decode_parquet(encode_parquet(record_type, records)) == records
