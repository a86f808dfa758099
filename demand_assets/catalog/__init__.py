"""The Glue Data Catalog (SPEC section 6): tables and partitions derived from the Avro schemas.

Pure boto3, no Dagster: `glue_schema` turns an `.avsc` into a Glue TableInput, `glue` creates,
evolves and partitions the tables.
"""
