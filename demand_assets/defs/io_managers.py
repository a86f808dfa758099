"""IO managers that write a record asset's partitions as Avro and Parquet files in S3.

A record asset returns `PartitionOutput`s: the records of one partition, and whether they are
one batch (a sensor-launched run) or the whole partition (a rebuild). The records come as
chunks, produced while they are written (a rebuild reads its partition as it goes), and each
chunk becomes one Arrow table that every configured format writes from, so the formats never
disagree, the records are converted once, and memory holds a chunk, not a partition.
`ArchiveIOManager` writes Avro and Parquet by default, and any one of them alone with
`formats=["parquet"]`, say.
"""

import os
import tempfile
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass

import dagster as dg

from demand_assets.defs.resources import ArchiveResource
from demand_assets.formats import FORMATS, open_writer
from demand_assets.formats.arrow import to_table
from demand_assets.formats.avro import DEFAULT_CODEC
from demand_assets.storage.partition_files import PartitionFiles, compacted_days

MAX_KEYS_SHOWN = 10
# Partitions written at once: batch files are small and S3-bound; rebuilt partitions can be
# large, and each holds a chunk and a row group in memory while it is written.
BATCH_WRITERS = 8
REBUILD_WRITERS = 2


@dataclass
class PartitionOutput:
    record_type: str
    day: str
    batches: list[str]  # the landed batches whose changes these records are
    compacted: bool  # True: the whole partition, rebuilt; False: exactly one batch
    chunks: Callable[[], Iterable[list[dict]]]  # the records, a chunk at a time


@dataclass
class Written:
    """What `write_partitions` wrote: per format (keys, bytes), and records per partition."""

    files: dict[str, tuple[list[str], int]]
    records: dict[str, int]  # day -> records written (days with none are left out)

    @property
    def count(self) -> int:
        return sum(self.records.values())


def write_partitions(
    archive: ArchiveResource,
    formats: list[str],
    outputs: list[PartitionOutput],
    avro_codec: str = DEFAULT_CODEC,
) -> Written:
    """Write each partition in every format; a partition with no records writes nothing.

    Partitions are written concurrently: a run over a range of days spends its time waiting
    on S3, not encoding.
    """
    bucket, layout = archive.bucket(), archive.layout
    types = {o.record_type for o in outputs}
    marked = {(fmt, t): compacted_days(bucket, layout, fmt, t) for fmt in formats for t in types}
    writers = REBUILD_WRITERS if any(o.compacted for o in outputs) else BATCH_WRITERS
    with ThreadPoolExecutor(max_workers=max(1, min(writers, len(outputs)))) as pool:
        written = list(
            pool.map(lambda o: _write_partition(archive, formats, o, avro_codec, marked), outputs)
        )
    kept = [(o, r, n) for o, (r, n) in zip(outputs, written, strict=True) if n]
    outputs = [o for o, _, _ in kept]
    results = [r for _, r, _ in kept]
    # A rebuild that started while we wrote has marked its day by now: look at those days.
    for fmt, record_type in marked:
        now_marked = compacted_days(bucket, layout, fmt, record_type)
        for output, result in zip(outputs, results, strict=True):
            key, _ = result[fmt]
            if key is None or output.compacted or output.record_type != record_type:
                continue
            if output.day in now_marked:
                files = PartitionFiles(bucket, layout, fmt, record_type, output.day)
                if files.withdraw_if_covered(output.batches[0]):
                    result[fmt] = (None, 0)
    files: dict[str, tuple[list[str], int]] = {}
    for fmt in formats:
        keys = [r[fmt][0] for r in results if r[fmt][0] is not None]
        files[fmt] = (keys, sum(r[fmt][1] for r in results))
    return Written(files, {o.day: n for o, _, n in kept})


def _write_partition(
    archive, formats, output: PartitionOutput, avro_codec: str, marked
) -> tuple[dict, int]:
    """Writes the partition's files, then uploads them; (per-format results, records)."""
    bucket, layout = archive.bucket(), archive.layout
    with ExitStack() as stack:
        paths = {fmt: _temp_path(stack, fmt) for fmt in formats}
        sinks = {fmt: stack.enter_context(open(paths[fmt], "wb")) for fmt in formats}
        writers = {
            fmt: open_writer(fmt, sinks[fmt], output.record_type, avro_codec) for fmt in formats
        }
        for chunk in output.chunks():
            table = to_table(output.record_type, chunk)
            for writer in writers.values():
                writer.write(table)
        counts = {fmt: writers[fmt].close() for fmt in formats}
        for fmt in formats:
            sinks[fmt].close()
        count = counts[formats[0]] if formats else 0
        if not count:
            return {}, 0
        result = {}
        for fmt in formats:  # in order: a retried run rewrites the same keys
            files = PartitionFiles(bucket, layout, fmt, output.record_type, output.day)
            maybe_covered = output.day in marked[(fmt, output.record_type)]
            result[fmt] = _upload(files, output, paths[fmt], maybe_covered)
        return result, count


def _temp_path(stack: ExitStack, fmt: str) -> str:
    fd, path = tempfile.mkstemp(suffix=f".{fmt}")
    os.close(fd)
    stack.callback(os.unlink, path)
    return path


def _upload(files: PartitionFiles, output: PartitionOutput, path: str, maybe_covered: bool):
    def upload(key: str) -> int:
        files.bucket.upload_file(key, path)
        return os.path.getsize(path)

    if output.compacted:
        name, size = files.write_compacted(output.batches, upload)
        return files.key(name), size
    (batch,) = output.batches
    size = files.write_batch(batch, upload, maybe_covered)
    if size is None:
        return None, 0  # a rebuild already holds this batch
    return files.key(batch), size


class ArchiveIOManager(dg.ConfigurableIOManager):
    """Writes record partitions in each of `formats` (Avro and Parquet by default) to S3."""

    archive: dg.ResourceDependency[ArchiveResource]
    formats: list[str] = list(FORMATS)
    avro_codec: str = DEFAULT_CODEC

    def handle_output(self, context: dg.OutputContext, obj: list[PartitionOutput]) -> None:
        written = write_partitions(self.archive, self.formats, obj, self.avro_codec)
        metadata = {
            "dagster/row_count": written.count,
            "records": written.count,
            "partitions_written": len(written.records),
        }
        for fmt, (keys, size) in written.files.items():
            metadata[f"{fmt}_bytes"] = size
            metadata[f"{fmt}_files"] = len(keys)
            # A run over many days records this on every day: keep it short.
            metadata[f"{fmt}_keys"] = dg.MetadataValue.json(keys[:MAX_KEYS_SHOWN])
        context.add_output_metadata(metadata)

    def load_input(self, context: dg.InputContext) -> dict[str, list[str]]:
        """Downstream assets get each format's data keys of the requested partitions."""
        record_type = context.asset_key.path[-1]
        bucket, layout = self.archive.bucket(), self.archive.layout
        return {
            fmt: [
                key
                for day in context.asset_partition_keys
                for key in PartitionFiles(bucket, layout, fmt, record_type, day).data_keys()
            ]
            for fmt in self.formats
        }
