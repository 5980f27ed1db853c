"""Extend inputs for a submission's files: a presigned URL per object version (url mode) or an upload to
Extend's files API streamed from S3 (upload mode), each input carrying batchdrop's ids in its metadata; a
file that cannot be an input (its object version gone, its upload refused) gets a ``RefusedInput``."""

from __future__ import annotations

import io
import mimetypes
import posixpath
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from batchdrop_core.extend import (
    ExtendRejectedError,
)
from batchdrop_core.runconfig import RunRoute as Route
from batchdrop_core.runtime import Runtime
from batchdrop_core.timeutil import iso, utc_now
from batchdrop_core.tracking import TrackedFile

if TYPE_CHECKING:
    from batchdrop_core.extend import BatchInput, FileRef


# A 400/422 may be about one input (Extend names it: "…; Path: inputs[3].file.url"); 401/402/403 (key,
# credits) and 404 (processor) are about the route.
INPUT_REFUSED_STATUSES = frozenset({400, 422})
EXTEND_REFUSED_INPUT = "EXTEND_REFUSED_INPUT"  # the reason of a file Extend refused as an input
OBJECT_NOT_FOUND = "OBJECT_NOT_FOUND"
MISSING_OBJECT_CODES = frozenset({"NoSuchKey", "NoSuchVersion", "404"})


@dataclass(frozen=True)
class RefusedInput:
    """A file that cannot be an input: its object version is gone, or Extend refused its upload."""

    reason: str
    message: str


def build_inputs(
    rt: Runtime, route: Route, submission_id: str, files: list[TrackedFile]
) -> tuple[list[BatchInput | RefusedInput], str | None]:
    """Extend inputs for a submission, each carrying batchdrop's ids in its metadata; a file that cannot
    be one gets a ``RefusedInput`` in its place."""
    from batchdrop_core.extend import BatchInput, FileRef  # loaded with the first batch (submit_batch)

    expires_in = rt.settings.presigned_url_expiry_seconds
    url_expires_at = (
        iso(utc_now() + timedelta(seconds=expires_in)) if rt.settings.file_transfer == "url" else None
    )
    s3 = rt.client("s3")

    def file_ref(tracked: TrackedFile) -> FileRef | RefusedInput:
        try:
            return _file_ref(tracked)
        except ClientError as exc:
            # The object version is gone (deleted since intake): that file is over, not the batch.
            if exc.response.get("Error", {}).get("Code") in MISSING_OBJECT_CODES:
                return RefusedInput(OBJECT_NOT_FOUND, f"S3 has no such object version: {exc}")
            raise
        except ExtendRejectedError as exc:
            # Extend refused this upload: that file is refused, unless Extend refused the route itself.
            if exc.status_code in INPUT_REFUSED_STATUSES:
                return RefusedInput(EXTEND_REFUSED_INPUT, exc.message or str(exc))
            raise

    def _file_ref(tracked: TrackedFile) -> FileRef:
        name = posixpath.basename(tracked.key) or tracked.key
        params = {"Bucket": tracked.bucket, "Key": tracked.key}
        if tracked.version_id != "null":
            params["VersionId"] = tracked.version_id
        if rt.settings.file_transfer == "upload":
            # Streamed from S3 to Extend in chunks, a fresh GetObject for each try: memory stays bounded
            # whatever the file's size and however many threads upload at once.
            content_type = tracked.content_type or mimetypes.guess_type(name)[0]

            def open_object() -> ObjectStream:
                return ObjectStream(s3.get_object(**params))

            uploaded = rt.extend.upload_file(name, open_object, content_type)
            return FileRef.from_id(uploaded.id)
        url = s3.generate_presigned_url("get_object", Params=params, ExpiresIn=expires_in)
        return FileRef.from_url(url, name=name)

    refs = rt.files.map_parallel(file_ref, files)
    inputs = [
        ref
        if isinstance(ref, RefusedInput)
        else BatchInput(
            file=ref,
            metadata={
                **tracked.user_metadata,
                "batchdrop": {"submissionId": submission_id, "fileId": tracked.file_id},
            },
        )
        for ref, tracked in zip(refs, files, strict=True)
    ]
    return inputs, url_expires_at


class ObjectStream(io.RawIOBase):
    """An S3 object's body as a read-once stream that tells its length, so an upload of it is sent with a
    Content-Length in chunks (httpx reads 64 KB at a time) rather than read whole into memory."""

    def __init__(self, response: dict[str, Any]) -> None:
        self._body = response["Body"]
        self._length = int(response["ContentLength"])
        self._position = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self._body.read(None if size is None or size < 0 else size)
        self._position += len(data)
        return data

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        # Only what an HTTP client asks of a stream it sends: its end (the length) and its current place.
        if whence == io.SEEK_END and offset == 0:
            return self._length
        if whence == io.SEEK_SET and offset == self._position:
            return self._position
        raise io.UnsupportedOperation("an S3 object stream is read once, from its start")
