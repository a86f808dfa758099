"""The bucket client against the session's moto server."""

from __future__ import annotations

import os

from demand_assets.storage import s3 as s3_module
from demand_assets.storage.s3 import Bucket


def test_small_files_go_in_one_put_and_large_ones_in_parts(s3, settings, tmp_path, monkeypatch):
    bucket = Bucket(s3, settings.bucket)
    small, large = tmp_path / "small.bin", tmp_path / "large.bin"
    small.write_bytes(os.urandom(1000))
    large.write_bytes(os.urandom(12 * 1024 * 1024))
    monkeypatch.setattr(s3_module, "SINGLE_PUT_BYTES", 5 * 1024 * 1024)

    bucket.upload_file("x/small.bin", str(small))
    bucket.upload_file("x/large.bin", str(large))

    assert bucket.get("x/small.bin") == small.read_bytes()
    assert bucket.get("x/large.bin") == large.read_bytes()
    etags = {o["Key"]: o["ETag"] for o in bucket.list("x/")}
    assert "-" not in etags["x/small.bin"]  # a single PUT's ETag is the body's MD5
    assert "-" in etags["x/large.bin"]  # a multipart upload's ETag counts its parts
