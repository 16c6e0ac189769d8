"""Object uploads of the emulator's Cloud Storage: objects.insert in all its forms.

Owns `GcsUploads`: uploadType=media (streamed), multipart (metadata + media), resumable
(session start, chunks with Content-Range and 308, cancel, a retried final chunk answered
with the object), on /upload/storage/v1 and the discovery document's
/resumable/upload/storage/v1 path, and the metadata-only insert (an empty object).

Must not: store bytes itself (ObjectStore does), or import TensorFlow / deployer.serving.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote, unquote

from deployer.emulator import jsonlimits
from deployer.emulator.context import EmulatorContext
from deployer.emulator.gcsmedia import int_param
from deployer.emulator.gcsresources import (
    base_url,
    object_metadata_from_json,
    object_resource,
    set_properties,
)
from deployer.emulator.http import (
    MULTIPART_MAX_BODY,
    Request,
    Response,
    ServiceError,
    json_response,
)
from deployer.emulator.jsonlimits import request_json
from deployer.emulator.objects import (
    validate_content_type,
    validate_object_name,
)

_CHUNK = 1 << 20
# At most 19 digits: any int64, and never a number too long for int() to convert.
_CONTENT_RANGE = re.compile(
    r"bytes (?:(?P<start>\d{1,19})-(?P<end>\d{1,19})|\*)/(?P<total>\d{1,19}|\*)"
)


def _parse_multipart(req: Request) -> tuple[dict[str, Any], bytes, str]:
    """Split a multipart/related upload into (metadata JSON, media bytes, media content type)."""
    ctype = req.headers.get("content-type", "")
    match = re.search(r'boundary="?([^";]+)"?', ctype)
    if not ctype.startswith("multipart/related") or match is None:
        raise ServiceError(
            400,
            "INVALID_ARGUMENT",
            "uploadType=multipart needs Content-Type multipart/related with a boundary",
        )
    delim = b"--" + match.group(1).encode()
    parts = req.read_body(MULTIPART_MAX_BODY).split(delim)
    # ['', meta-part, media-part, '--\r\n']
    if len(parts) < 4:
        raise ServiceError(
            400, "INVALID_ARGUMENT", "Multipart body must hold a metadata part and a media part"
        )

    def split(part: bytes) -> tuple[dict[str, str], bytes]:
        part = part[2:] if part.startswith(b"\r\n") else part
        head, sep, content = part.partition(b"\r\n\r\n")
        if not sep:
            raise ServiceError(400, "INVALID_ARGUMENT", "Malformed multipart part")
        headers = {}
        for line in head.decode("latin-1").split("\r\n"):
            key, _, value = line.partition(":")
            headers[key.strip().lower()] = value.strip()
        return headers, content[:-2] if content.endswith(b"\r\n") else content

    _, meta_bytes = split(parts[1])
    media_headers, media = split(parts[2])
    try:
        meta = jsonlimits.loads(meta_bytes or b"{}")
    except ValueError as exc:
        raise ServiceError(
            400, "INVALID_ARGUMENT", f"Invalid JSON in multipart metadata: {exc}"
        ) from exc
    return (
        object_metadata_from_json(meta),
        media,
        media_headers.get("content-type", "application/octet-stream"),
    )


class GcsUploads:
    """Upload route handlers over one ObjectStore."""

    def __init__(self, ctx: EmulatorContext) -> None:
        self.ctx = ctx
        self.store = ctx.objects

    def _preconditions(self, req: Request) -> dict[str, Any]:
        return {
            "if_generation_match": int_param(req, "ifGenerationMatch"),
            "if_generation_not_match": int_param(req, "ifGenerationNotMatch"),
            "if_metageneration_match": int_param(req, "ifMetagenerationMatch"),
        }

    def upload(self, req: Request, m: re.Match[str]) -> Response:
        bucket = unquote(m["bucket"])
        kind = req.q("uploadType") or (
            "multipart" if req.headers.get("content-type", "").startswith("multipart/") else "media"
        )
        if req.raw_path.startswith("/resumable/"):  # the discovery document's resumable path
            kind = "resumable"
        base = base_url(req, self.ctx)
        if kind == "media":
            name = req.q("name")
            if not name:
                raise ServiceError(
                    400, "INVALID_ARGUMENT", "uploadType=media needs the name query parameter"
                )
            source = req.stream if req.stream is not None else req.body
            meta = self.store.put(
                bucket,
                name,
                source,
                content_type=req.headers.get("content-type", "application/octet-stream"),
                properties=set_properties(
                    object_metadata_from_json({"contentEncoding": req.q("contentEncoding")})
                ),
                **self._preconditions(req),
            )
            return json_response(object_resource(meta, base))
        if kind == "multipart":
            metadata, media, media_type = _parse_multipart(req)
            name = metadata.get("name") or req.q("name")
            if not name:
                raise ServiceError(
                    400, "INVALID_ARGUMENT", "Multipart upload metadata needs a name"
                )
            meta = self.store.put(
                bucket,
                name,
                media,
                content_type=metadata.get("contentType") or media_type,
                metadata=metadata.get("metadata") or {},
                expected_md5=metadata.get("md5Hash"),
                expected_crc32c=metadata.get("crc32c"),
                properties=set_properties(metadata),
                storage_class=metadata.get("storageClass"),
                **self._preconditions(req),
            )
            return json_response(object_resource(meta, base))
        if kind == "resumable":
            if req.q("upload_id"):
                raise ServiceError(400, "INVALID_ARGUMENT", "Send resumable upload chunks with PUT")
            body = object_metadata_from_json(request_json(req))
            name = body.get("name") or req.q("name")
            if not name:
                raise ServiceError(
                    400, "INVALID_ARGUMENT", "Resumable upload needs the object name"
                )
            validate_object_name(name)  # before it is looked up: the lookup needs text
            spec: dict[str, Any] = {
                "content_type": body.get("contentType")
                or req.headers.get("x-upload-content-type")
                or "application/octet-stream",
                "metadata": body.get("metadata") or {},
                "md5": body.get("md5Hash"),
                "crc32c": body.get("crc32c"),
                "properties": set_properties(body),
                "storage_class": body.get("storageClass"),
                "preconditions": self._preconditions(req),
            }
            validate_content_type(spec["content_type"])  # now, not after the last chunk
            # Fail fast on a precondition that already does not hold, as GCS does.
            current = self.store.stat(bucket, name)
            self.store.require_bucket(bucket)
            self.store._check_preconditions(current, **spec["preconditions"])
            upload_id = self.store.create_upload(bucket, name, spec)
            location = (
                f"{base}/upload/storage/v1/b/{quote(bucket, safe='')}/o"
                f"?uploadType=resumable&upload_id={upload_id}"
            )
            return Response(200, b"", {"Location": location, "X-GUploader-UploadID": upload_id})
        raise ServiceError(400, "INVALID_ARGUMENT", f"Unsupported uploadType: {kind!r}")

    def upload_chunk(self, req: Request, m: re.Match[str]) -> Response:
        """PUT to a resumable session: append a chunk, answer 308 until the last one."""
        upload_id = req.q("upload_id")
        if not upload_id:
            raise ServiceError(
                400,
                "INVALID_ARGUMENT",
                "PUT uploads need an upload_id (start a resumable session first)",
            )
        session = self.store.get_upload(upload_id)
        if session is None:
            raise ServiceError(404, "NOT_FOUND", f"No such upload session: {upload_id}")
        bucket, name, spec = session
        if spec.get("result"):
            return json_response(spec["result"])  # already complete: a retry after a lost reply
        path = self.store.upload_path(upload_id)
        received = path.stat().st_size if path.exists() else 0
        content_range = req.headers.get("content-range", "").strip()
        start, total = received, None
        if content_range:
            cr = _CONTENT_RANGE.fullmatch(content_range)
            if cr is None:
                raise ServiceError(
                    400, "INVALID_ARGUMENT", f"Malformed Content-Range: {content_range!r}"
                )
            total = None if cr["total"] == "*" else int(cr["total"])
            if cr["start"] is not None:
                start = int(cr["start"])
                if int(cr["end"]) < start:
                    raise ServiceError(
                        400, "INVALID_ARGUMENT", f"Malformed Content-Range: {content_range!r}"
                    )
            if start > received:
                raise ServiceError(
                    400,
                    "INVALID_ARGUMENT",
                    f"Chunk starts at {start} but only {received} bytes were received",
                )
        else:
            total = None  # a single PUT without Content-Range carries the whole object
        skip = received - start  # bytes of this chunk we already hold (a retried chunk)
        source = req.stream
        with open(path, "ab") as out:
            if source is not None:
                while True:
                    data = source.read(_CHUNK)
                    if not data:
                        break
                    if skip:
                        cut = min(skip, len(data))
                        data, skip = data[cut:], skip - cut
                    out.write(data)
            else:
                out.write(req.body[skip:])
        received = path.stat().st_size
        if not content_range:
            total = received
        if total is None or received < total:
            headers = {"X-GUploader-UploadID": upload_id}
            if received:
                headers["Range"] = f"bytes=0-{received - 1}"
            return Response(308, b"", headers)
        if received > total:
            raise ServiceError(
                400,
                "INVALID_ARGUMENT",
                f"Received {received} bytes, more than the declared {total}",
            )
        meta = self.store.put(
            bucket,
            name,
            path,
            content_type=spec["content_type"],
            metadata=spec["metadata"],
            expected_md5=spec.get("md5"),
            expected_crc32c=spec.get("crc32c"),
            take_file=True,
            properties=spec.get("properties"),
            storage_class=spec.get("storage_class"),
            **spec["preconditions"],
        )
        resource = object_resource(meta, base_url(req, self.ctx))
        self.store.finish_upload(upload_id, resource)
        return json_response(resource)

    def cancel_upload(self, req: Request, m: re.Match[str]) -> Response:
        upload_id = req.q("upload_id")
        if not upload_id or self.store.get_upload(upload_id) is None:
            raise ServiceError(404, "NOT_FOUND", f"No such upload session: {upload_id}")
        self.store.finish_upload(upload_id)
        return Response(499, b"")

    def insert_metadata_only(self, req: Request, m: re.Match[str]) -> Response:
        """objects.insert without media (POST /storage/v1/b/{bucket}/o): an empty object
        with the resource's metadata, as the service creates one."""
        body = object_metadata_from_json(request_json(req))
        name = body.get("name") or req.q("name")
        if not name:
            raise ServiceError(400, "INVALID_ARGUMENT", "objects.insert needs the object name")
        meta = self.store.put(
            unquote(m["bucket"]),
            name,
            b"",
            content_type=body.get("contentType") or "application/octet-stream",
            metadata=body.get("metadata") or {},
            expected_md5=body.get("md5Hash"),
            expected_crc32c=body.get("crc32c"),
            properties=set_properties(body),
            storage_class=body.get("storageClass"),
            **self._preconditions(req),
        )
        return json_response(object_resource(meta, base_url(req, self.ctx)))


__all__ = ["GcsUploads"]
