"""A thin S3 client for one bucket: bytes in, bytes out, keys listed. Nothing else knows boto3's
S3 calls."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor

from botocore.exceptions import ClientError

# Files up to this size go in one PutObject; larger ones in parts of PART_BYTES, at most
# PARTS_IN_FLIGHT at a time, so an upload holds a few parts in memory, never the file.
SINGLE_PUT_BYTES = 64 * 1024 * 1024
PART_BYTES = 16 * 1024 * 1024
PARTS_IN_FLIGHT = 4


class Bucket:
    def __init__(self, client, name: str):
        self.client = client
        self.name = name

    def put(self, key: str, body: bytes, content_type: str = "application/octet-stream") -> None:
        self.client.put_object(Bucket=self.name, Key=key, Body=body, ContentType=content_type)

    def upload_file(self, key: str, path: str) -> None:
        """One PUT for a small file, a multipart upload in bounded memory for a large one."""
        if os.path.getsize(path) <= SINGLE_PUT_BYTES:
            with open(path, "rb") as body:
                self.client.put_object(Bucket=self.name, Key=key, Body=body)
            return
        upload_id = self.client.create_multipart_upload(Bucket=self.name, Key=key)["UploadId"]
        try:
            parts = self._upload_parts(key, path, upload_id)
            self.client.complete_multipart_upload(
                Bucket=self.name, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
            )
        except BaseException:
            self.client.abort_multipart_upload(Bucket=self.name, Key=key, UploadId=upload_id)
            raise

    def _upload_parts(self, key: str, path: str, upload_id: str) -> list[dict]:
        def upload(number: int, body: bytes) -> dict:
            response = self.client.upload_part(
                Bucket=self.name, Key=key, UploadId=upload_id, PartNumber=number, Body=body
            )
            return {"PartNumber": number, "ETag": response["ETag"]}

        parts, in_flight = [], []
        with open(path, "rb") as source, ThreadPoolExecutor(PARTS_IN_FLIGHT) as pool:
            number = 0
            while body := source.read(PART_BYTES):
                number += 1
                if len(in_flight) == PARTS_IN_FLIGHT:
                    parts.append(in_flight.pop(0).result())
                in_flight.append(pool.submit(upload, number, body))
                del body
            parts += [future.result() for future in in_flight]
        return parts

    def get(self, key: str) -> bytes:
        return self.client.get_object(Bucket=self.name, Key=key)["Body"].read()

    def get_or_none(self, key: str) -> bytes | None:
        try:
            return self.get(key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise

    def list(self, prefix: str) -> Iterator[dict]:
        """Objects under a prefix: dicts with Key, Size, LastModified."""
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.name, Prefix=prefix):
            yield from page.get("Contents", [])

    def prefixes(self, prefix: str) -> list[str]:
        """The "folders" directly under a prefix (keys grouped at the next `/`)."""
        paginator = self.client.get_paginator("list_objects_v2")
        return [
            common["Prefix"]
            for page in paginator.paginate(Bucket=self.name, Prefix=prefix, Delimiter="/")
            for common in page.get("CommonPrefixes", [])
        ]

    def keys(self, prefix: str) -> list[str]:
        return [obj["Key"] for obj in self.list(prefix)]

    def delete(self, keys: Iterable[str]) -> None:
        keys = list(keys)
        for start in range(0, len(keys), 1000):
            chunk = keys[start : start + 1000]
            response = self.client.delete_objects(
                Bucket=self.name,
                Delete={"Objects": [{"Key": k} for k in chunk], "Quiet": True},
            )
            if response.get("Errors"):
                raise RuntimeError(f"S3 delete failed: {response['Errors'][:3]}")
