"""Data-quality checks: Athena SQL written once, run by Athena in AWS and DuckDB locally."""
