"""The S3 BlobStore over the minio client (S3, MinIO, moto's server).

minio's client is synchronous; every call runs in a worker thread.

Uploads: one presigned PUT per blob below `multipart_threshold`; above it, a
multipart upload with one presigned URL per part (`presigned_parts`). The
service completes it at finalize from the parts S3 lists (`complete_uploads`),
so a client only PUTs bytes. minio's client exposes these S3 calls only as
underscore methods (create/list/complete multipart upload, list parts); they
are used here, in the one adapter, and the contract tests cover them.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

from minio import Minio
from minio.error import S3Error

from modelreg.artifacts import CHUNK_SIZE, DIGEST_PATTERN, BlobInfo, MultipartTarget, blob_key

PART_SIZE = 64 * 1024 * 1024
MIN_PART_SIZE = 5 * 1024 * 1024  # S3's minimum for every part but the last
MAX_PARTS = 10_000


class S3BlobStore:
    def __init__(
        self,
        *,
        endpoint: str,
        bucket: str,
        access_key: str,
        secret_key: str,
        region: str = "us-east-1",
        secure: bool = True,
        multipart_threshold: int = PART_SIZE,
        part_size: int = PART_SIZE,
    ) -> None:
        if part_size < MIN_PART_SIZE:
            raise ValueError(f"part_size must be at least {MIN_PART_SIZE} bytes")
        self.multipart_threshold = multipart_threshold
        self.part_size = part_size
        self.bucket = bucket
        self.client = Minio(
            endpoint, access_key=access_key, secret_key=secret_key, region=region, secure=secure
        )
        self._bucket_ready = False
        self.spool_dir: str | None = None

    async def _ready(self) -> None:
        if not self._bucket_ready:
            if not await asyncio.to_thread(self.client.bucket_exists, self.bucket):
                try:
                    await asyncio.to_thread(self.client.make_bucket, self.bucket)
                except S3Error as error:
                    if error.code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                        raise
            self._bucket_ready = True

    async def stat(self, digest: str) -> BlobInfo | None:
        await self._ready()
        try:
            obj = await asyncio.to_thread(self.client.stat_object, self.bucket, blob_key(digest))
        except S3Error as error:
            if error.code in ("NoSuchKey", "NoSuchObject", "ResourceNotFound"):
                return None
            raise
        assert obj.size is not None and obj.last_modified is not None
        return BlobInfo(digest, obj.size, obj.last_modified)

    async def read(self, digest: str) -> AsyncIterator[bytes]:
        await self._ready()
        try:
            response = await asyncio.to_thread(self.client.get_object, self.bucket, blob_key(digest))
        except S3Error as error:
            raise FileNotFoundError(digest) from error
        try:
            while chunk := await asyncio.to_thread(response.read, CHUNK_SIZE):
                yield chunk
        finally:
            response.close()
            response.release_conn()

    async def commit(self, spooled: Path, digest: str) -> bool:
        if await self.stat(digest) is not None:
            return False
        await asyncio.to_thread(
            self.client.fput_object,
            self.bucket,
            blob_key(digest),
            str(spooled),
            content_type="application/octet-stream",
            part_size=PART_SIZE,
        )
        return True

    async def delete(self, digest: str) -> None:
        await self._ready()
        await asyncio.to_thread(self.client.remove_object, self.bucket, blob_key(digest))

    async def list_blobs(self) -> list[BlobInfo]:
        await self._ready()

        def listing() -> list[BlobInfo]:
            found = []
            for obj in self.client.list_objects(self.bucket, prefix="blobs/sha256/", recursive=True):
                name = (obj.object_name or "").rsplit("/", 1)[-1]
                if DIGEST_PATTERN.fullmatch(name) and obj.size is not None and obj.last_modified is not None:
                    found.append(BlobInfo(name, obj.size, obj.last_modified))
            return found

        return sorted(await asyncio.to_thread(listing), key=lambda b: b.sha256)

    async def presigned_put(self, digest: str, expires: timedelta) -> str:
        await self._ready()
        return await asyncio.to_thread(
            self.client.presigned_put_object, self.bucket, blob_key(digest), expires
        )

    async def presigned_parts(self, digest: str, size: int, expires: timedelta) -> MultipartTarget | None:
        if size < self.multipart_threshold:
            return None
        await self._ready()
        key = blob_key(digest)
        # Few parts for most files, never more than S3's 10,000.
        part_size = max(self.part_size, -(-size // MAX_PARTS))
        count = max(1, -(-size // part_size))

        def create() -> MultipartTarget:
            upload_id = self.client._create_multipart_upload(self.bucket, key, {})
            urls = [
                self.client.get_presigned_url(
                    "PUT",
                    self.bucket,
                    key,
                    expires,
                    extra_query_params={"uploadId": upload_id, "partNumber": str(number)},
                )
                for number in range(1, count + 1)
            ]
            return MultipartTarget(upload_id, part_size, urls)

        return await asyncio.to_thread(create)

    async def complete_uploads(self, digest: str) -> None:
        await self._ready()
        key = blob_key(digest)

        def complete() -> None:
            uploads = self.client._list_multipart_uploads(self.bucket, prefix=key).uploads
            done = False
            for upload in uploads:
                if upload.object_name != key or upload.upload_id is None:
                    continue
                parts = self.client._list_parts(self.bucket, key, upload.upload_id).parts
                if parts and not done:
                    self.client._complete_multipart_upload(self.bucket, key, upload.upload_id, parts)
                    done = True
                else:  # superseded by a later PrepareUpload, or empty: nothing to keep
                    self.client._abort_multipart_upload(self.bucket, key, upload.upload_id)

        await asyncio.to_thread(complete)
