"""The bucket client against the session's moto server, through the fault proxy (no fault armed)
so that each request it makes can be counted on the wire."""

from __future__ import annotations

import hashlib
import os
from collections import Counter

import boto3
import pytest

from demand_assets.storage.s3 import SINGLE_PUT_BYTES, TRANSFER, Bucket
from demand_assets_tests.faults.proxy import FaultProxy

PART_BYTES = TRANSFER.multipart_chunksize


@pytest.fixture
def wire(aws, s3):
    proxy = FaultProxy(aws).start()
    yield proxy
    proxy.stop()


def s3_calls(proxy: FaultProxy, key: str) -> Counter[str]:
    return Counter(c.operation for c in list(proxy.calls) if c.service == "s3" and c.key == key)


def test_small_files_go_in_one_put_and_large_ones_in_parts(s3, settings, tmp_path, wire):
    bucket = Bucket(boto3.client("s3", endpoint_url=wire.url), settings.bucket)
    assert TRANSFER.multipart_threshold == SINGLE_PUT_BYTES  # boto3 never splits a "small" file
    files = {
        "x/small.bin": 1000,
        "x/largest-small.bin": SINGLE_PUT_BYTES,
        "x/large.bin": SINGLE_PUT_BYTES + 1,
    }
    md5s = {}
    for key, size in files.items():
        path = tmp_path / key.split("/")[1]
        path.write_bytes(os.urandom(size))
        bucket.upload_file(key, str(path), size)
        assert Bucket(s3, settings.bucket).get(key) == path.read_bytes()  # read past the proxy
        md5s[key] = hashlib.md5(path.read_bytes()).hexdigest()

    etags = {o["Key"]: o["ETag"] for o in s3.list_objects_v2(Bucket=settings.bucket)["Contents"]}
    # Up to SINGLE_PUT_BYTES: one PutObject, nothing else (its ETag is the body's MD5).
    for key in ("x/small.bin", "x/largest-small.bin"):
        assert s3_calls(wire, key) == Counter({"PutObject": 1}), key
        assert etags[key].strip('"') == md5s[key], key
    # Larger: a multipart upload in parts of PART_BYTES (a multipart ETag counts its parts).
    parts = -(-files["x/large.bin"] // PART_BYTES)
    assert parts > 1
    assert s3_calls(wire, "x/large.bin") == Counter(
        {
            "CreateMultipartUpload": 1,
            "UploadPart": parts,
            "CompleteMultipartUpload": 1,
        }
    )
    assert etags["x/large.bin"].strip('"').endswith(f"-{parts}")
