"""IO managers that write a record asset's partitions as Avro and Parquet files in S3.

A record asset returns `PartitionOutput`s: the records of one partition, and whether they are
one batch (a sensor-launched run) or the whole partition (a rebuild). `FormatIOManager` writes
one format; `ArchiveIOManager` composes several (Avro and Parquet by default).
"""

import os
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import dagster as dg

from demand_assets.defs.resources import ArchiveResource
from demand_assets.formats import FILE_WRITERS
from demand_assets.storage.partition_files import PartitionFiles


@dataclass
class PartitionOutput:
    record_type: str
    day: str
    batches: list[str]  # the landed batches whose changes these records are
    compacted: bool  # True: the whole partition, rebuilt; False: exactly one batch
    count: int
    chunks: Callable[[], Iterable[list[dict]]]  # re-iterable, one pass per format


class FormatIOManager(dg.ConfigurableIOManager):
    """Writes record partitions in one format (`avro` or `parquet`)."""

    archive: dg.ResourceDependency[ArchiveResource]
    fmt: str

    def handle_output(self, context: dg.OutputContext, obj: list[PartitionOutput]) -> None:
        keys, size = self.write(obj)
        context.add_output_metadata(
            {f"{self.fmt}_bytes": size, f"{self.fmt}_keys": dg.MetadataValue.json(keys)}
        )

    def write(self, outputs: list[PartitionOutput]) -> tuple[list[str], int]:
        written, total = [], 0
        for output in outputs:
            if output.count == 0:
                continue
            files = PartitionFiles(
                self.archive.bucket(), self.archive.layout, self.fmt, output.record_type, output.day
            )
            upload = self._uploader(files, output)
            if output.compacted:
                name, size = files.write_compacted(output.batches, upload)
            else:
                (batch,) = output.batches
                size, name = files.write_batch(batch, upload), batch
                if size is None:
                    continue  # a rebuild already holds this batch
            written.append(files.key(name))
            total += size
        return written, total

    def _uploader(self, files: PartitionFiles, output: PartitionOutput):
        write_file = FILE_WRITERS[self.fmt]

        def upload(key: str) -> int:
            fd, path = tempfile.mkstemp(suffix=f".{self.fmt}")
            try:
                with os.fdopen(fd, "wb") as sink:
                    write_file(sink, output.record_type, output.chunks())
                files.bucket.upload_file(key, path)
                return os.path.getsize(path)
            finally:
                os.unlink(path)

        return upload

    def load_input(self, context: dg.InputContext) -> list[str]:
        """Downstream assets get the partition's data keys in this format."""
        (record_type,) = context.asset_key.path[-1:]
        keys = []
        for day in context.asset_partition_keys:
            files = PartitionFiles(
                self.archive.bucket(), self.archive.layout, self.fmt, record_type, day
            )
            keys += files.data_keys()
        return keys


class ArchiveIOManager(dg.ConfigurableIOManager):
    """Writes every configured format, in order; a retried run rewrites the same keys."""

    archive: dg.ResourceDependency[ArchiveResource]
    formats: list[str] = ["avro", "parquet"]

    def _format(self, fmt: str) -> FormatIOManager:
        return FormatIOManager(archive=self.archive, fmt=fmt)

    def handle_output(self, context: dg.OutputContext, obj: list[PartitionOutput]) -> None:
        for fmt in self.formats:
            self._format(fmt).handle_output(context, obj)

    def load_input(self, context: dg.InputContext) -> dict[str, list[str]]:
        return {fmt: self._format(fmt).load_input(context) for fmt in self.formats}
