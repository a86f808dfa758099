"""Avro binary encoding computed column by column from an Arrow table.

The archive builds an Arrow table of each batch for Parquet anyway; encoding Avro from the same
columns with Arrow compute kernels costs a fraction of a row-by-row writer. Each column becomes
an array holding every row's encoding of that field (zig-zag varints, length-prefixed bytes,
union branch indexes for nullable fields), the columns of a record are joined row-wise, and the
joined rows of a block are the Avro block's payload. The container header comes from fastavro,
and tests hold the bytes equal to fastavro's own writer.

It encodes what the archive's schemas use: records, `["null", T]` unions, strings, bytes,
booleans, ints, longs, floats and doubles (logical types on those included). Arrays, maps,
enums, fixed, other unions and named-type references it does not: `check_schema` refuses a
schema holding one, naming the field, and `demand_assets.formats` runs it on every record
type's schema when it is imported, so such a schema change fails at load, not at every write.
"""

from __future__ import annotations

import zlib

import cramjam
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_NULL_BRANCH = pa.scalar(b"\x00", pa.large_binary())
_VALUE_BRANCH = pa.scalar(b"\x02", pa.large_binary())
_EMPTY = pa.scalar(b"", pa.large_binary())
_TRUE = pa.scalar(b"\x01", pa.large_binary())
_FALSE = pa.scalar(b"\x00", pa.large_binary())
BLOCK_BYTES = 1 << 20  # uncompressed payload per block, about


class NotVectorized(NotImplementedError):
    """A schema construct this encoder does not handle (see `check_schema`)."""


SCALARS = frozenset({"string", "bytes", "boolean", "int", "long", "float", "double"})


def unsupported(avro_type: object, path: str = "") -> list[str]:
    """`field.path: construct` for every part of a schema this encoder cannot encode."""
    if isinstance(avro_type, list):
        branches = [t for t in avro_type if t != "null"]
        if len(branches) != 1 or avro_type[0] != "null":
            return [f"{path or '<root>'}: union {avro_type}"]
        return unsupported(branches[0], path)
    kind = avro_type["type"] if isinstance(avro_type, dict) else avro_type
    if isinstance(kind, dict | list):
        return unsupported(kind, path)
    if kind == "record":
        found: list[str] = []
        for field in avro_type["fields"]:
            child = f"{path}.{field['name']}" if path else field["name"]
            found += unsupported(field["type"], child)
        return found
    if kind in SCALARS:
        return []
    return [f"{path or '<root>'}: Avro type {kind!r}"]


def check_schema(avro_schema: dict) -> None:
    """Raise NotVectorized naming each field this encoder cannot encode."""
    problems = unsupported(avro_schema)
    if problems:
        raise NotVectorized(
            f"schema {avro_schema.get('name')!r} holds what the columnar Avro encoder cannot "
            f"encode: {'; '.join(problems)}"
        )


def encode_rows(table: pa.Table, avro_schema: dict) -> pa.LargeBinaryArray:
    """Every row of `table` encoded as Avro binary per the (record) schema."""
    columns = [
        _encode(table.column(f["name"]).combine_chunks(), f["type"], table.num_rows)
        for f in avro_schema["fields"]
    ]
    return _join(columns, table.num_rows)


def blocks(rows: pa.LargeBinaryArray, block_bytes: int = BLOCK_BYTES):
    """(row count, payload bytes) of consecutive blocks of about `block_bytes` each."""
    n = len(rows)
    if n == 0:
        return
    offsets = np.frombuffer(rows.buffers()[1], dtype=np.int64)[rows.offset : rows.offset + n + 1]
    data = rows.buffers()[2]
    start = 0
    while start < n:
        limit = offsets[start] + block_bytes
        end = max(start + 1, int(np.searchsorted(offsets, limit, side="right")) - 1)
        end = min(end, n)
        yield end - start, data[int(offsets[start]) : int(offsets[end])].to_pybytes()
        start = end


def block_bytes(count: int, payload: bytes, codec: str, sync_marker: bytes) -> bytes:
    """One Avro container block: count, size, (compressed) payload, sync marker."""
    if codec == "null":
        body = payload
    elif codec == "snappy":
        body = bytes(cramjam.snappy.compress_raw(payload)) + zlib.crc32(payload).to_bytes(4, "big")
    elif codec == "deflate":
        compressor = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -15)
        body = compressor.compress(payload) + compressor.flush()
    else:
        raise ValueError(f"codec {codec!r} is not supported (null, deflate, snappy)")
    return zigzag_varint(count) + zigzag_varint(len(body)) + body + sync_marker


def zigzag_varint(value: int) -> bytes:
    z = (value << 1) ^ (value >> 63)
    out = bytearray()
    while z > 0x7F:
        out.append((z & 0x7F) | 0x80)
        z >>= 7
    out.append(z)
    return bytes(out)


# -- columns -------------------------------------------------------------------------------------
def _encode(column: pa.Array, avro_type: object, n: int) -> pa.Array:
    if isinstance(avro_type, list):
        branches = [t for t in avro_type if t != "null"]
        if len(branches) != 1 or avro_type[0] != "null":
            raise NotVectorized(f"union {avro_type}")
        encoded = _encode(column, branches[0], n)
        if column.null_count == 0:
            return pc.binary_join_element_wise(_VALUE_BRANCH, encoded, _EMPTY)
        return pc.if_else(
            column.is_null(),
            _NULL_BRANCH,
            pc.binary_join_element_wise(_VALUE_BRANCH, encoded, _EMPTY),
        )
    kind = avro_type["type"] if isinstance(avro_type, dict) else avro_type
    if isinstance(kind, dict | list):
        return _encode(column, kind, n)
    if kind in ("string", "bytes"):
        values = column.cast(pa.large_binary()).fill_null(b"")
        lengths = pc.binary_length(values).to_numpy(zero_copy_only=False)
        return pc.binary_join_element_wise(_varints(lengths.astype(np.int64)), values, _EMPTY)
    if kind == "record":
        children = [_encode(column.field(f["name"]), f["type"], n) for f in avro_type["fields"]]
        return _join(children, n)
    if kind == "boolean":
        return pc.if_else(column.fill_null(False), _TRUE, _FALSE)
    if kind in ("int", "long"):
        return _varints(column.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64))
    if kind in ("float", "double"):
        dtype = np.float32 if kind == "float" else np.float64
        values = column.fill_null(0).to_numpy(zero_copy_only=False).astype(dtype)
        return _fixed_width(values.view(np.uint8), values.dtype.itemsize, n)
    raise NotVectorized(f"Avro type {kind!r}")


def _join(encoded: list[pa.Array], n: int) -> pa.Array:
    if not encoded:
        return pa.array([b""] * n, pa.large_binary())
    if len(encoded) == 1:
        return encoded[0]
    return pc.binary_join_element_wise(*encoded, _EMPTY)


def _varints(values: np.ndarray) -> pa.Array:
    """Zig-zag varint of each value, as a binary array."""
    z = ((values << 1) ^ (values >> 63)).astype(np.uint64)
    n = len(z)
    sizes = np.ones(n, dtype=np.int64)
    rest = z >> np.uint64(7)
    while rest.any():
        sizes += rest > 0
        rest >>= np.uint64(7)
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(sizes, out=offsets[1:])
    data = np.empty(int(offsets[-1]), dtype=np.uint8)
    starts = offsets[:-1]
    shifted = z
    for k in range(int(sizes.max()) if n else 0):
        present = sizes > k
        more = sizes > k + 1
        byte = (shifted & np.uint64(0x7F)).astype(np.uint8) | (more.astype(np.uint8) << 7)
        data[starts[present] + k] = byte[present]
        shifted = shifted >> np.uint64(7)
    return pa.LargeBinaryArray.from_buffers(
        pa.large_binary(), n, [None, pa.py_buffer(offsets), pa.py_buffer(data)]
    )


def _fixed_width(data: np.ndarray, width: int, n: int) -> pa.Array:
    offsets = np.arange(0, (n + 1) * width, width, dtype=np.int64)
    return pa.LargeBinaryArray.from_buffers(
        pa.large_binary(), n, [None, pa.py_buffer(offsets), pa.py_buffer(data.tobytes())]
    )
