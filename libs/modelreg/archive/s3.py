"""The S3 SegmentStore over the minio client (S3, MinIO, moto's server).

A PUT is atomic and durable once S3 acknowledges it. minio's client is synchronous;
every call runs in a worker thread.
"""

from __future__ import annotations

import asyncio
import io

from minio import Minio
from minio.error import S3Error

_MISSING = ("NoSuchKey", "NoSuchObject", "ResourceNotFound")


class S3SegmentStore:
    def __init__(
        self,
        *,
        endpoint: str,
        bucket: str,
        access_key: str,
        secret_key: str,
        prefix: str = "",
        region: str = "us-east-1",
        secure: bool = True,
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.client = Minio(
            endpoint, access_key=access_key, secret_key=secret_key, region=region, secure=secure
        )
        self._bucket_ready = False

    async def _ready(self) -> None:
        if self._bucket_ready:
            return
        if not await asyncio.to_thread(self.client.bucket_exists, self.bucket):
            try:
                await asyncio.to_thread(self.client.make_bucket, self.bucket)
            except S3Error as error:
                if error.code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                    raise
        self._bucket_ready = True

    async def write(self, name: str, data: bytes) -> None:
        await self._ready()
        await asyncio.to_thread(
            self.client.put_object, self.bucket, self.prefix + name, io.BytesIO(data), len(data)
        )

    def _read(self, name: str) -> bytes:
        try:
            response = self.client.get_object(self.bucket, self.prefix + name)
        except S3Error as error:
            if error.code in _MISSING:
                raise FileNotFoundError(name) from None
            raise
        try:
            return bytes(response.read())
        finally:
            response.close()
            response.release_conn()

    async def read(self, name: str) -> bytes:
        await self._ready()
        return await asyncio.to_thread(self._read, name)

    async def exists(self, name: str) -> bool:
        await self._ready()
        try:
            await asyncio.to_thread(self.client.stat_object, self.bucket, self.prefix + name)
        except S3Error as error:
            if error.code in _MISSING:
                return False
            raise
        return True
