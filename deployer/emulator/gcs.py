"""The Cloud Storage JSON API subset served by the emulator, as google-cloud-storage speaks it.

Owns the wire format: routes under /storage/v1, /upload/storage/v1 and
/download/storage/v1; bucket insert/get/list/patch/delete; object uploads
(uploadType=media, multipart, resumable incl. chunked with Content-Range and
308), metadata get/patch, media download with Range, list with prefix /
delimiter / pagination, delete, copy / rewrite / compose; preconditions; GCS's
JSON resources (int64 fields as strings, md5Hash / crc32c in base64) and the
x-goog-hash header the client verifies downloads with.

Must not: store anything itself (ObjectStore does, atomically), or import
TensorFlow / deployer.serving.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, unquote

from deployer.emulator import jsonlimits
from deployer.emulator.context import EmulatorContext, project_number
from deployer.emulator.http import Request, Response, Router, ServiceError, json_response
from deployer.emulator.jsonlimits import request_json
from deployer.emulator.objects import ObjectMeta, validate_content_type, validate_object_name

_B = r"(?P<bucket>[^/]+)"
_O = r"(?P<object>[^/]+)"
_API = r"/storage/v1"
_CHUNK = 1 << 20
_PRECONDITIONS = (
    "ifGenerationMatch",
    "ifGenerationNotMatch",
    "ifMetagenerationMatch",
    "ifMetagenerationNotMatch",
)
# At most 19 digits: any int64, and never a number too long for int() to convert.
_CONTENT_RANGE = re.compile(
    r"bytes (?:(?P<start>\d{1,19})-(?P<end>\d{1,19})|\*)/(?P<total>\d{1,19}|\*)"
)
# Text fields of an object resource a request may set (each a string when present).
_TEXT_FIELDS = ("name", "contentType", "md5Hash", "crc32c")


def _int_param(req: Request, name: str) -> int | None:
    value = req.q(name)
    if value in (None, ""):
        return None
    try:
        return int(value)
    except ValueError:
        raise ServiceError(
            400, "INVALID_ARGUMENT", f"Invalid value for {name}: {value!r}"
        ) from None


def _max_results(req: Request) -> int:
    """maxResults as GCS takes it: absent or 0 means the default (1,000); negative is 400."""
    value = _int_param(req, "maxResults")
    if value is not None and value < 0:
        raise ServiceError(
            400, "INVALID_ARGUMENT", f"Invalid value for maxResults: {value} (must be >= 0)"
        )
    return min(value or 1000, 1000)


def _base(req: Request, ctx: EmulatorContext) -> str:
    host = req.headers.get("host")
    return f"http://{host}" if host else ctx.base_url


def object_resource(meta: ObjectMeta, base: str) -> dict[str, Any]:
    """GCS's storage#object JSON (int64 fields as strings, as the real API sends them)."""
    quoted = quote(meta.name, safe="")
    resource: dict[str, Any] = {
        "kind": "storage#object",
        "id": f"{meta.bucket}/{meta.name}/{meta.generation}",
        "selfLink": f"{base}/storage/v1/b/{meta.bucket}/o/{quoted}",
        "mediaLink": (
            f"{base}/download/storage/v1/b/{meta.bucket}/o/{quoted}"
            f"?generation={meta.generation}&alt=media"
        ),
        "name": meta.name,
        "bucket": meta.bucket,
        "generation": str(meta.generation),
        "metageneration": str(meta.metageneration),
        "contentType": meta.content_type,
        "storageClass": "STANDARD",
        "size": str(meta.size),
        "md5Hash": meta.md5_hash,
        "crc32c": meta.crc32c,
        "etag": f"{meta.md5_hash[:10]}{meta.generation % 100000}",
        "timeCreated": meta.time_created,
        "updated": meta.updated,
        "timeStorageClassUpdated": meta.time_created,
    }
    if meta.metadata:
        resource["metadata"] = dict(meta.metadata)
    return resource


def bucket_resource(bucket: dict[str, Any], base: str) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "kind": "storage#bucket",
        "id": bucket["name"],
        "selfLink": f"{base}/storage/v1/b/{bucket['name']}",
        # The project's stable number (context.project_number); "0" only for a bucket
        # created without ?project= (buckets made before the emulator kept the project).
        "projectNumber": project_number(bucket["project"]) if bucket.get("project") else "0",
        "name": bucket["name"],
        "timeCreated": bucket["time_created"],
        "updated": bucket["updated"],
        "metageneration": str(bucket["metageneration"]),
        "location": bucket["location"],
        "locationType": "multi-region" if bucket["location"] in ("US", "EU", "ASIA") else "region",
        "storageClass": bucket["storage_class"],
        "etag": f"CA{bucket['metageneration']}",
        "iamConfiguration": {
            "uniformBucketLevelAccess": {"enabled": True},
            "publicAccessPrevention": "inherited",
        },
    }
    if bucket["labels"]:
        resource["labels"] = dict(bucket["labels"])
    return resource


def _object_metadata_from_json(body: Any) -> dict[str, Any]:
    """A request's object resource, checked for the field types the store relies on."""
    if not isinstance(body, dict):
        raise ServiceError(400, "INVALID_ARGUMENT", "Object metadata must be a JSON object")
    for key in _TEXT_FIELDS:
        if body.get(key) is not None and not isinstance(body[key], str):
            raise ServiceError(
                400, "INVALID_ARGUMENT", f"{key} must be a string, not {body[key]!r}"
            )
    if body.get("name") is not None:
        validate_object_name(body["name"])
    if body.get("contentType") is not None:
        validate_content_type(body["contentType"])
    metadata = body.get("metadata") or {}
    if not isinstance(metadata, dict) or any(
        isinstance(v, (dict, list)) for v in metadata.values()
    ):
        raise ServiceError(400, "INVALID_ARGUMENT", "metadata must be an object of string values")
    return body


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
    parts = req.read_body().split(delim)
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
        _object_metadata_from_json(meta),
        media,
        media_headers.get("content-type", "application/octet-stream"),
    )


class GcsApi:
    """Route handlers of the GCS JSON API over one ObjectStore."""

    def __init__(self, ctx: EmulatorContext) -> None:
        self.ctx = ctx
        self.store = ctx.objects

    # ---- buckets ------------------------------------------------------------------

    def insert_bucket(self, req: Request, m: re.Match[str]) -> Response:
        body = request_json(req)
        if not isinstance(body, dict) or not body.get("name"):
            raise ServiceError(400, "INVALID_ARGUMENT", "Bucket resource needs a name")
        labels = body.get("labels") or {}
        if not isinstance(labels, dict):
            raise ServiceError(400, "INVALID_ARGUMENT", "labels must be an object")
        created = self.store.create_bucket(
            body["name"],
            location=str(body.get("location") or "US"),
            labels=labels,
            storage_class=str(body.get("storageClass") or "STANDARD"),
            project=req.q("project"),
        )
        return json_response(bucket_resource(created, _base(req, self.ctx)))

    def get_bucket(self, req: Request, m: re.Match[str]) -> Response:
        bucket = self.store.require_bucket(unquote(m["bucket"]))
        return json_response(bucket_resource(bucket, _base(req, self.ctx)))

    def patch_bucket(self, req: Request, m: re.Match[str]) -> Response:
        body = request_json(req)
        if not isinstance(body, dict):
            raise ServiceError(400, "INVALID_ARGUMENT", "Bucket patch must be a JSON object")
        labels = body.get("labels")
        if labels is not None and not isinstance(labels, dict):
            raise ServiceError(400, "INVALID_ARGUMENT", "labels must be an object")
        if req.method == "PUT" and labels is not None:
            current = self.store.require_bucket(unquote(m["bucket"]))["labels"]
            labels = {**dict.fromkeys(current), **labels}
        bucket = self.store.update_bucket(unquote(m["bucket"]), labels=labels)
        return json_response(bucket_resource(bucket, _base(req, self.ctx)))

    def list_buckets(self, req: Request, m: re.Match[str]) -> Response:
        buckets = self.store.list_buckets(req.q("prefix") or "")
        start = req.q("pageToken") or ""
        buckets = [b for b in buckets if b["name"] > start] if start else buckets
        limit = _max_results(req)
        page, rest = buckets[:limit], buckets[limit:]
        out: dict[str, Any] = {
            "kind": "storage#buckets",
            "items": [bucket_resource(b, _base(req, self.ctx)) for b in page],
        }
        if rest:
            out["nextPageToken"] = page[-1]["name"]
        return json_response(out)

    def delete_bucket(self, req: Request, m: re.Match[str]) -> Response:
        self.store.delete_bucket(unquote(m["bucket"]))
        return Response(204)

    # ---- object reads -------------------------------------------------------------

    def get_object(self, req: Request, m: re.Match[str]) -> Response:
        bucket, name = unquote(m["bucket"]), unquote(m["object"])
        if req.q("alt") == "media" or m.re.pattern.startswith("/download"):
            return self._download(req, bucket, name)
        meta = self.store.require(bucket, name)
        self._check_read_preconditions(req, meta)
        return json_response(object_resource(meta, _base(req, self.ctx)))

    def _check_read_preconditions(self, req: Request, meta: ObjectMeta) -> None:
        generation = _int_param(req, "generation")
        if generation is not None and generation != meta.generation:
            # Only live generations are kept.
            raise ServiceError(
                404, "NOT_FOUND", f"No such object: {meta.bucket}/{meta.name}#{generation}"
            )
        checks = {k: _int_param(req, k) for k in _PRECONDITIONS}
        failed = (
            (
                checks["ifGenerationMatch"] is not None
                and checks["ifGenerationMatch"] != meta.generation
            )
            or (
                checks["ifMetagenerationMatch"] is not None
                and checks["ifMetagenerationMatch"] != meta.metageneration
            )
            or (
                checks["ifMetagenerationNotMatch"] is not None
                and checks["ifMetagenerationNotMatch"] == meta.metageneration
            )
        )
        if failed:
            raise ServiceError(
                412,
                "FAILED_PRECONDITION",
                "At least one of the pre-conditions you specified did not hold.",
            )
        if (
            checks["ifGenerationNotMatch"] is not None
            and checks["ifGenerationNotMatch"] == meta.generation
        ):
            raise ServiceError(304, "FAILED_PRECONDITION", "Not modified")

    def _download(self, req: Request, bucket: str, name: str) -> Response:
        meta, handle = self.store.open_with_meta(bucket, name)
        try:
            self._check_read_preconditions(req, meta)
            start, end, status = 0, meta.size - 1, 200
            headers = {
                "Content-Type": meta.content_type,
                "x-goog-generation": str(meta.generation),
                "x-goog-metageneration": str(meta.metageneration),
                "x-goog-stored-content-length": str(meta.size),
                "x-goog-stored-content-encoding": "identity",
                "x-goog-storage-class": "STANDARD",
                "ETag": f'"{meta.md5_hash}"',
                "Accept-Ranges": "bytes",
            }
            range_header = req.headers.get("range", "").strip()
            if range_header and meta.size > 0:
                start, end = _parse_range(range_header, meta.size)
                status = 206
                headers["Content-Range"] = f"bytes {start}-{end}/{meta.size}"
            if status == 200:
                # The client verifies whole downloads against these.
                headers["x-goog-hash"] = f"crc32c={meta.crc32c},md5={meta.md5_hash}"
            length = max(0, end - start + 1)
            headers["Content-Length"] = str(length)
        except BaseException:
            handle.close()
            raise
        if req.method == "HEAD":
            handle.close()
            return Response(status, b"", headers)
        return Response(
            status, _stream_range(handle, start, length), headers, on_close=handle.close
        )

    def list_objects(self, req: Request, m: re.Match[str]) -> Response:
        bucket = unquote(m["bucket"])
        page = self.store.list_page(
            bucket,
            prefix=req.q("prefix") or "",
            delimiter=req.q("delimiter") or None,
            page_token=req.q("pageToken") or None,
            max_results=_max_results(req),
            start_offset=req.q("startOffset") or None,
            end_offset=req.q("endOffset") or None,
            include_trailing_delimiter=(req.q("includeTrailingDelimiter") or "").lower() == "true",
        )
        base = _base(req, self.ctx)
        out: dict[str, Any] = {"kind": "storage#objects"}
        if page.items:
            out["items"] = [object_resource(o, base) for o in page.items]
        if page.prefixes:
            out["prefixes"] = page.prefixes
        if page.next_page_token:
            out["nextPageToken"] = page.next_page_token
        return json_response(out)

    # ---- object writes ------------------------------------------------------------

    def _preconditions(self, req: Request) -> dict[str, Any]:
        return {
            "if_generation_match": _int_param(req, "ifGenerationMatch"),
            "if_generation_not_match": _int_param(req, "ifGenerationNotMatch"),
            "if_metageneration_match": _int_param(req, "ifMetagenerationMatch"),
        }

    def upload(self, req: Request, m: re.Match[str]) -> Response:
        bucket = unquote(m["bucket"])
        kind = req.q("uploadType") or (
            "multipart" if req.headers.get("content-type", "").startswith("multipart/") else "media"
        )
        base = _base(req, self.ctx)
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
                **self._preconditions(req),
            )
            return json_response(object_resource(meta, base))
        if kind == "resumable":
            if req.q("upload_id"):
                raise ServiceError(400, "INVALID_ARGUMENT", "Send resumable upload chunks with PUT")
            body = _object_metadata_from_json(request_json(req))
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
            **spec["preconditions"],
        )
        resource = object_resource(meta, _base(req, self.ctx))
        self.store.finish_upload(upload_id, resource)
        return json_response(resource)

    def cancel_upload(self, req: Request, m: re.Match[str]) -> Response:
        upload_id = req.q("upload_id")
        if not upload_id or self.store.get_upload(upload_id) is None:
            raise ServiceError(404, "NOT_FOUND", f"No such upload session: {upload_id}")
        self.store.finish_upload(upload_id)
        return Response(499, b"")

    def patch_object(self, req: Request, m: re.Match[str]) -> Response:
        body = _object_metadata_from_json(request_json(req))
        meta = self.store.update_metadata(
            unquote(m["bucket"]),
            unquote(m["object"]),
            metadata=body.get("metadata"),
            content_type=body.get("contentType"),
            replace=req.method == "PUT",
            if_generation_match=_int_param(req, "ifGenerationMatch"),
            if_metageneration_match=_int_param(req, "ifMetagenerationMatch"),
        )
        return json_response(object_resource(meta, _base(req, self.ctx)))

    def delete_object(self, req: Request, m: re.Match[str]) -> Response:
        bucket, name = unquote(m["bucket"]), unquote(m["object"])
        generation = _int_param(req, "generation")
        if generation is not None:
            meta = self.store.require(bucket, name)
            if meta.generation != generation:
                raise ServiceError(
                    404, "NOT_FOUND", f"No such object: {bucket}/{name}#{generation}"
                )
        self.store.delete(
            bucket,
            name,
            if_generation_match=_int_param(req, "ifGenerationMatch"),
            if_metageneration_match=_int_param(req, "ifMetagenerationMatch"),
        )
        return Response(204)

    def copy_object(self, req: Request, m: re.Match[str]) -> Response:
        body = _object_metadata_from_json(request_json(req))
        meta = self.store.copy(
            unquote(m["bucket"]),
            unquote(m["object"]),
            unquote(m["dbucket"]),
            unquote(m["dobject"]),
            content_type=body.get("contentType"),
            metadata=body.get("metadata"),
            if_generation_match=_int_param(req, "ifGenerationMatch"),
            if_source_generation_match=_int_param(req, "ifSourceGenerationMatch"),
        )
        resource = object_resource(meta, _base(req, self.ctx))
        if "/rewriteTo/" in req.raw_path:
            return json_response(
                {
                    "kind": "storage#rewriteResponse",
                    "totalBytesRewritten": resource["size"],
                    "objectSize": resource["size"],
                    "done": True,
                    "resource": resource,
                }
            )
        return json_response(resource)

    def compose_object(self, req: Request, m: re.Match[str]) -> Response:
        body = request_json(req)
        if not isinstance(body, dict) or not isinstance(body.get("sourceObjects"), list):
            raise ServiceError(400, "INVALID_ARGUMENT", "compose needs sourceObjects")
        sources = []
        for src in body["sourceObjects"]:
            if not isinstance(src, dict) or not src.get("name"):
                raise ServiceError(400, "INVALID_ARGUMENT", "each source object needs a name")
            sources.append(str(src["name"]))
        dest = _object_metadata_from_json(body.get("destination") or {})
        meta = self.store.compose(
            unquote(m["bucket"]),
            sources,
            unquote(m["object"]),
            content_type=dest.get("contentType"),
            metadata=dest.get("metadata"),
            if_generation_match=_int_param(req, "ifGenerationMatch"),
        )
        return json_response(object_resource(meta, _base(req, self.ctx)))


def _parse_range(header: str, size: int) -> tuple[int, int]:
    match = re.fullmatch(r"bytes=(\d{0,19})-(\d{0,19})", header.replace(" ", ""))
    if match is None or (not match[1] and not match[2]):
        raise ServiceError(416, "OUT_OF_RANGE", f"Malformed Range header: {header!r}")
    if not match[1]:  # suffix: the last N bytes
        n = int(match[2])
        return max(0, size - n), size - 1
    start = int(match[1])
    end = int(match[2]) if match[2] else size - 1
    if start >= size > 0 or end < start:
        raise ServiceError(
            416, "OUT_OF_RANGE", f"Request range not satisfiable: {header!r} for {size} bytes"
        )
    return start, min(end, size - 1)


def _stream_range(handle: Any, start: int, length: int) -> Iterator[bytes]:
    handle.seek(start)
    left = length
    while left > 0:
        data = handle.read(min(_CHUNK, left))
        if not data:
            break
        left -= len(data)
        yield data


def register(router: Router, ctx: EmulatorContext) -> None:
    """Register the GCS JSON API routes (raw-path matching: object names carry encoded '/')."""
    api = GcsApi(ctx)
    add = router.add
    bo = f"{_API}/b/{_B}/o/{_O}"
    add(
        "POST",
        rf"{_API}/b",
        api.insert_bucket,
        name="storage.buckets.insert",
        mutating=True,
        raw=True,
    )
    add(
        "GET", rf"{_API}/b", api.list_buckets, name="storage.buckets.list", mutating=False, raw=True
    )
    add(
        "GET",
        rf"{_API}/b/{_B}",
        api.get_bucket,
        name="storage.buckets.get",
        mutating=False,
        raw=True,
    )
    add(
        "PATCH",
        rf"{_API}/b/{_B}",
        api.patch_bucket,
        name="storage.buckets.patch",
        mutating=True,
        raw=True,
    )
    add(
        "PUT",
        rf"{_API}/b/{_B}",
        api.patch_bucket,
        name="storage.buckets.update",
        mutating=True,
        raw=True,
    )
    add(
        "DELETE",
        rf"{_API}/b/{_B}",
        api.delete_bucket,
        name="storage.buckets.delete",
        mutating=True,
        raw=True,
    )
    add(
        "GET",
        rf"{_API}/b/{_B}/o",
        api.list_objects,
        name="storage.objects.list",
        mutating=False,
        raw=True,
    )
    add(
        "POST",
        rf"/upload{_API}/b/{_B}/o",
        api.upload,
        name="storage.objects.insert",
        mutating=True,
        raw=True,
        streaming=True,
    )
    add(
        "PUT",
        rf"/upload{_API}/b/{_B}/o",
        api.upload_chunk,
        name="storage.objects.insert",
        mutating=True,
        raw=True,
        streaming=True,
    )
    add(
        "DELETE",
        rf"/upload{_API}/b/{_B}/o",
        api.cancel_upload,
        name="storage.objects.insert",
        mutating=True,
        raw=True,
    )
    copy = rf"{bo}/(?:copyTo|rewriteTo)/b/(?P<dbucket>[^/]+)/o/(?P<dobject>[^/]+)"
    add("POST", copy, api.copy_object, name="storage.objects.copy", mutating=True, raw=True)
    add(
        "POST",
        rf"{bo}/compose",
        api.compose_object,
        name="storage.objects.compose",
        mutating=True,
        raw=True,
    )
    add("GET", bo, api.get_object, name="storage.objects.get", mutating=False, raw=True)
    add("HEAD", bo, api.get_object, name="storage.objects.get", mutating=False, raw=True)
    add(
        "GET",
        rf"/download{bo}",
        api.get_object,
        name="storage.objects.get",
        mutating=False,
        raw=True,
    )
    add(
        "HEAD",
        rf"/download{bo}",
        api.get_object,
        name="storage.objects.get",
        mutating=False,
        raw=True,
    )
    add("PATCH", bo, api.patch_object, name="storage.objects.patch", mutating=True, raw=True)
    add("PUT", bo, api.patch_object, name="storage.objects.update", mutating=True, raw=True)
    add("DELETE", bo, api.delete_object, name="storage.objects.delete", mutating=True, raw=True)


__all__ = ["GcsApi", "bucket_resource", "object_resource", "register"]
