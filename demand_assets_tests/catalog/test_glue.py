"""The Glue catalog on the moto server: tables per type and format, schema evolution,
idempotent partition registration; and the Avro table's schema literal reading real files."""

from __future__ import annotations

import copy
import io
import json
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta

import boto3
import fastavro
import pytest
from botocore.exceptions import ClientError

from demand_assets.catalog.glue import (
    GlueCatalog,
    PartitionFailure,
    SchemaEvolutionError,
    check_evolution,
)
from demand_assets.catalog.glue_schema import (
    AVRO_LITERAL,
    FINGERPRINT,
    FORMATS,
    columns,
    table_input,
)
from demand_assets.formats.avro import encode_avro
from demand_assets.records import (
    RECORD_TYPES,
    Archivable,
    PartitionWindow,
    avro_schema,
    decode_change,
)
from demand_assets.storage.layout import Layout
from demand_assets.traffic.generator import ChangeGenerator

SERDES = {
    "avro": "org.apache.hadoop.hive.serde2.avro.AvroSerDe",
    "parquet": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe",
}


@pytest.fixture
def glue(aws):
    return boto3.client("glue")


@pytest.fixture
def catalog(glue, settings):
    catalog = GlueCatalog(glue, settings.glue_database)
    catalog.ensure_database()
    return catalog


def location(settings, fmt: str, record_type: str) -> str:
    return f"s3://{settings.bucket}/{Layout(settings.prefix).table_prefix(fmt, record_type)}"


def evolved(record_type: str, change) -> dict:
    schema = copy.deepcopy(avro_schema(record_type))
    change(schema)
    return schema


def field(schema: dict, path: str) -> dict:
    """The field at a dotted path; nested records may be nullable unions."""
    fields = schema["fields"]
    *parents, last = path.split(".")
    for name in parents:
        kind = next(f for f in fields if f["name"] == name)["type"]
        kind = next(b for b in kind if b != "null") if isinstance(kind, list) else kind
        fields = kind["fields"]
    return next(f for f in fields if f["name"] == last)


def remove(schema: dict, path: str) -> None:
    *parents, last = path.split(".")
    holder = field(schema, ".".join(parents)) if parents else None
    if holder is None:
        fields = schema["fields"]
    else:
        kind = holder["type"]
        fields = (next(b for b in kind if b != "null") if isinstance(kind, list) else kind)[
            "fields"
        ]
    fields[:] = [f for f in fields if f["name"] != last]


# --------------------------------------------------------------------------------------------
# database and tables
# --------------------------------------------------------------------------------------------


def test_ensure_database_is_idempotent(glue, settings):
    catalog = GlueCatalog(glue, settings.glue_database)
    assert catalog.ensure_database(description="archive") == "created"
    assert catalog.ensure_database(description="archive") == "unchanged"
    database = glue.get_database(Name=settings.glue_database)["Database"]
    assert database["Description"] == "archive"


def test_every_table_is_created_with_columns_serde_and_location(catalog, glue, settings):
    for record_type in RECORD_TYPES:
        for fmt in FORMATS:
            where = location(settings, fmt, record_type)
            assert catalog.ensure_table(table_input(record_type, fmt, where)) == "created"

            table = glue.get_table(DatabaseName=settings.glue_database, Name=f"{record_type}_{fmt}")
            table = table["Table"]
            sd = table["StorageDescriptor"]
            assert sd["Columns"] == columns(record_type)
            assert sd["Location"] == f"s3://test-archive/demand/{fmt}/{record_type}/"
            assert sd["SerdeInfo"]["SerializationLibrary"] == SERDES[fmt]
            assert table["PartitionKeys"] == [{"Name": "partition_date", "Type": "string"}]
            assert table["TableType"] == "EXTERNAL_TABLE"
            assert table["Parameters"]["classification"] == fmt

    names = {t["Name"] for t in glue.get_tables(DatabaseName=settings.glue_database)["TableList"]}
    assert names == {f"{t}_{f}" for t in RECORD_TYPES for f in FORMATS}
    # a second run changes nothing
    for record_type in RECORD_TYPES:
        for fmt in FORMATS:
            where = location(settings, fmt, record_type)
            assert catalog.ensure_table(table_input(record_type, fmt, where)) == "unchanged"


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_new_nullable_field_updates_the_table(catalog, settings, fmt):
    where = location(settings, fmt, "demand")
    catalog.ensure_table(table_input("demand", fmt, where))

    def add(schema):
        schema["fields"].append(
            {"name": "channel", "type": ["null", "string"], "default": None, "doc": "new"}
        )
        field(schema, "date")["type"]["fields"].append(
            {"name": "confirmed", "type": ["null", "string"], "default": None}
        )

    new_schema = evolved("demand", add)
    new_input = table_input("demand", fmt, where, schema=new_schema)
    assert catalog.ensure_table(new_input) == "updated"
    assert catalog.ensure_table(new_input) == "unchanged"

    stored = catalog.get_table("demand_" + fmt)
    cols = stored["StorageDescriptor"]["Columns"]
    assert cols[-1] == {"Name": "channel", "Type": "string", "Comment": "new"}
    date_type = next(c["Type"] for c in cols if c["Name"] == "date")
    assert date_type.endswith(",confirmed:string>")
    assert stored["Parameters"][FINGERPRINT] == new_input["Parameters"][FINGERPRINT]


def test_a_type_that_gains_null_updates_the_table(catalog, settings):
    where = location(settings, "avro", "sale")
    catalog.ensure_table(table_input("sale", "avro", where))
    schema = evolved("sale", lambda s: field(s, "eventId").update(type=["null", "string"]))
    assert catalog.ensure_table(table_input("sale", "avro", where, schema=schema)) == "updated"


@pytest.mark.parametrize(
    ("change", "path", "problem"),
    [
        (lambda s: remove(s, "email"), "email", "removed"),
        (lambda s: remove(s, "date.triggered"), "date.triggered", "removed"),
        (lambda s: field(s, "fanId").update(name="fanID"), "fanId", "removed"),
        (lambda s: field(s, "fanId").update(type="long"), "fanId", "changed type"),
        (lambda s: field(s, "isDeleted").update(type=["null", "string"]), "isDeleted", "changed"),
        (lambda s: field(s, "artistId").update(type="string"), "artistId", "non-nullable"),
        (
            lambda s: field(s, "reference.id").update(type="bytes"),
            "reference.id",
            "changed type",
        ),
        (
            lambda s: s["fields"].append({"name": "channel", "type": "string"}),
            "channel",
            "nullable with default null",
        ),
        (
            lambda s: s["fields"].append({"name": "channel", "type": ["null", "string"]}),
            "channel",
            "nullable with default null",
        ),
    ],
)
def test_incompatible_changes_raise_naming_the_field(
    catalog, glue, settings, change, path, problem
):
    where = location(settings, "avro", "demand")
    original = table_input("demand", "avro", where)
    catalog.ensure_table(original)
    with pytest.raises(SchemaEvolutionError, match=problem) as raised:
        catalog.ensure_table(table_input("demand", "avro", where, schema=evolved("demand", change)))
    assert raised.value.path == path
    assert "demand_avro" in str(raised.value) and repr(path) in str(raised.value)
    stored = catalog.get_table("demand_avro")
    assert stored["Parameters"][FINGERPRINT] == original["Parameters"][FINGERPRINT]


def test_parquet_tables_check_evolution_too(catalog, settings):
    where = location(settings, "parquet", "event")
    catalog.ensure_table(table_input("event", "parquet", where))
    schema = evolved("event", lambda s: remove(s, "eventDate.start.localDate"))
    with pytest.raises(SchemaEvolutionError, match="eventDate.start.localDate"):
        catalog.ensure_table(table_input("event", "parquet", where, schema=schema))


def test_a_table_made_elsewhere_is_checked_by_columns(catalog, glue, settings):
    where = location(settings, "parquet", "sale")
    foreign = table_input("sale", "parquet", where)
    foreign["Parameters"] = {"classification": "parquet"}
    foreign["StorageDescriptor"]["Columns"].append({"Name": "legacy", "Type": "string"})
    glue.create_table(DatabaseName=settings.glue_database, TableInput=foreign)
    with pytest.raises(SchemaEvolutionError, match="legacy"):
        catalog.ensure_table(table_input("sale", "parquet", where))
    foreign["StorageDescriptor"]["Columns"].pop()
    glue.update_table(DatabaseName=settings.glue_database, TableInput=foreign)
    assert catalog.ensure_table(table_input("sale", "parquet", where)) == "updated"


def test_location_and_projection_changes_update_the_table(catalog, settings):
    where = location(settings, "avro", "event")
    catalog.ensure_table(table_input("event", "avro", where))
    moved = where.replace("/demand/", "/demand-v2/")
    assert catalog.ensure_table(table_input("event", "avro", moved)) == "updated"
    assert catalog.get_table("event_avro")["StorageDescriptor"]["Location"] == moved

    projected = table_input("event", "avro", moved, projection=("2020-01-01", "NOW+400DAYS"))
    assert catalog.ensure_table(projected) == "updated"
    assert catalog.ensure_table(projected) == "unchanged"
    params = catalog.get_table("event_avro")["Parameters"]
    assert params["projection.partition_date.range"] == "2020-01-01,NOW+400DAYS"
    assert params["storage.location.template"] == f"{moved}partition_date=${{partition_date}}/"

    assert catalog.ensure_table(table_input("event", "avro", moved)) == "updated"
    assert not any(
        k.startswith("projection.") for k in catalog.get_table("event_avro")["Parameters"]
    )


def test_check_evolution_accepts_identical_and_reordered_schemas():
    for record_type in RECORD_TYPES:
        check_evolution(avro_schema(record_type), avro_schema(record_type), f"{record_type}_avro")
    reordered = evolved("sale", lambda s: s["fields"].reverse())
    check_evolution(avro_schema("sale"), reordered, "sale_avro")


def test_check_evolution_of_arrays_maps_and_enums():
    def schema(items, values, symbols):
        return {
            "type": "record",
            "name": "r",
            "fields": [
                {"name": "tags", "type": {"type": "array", "items": items}},
                {"name": "attrs", "type": {"type": "map", "values": values}},
                {"name": "kind", "type": {"type": "enum", "name": "k", "symbols": symbols}},
            ],
        }

    old = schema("string", "long", ["A", "B"])
    check_evolution(old, schema(["null", "string"], "long", ["A", "B", "C"]), "t")
    with pytest.raises(SchemaEvolutionError, match=r"'tags\[\]'"):
        check_evolution(old, schema("int", "long", ["A", "B"]), "t")
    with pytest.raises(SchemaEvolutionError, match=r"'attrs\{\}'"):
        check_evolution(old, schema("string", "string", ["A", "B"]), "t")
    with pytest.raises(SchemaEvolutionError, match="'kind' enum lost symbols"):
        check_evolution(old, schema("string", "long", ["A"]), "t")


# --------------------------------------------------------------------------------------------
# partitions
# --------------------------------------------------------------------------------------------


@pytest.fixture
def demand_avro(catalog, settings):
    where = location(settings, "avro", "demand")
    catalog.ensure_table(table_input("demand", "avro", where))
    return "demand_avro", where


def days(first: str, count: int) -> list[str]:
    start = date.fromisoformat(first)
    return [(start + timedelta(days=i)).isoformat() for i in range(count)]


def test_register_partitions_creates_then_finds_them_existing(catalog, glue, settings, demand_avro):
    table, where = demand_avro
    wanted = ["2024-01-03", "2024-01-01", "2024-01-02", "2024-01-01"]
    report = catalog.register_partitions(table, wanted, where)
    assert report.created == ["2024-01-01", "2024-01-02", "2024-01-03"]
    assert report.existing == [] and report.failed == [] and report.ok
    assert catalog.partitions(table) == {"2024-01-01", "2024-01-02", "2024-01-03"}

    partition = glue.get_partition(
        DatabaseName=settings.glue_database, TableName=table, PartitionValues=["2024-01-02"]
    )["Partition"]
    sd = partition["StorageDescriptor"]
    assert sd["Location"] == f"{where}partition_date=2024-01-02/"
    assert sd["SerdeInfo"]["SerializationLibrary"] == SERDES["avro"]
    assert sd["SerdeInfo"]["Parameters"][AVRO_LITERAL]
    assert sd["Columns"] == columns("demand")

    again = catalog.register_partitions(table, ["2024-01-01", "2024-01-02", "2024-01-04"], where)
    assert again.created == ["2024-01-04"]
    assert again.existing == ["2024-01-01", "2024-01-02"]
    assert catalog.register_partitions(table, [], where).created == []


def test_register_partitions_in_chunks_of_100(catalog, glue, demand_avro):
    table, where = demand_avro
    sizes: list[int] = []
    glue.meta.events.register(
        "provide-client-params.glue.BatchCreatePartition",
        lambda params, **_: sizes.append(len(params["PartitionInputList"])),
    )
    wanted = days("2023-06-01", 250)
    report = catalog.register_partitions(table, wanted, where)
    assert sizes == [100, 100, 50]  # moto itself accepts any size: the chunking is ours
    assert report.created == wanted and report.ok
    assert catalog.partitions(table) == set(wanted)

    sizes.clear()
    again = catalog.register_partitions(table, wanted, where)
    assert sizes == [100, 100, 50]
    assert again.created == [] and again.existing == wanted and again.ok


def test_register_partitions_reports_other_partition_errors(catalog, demand_avro, monkeypatch):
    """moto only ever reports AlreadyExistsException per partition (it accepts any value,
    even a malformed one), so the server-side failure is injected into moto's backend, which
    runs in this process."""
    from moto.glue.models import GlueBackend

    original = GlueBackend.batch_create_partition
    poisoned = {"2024-02-02"}

    def batch_create_partition(self, database_name, table_name, partition_input):
        keep = [p for p in partition_input if p["Values"][0] not in poisoned]
        errors = original(self, database_name, table_name, keep)
        return errors + [
            {
                "PartitionValues": p["Values"],
                "ErrorDetail": {"ErrorCode": "InternalServiceException", "ErrorMessage": "boom"},
            }
            for p in partition_input
            if p["Values"][0] in poisoned
        ]

    monkeypatch.setattr(GlueBackend, "batch_create_partition", batch_create_partition)
    table, where = demand_avro
    catalog.register_partitions(table, ["2024-02-01"], where)
    report = catalog.register_partitions(table, days("2024-02-01", 3), where)
    assert report.created == ["2024-02-03"]
    assert report.existing == ["2024-02-01"]
    assert report.failed == [PartitionFailure("2024-02-02", "InternalServiceException", "boom")]
    assert not report.ok
    assert catalog.partitions(table) == {"2024-02-01", "2024-02-03"}


def test_register_partitions_on_a_missing_table_raises(catalog, settings):
    with pytest.raises(ClientError) as raised:
        catalog.register_partitions("nope_avro", ["2024-01-01"], location(settings, "avro", "sale"))
    assert raised.value.response["Error"]["Code"] == "EntityNotFoundException"


@pytest.mark.parametrize("bad", ["2024-1-01", "2024-02-30", "20240101", "2024-01-01/x", ""])
def test_malformed_days_are_refused_before_anything_is_registered(catalog, demand_avro, bad):
    table, where = demand_avro
    with pytest.raises(ValueError, match="partition dates"):
        catalog.register_partitions(table, ["2024-01-01", bad], where)
    assert catalog.partitions(table) == set()


# --------------------------------------------------------------------------------------------
# the Avro table's schema literal reads the archive's files
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def records_by_type() -> dict[str, list[dict]]:
    window = PartitionWindow(date(2020, 1, 1), date(2030, 12, 31))
    changes = ChangeGenerator(seed=1, now=datetime(2026, 11, 20, tzinfo=UTC)).changes(200)
    found: dict[str, list[dict]] = defaultdict(list)
    for sequence, change in enumerate(changes, start=1):
        decoded = decode_change(change.data, "shardId-0", str(sequence), window)
        if isinstance(decoded, Archivable):
            found[decoded.record_type].append(decoded.record)
    assert set(found) == set(RECORD_TYPES)
    return found


@pytest.mark.parametrize("record_type", RECORD_TYPES)
def test_the_avro_tables_schema_literal_reads_real_files(
    catalog, settings, records_by_type, record_type
):
    where = location(settings, "avro", record_type)
    catalog.ensure_table(table_input(record_type, "avro", where))
    stored = catalog.get_table(f"{record_type}_avro")
    literal = stored["Parameters"][AVRO_LITERAL]
    assert stored["StorageDescriptor"]["SerdeInfo"]["Parameters"][AVRO_LITERAL] == literal

    records = records_by_type[record_type]
    data = encode_avro(record_type, records)
    assert list(fastavro.reader(io.BytesIO(data), reader_schema=json.loads(literal))) == records


def test_an_evolved_literal_still_reads_files_written_before(catalog, settings, records_by_type):
    where = location(settings, "avro", "demand")
    catalog.ensure_table(table_input("demand", "avro", where))

    def add(schema):
        schema["fields"].append({"name": "channel", "type": ["null", "string"], "default": None})
        field(schema, "date")["type"]["fields"].append(
            {"name": "confirmed", "type": ["null", "string"], "default": None}
        )

    evolved_input = table_input("demand", "avro", where, schema=evolved("demand", add))
    assert catalog.ensure_table(evolved_input) == "updated"
    literal = catalog.get_table("demand_avro")["Parameters"][AVRO_LITERAL]
    records = records_by_type["demand"]
    read = list(
        fastavro.reader(
            io.BytesIO(encode_avro("demand", records)), reader_schema=json.loads(literal)
        )
    )
    expected = [{**r, "channel": None, "date": {**r["date"], "confirmed": None}} for r in records]
    assert read == expected
