"""A thin S3 client for one bucket: bytes in, bytes out, keys listed. Nothing else knows boto3's
S3 calls."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError

from demand_assets.aws import NOT_FOUND, error_code

# Files up to this size go in one PutObject; larger ones in parts of 16 MB, four at a time, so
# an upload holds a few parts in memory, never the file.
SINGLE_PUT_BYTES = 64 * 1024 * 1024
TRANSFER = TransferConfig(
    multipart_threshold=SINGLE_PUT_BYTES,
    multipart_chunksize=16 * 1024 * 1024,
    max_concurrency=4,
)


class Bucket:
    def __init__(self, client, name: str):
        self.client = client
        self.name = name

    def put(self, key: str, body: bytes, content_type: str = "application/octet-stream") -> None:
        self.client.put_object(Bucket=self.name, Key=key, Body=body, ContentType=content_type)

    def upload_file(self, key: str, path: str, size: int) -> None:
        """One PutObject for a small file (one request, no transfer threads); boto3's managed
        multipart upload for a large one."""
        if size <= SINGLE_PUT_BYTES:
            with open(path, "rb") as body:
                self.client.put_object(Bucket=self.name, Key=key, Body=body)
        else:
            self.client.upload_file(path, self.name, key, Config=TRANSFER)

    def get(self, key: str) -> bytes:
        return self.client.get_object(Bucket=self.name, Key=key)["Body"].read()

    def get_or_none(self, key: str) -> bytes | None:
        try:
            return self.get(key)
        except ClientError as exc:
            if error_code(exc) in NOT_FOUND:
                return None
            raise

    def exists(self, key: str) -> bool:
        try:
            self.client.head_object(Bucket=self.name, Key=key)
            return True
        except ClientError as exc:
            if error_code(exc) in NOT_FOUND:
                return False
            raise

    def list(self, prefix: str, start_after: str | None = None) -> Iterator[dict]:
        """Objects under a prefix in key order (after `start_after`, if given): dicts with Key,
        Size, LastModified."""
        paginator = self.client.get_paginator("list_objects_v2")
        kwargs = {"Bucket": self.name, "Prefix": prefix}
        if start_after:
            kwargs["StartAfter"] = start_after
        for page in paginator.paginate(**kwargs):
            yield from page.get("Contents", [])

    def prefixes(self, prefix: str) -> list[str]:
        """The "folders" directly under a prefix (keys grouped at the next `/`)."""
        paginator = self.client.get_paginator("list_objects_v2")
        return [
            common["Prefix"]
            for page in paginator.paginate(Bucket=self.name, Prefix=prefix, Delimiter="/")
            for common in page.get("CommonPrefixes", [])
        ]

    def keys(
        self, prefix: str, start_after: str | None = None, limit: int | None = None
    ) -> list[str]:
        """Keys under a prefix in key order; with `limit`, only the first so many (one call)."""
        if limit is not None:
            kwargs = {"Bucket": self.name, "Prefix": prefix, "MaxKeys": limit}
            if start_after:
                kwargs["StartAfter"] = start_after
            return [o["Key"] for o in self.client.list_objects_v2(**kwargs).get("Contents", [])]
        return [obj["Key"] for obj in self.list(prefix, start_after)]

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
