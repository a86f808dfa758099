"""Schemas and bytes: Avro object container files and Parquet files of archived records."""
