"""Dagster definitions: resources, partitions, the record assets, IO managers, the sensor."""
