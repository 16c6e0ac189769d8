"""The Cloud Storage JSON API subset served by the emulator, as google-cloud-storage speaks it.

Owns the wire format: routes under /storage/v1, /upload/storage/v1 and
/download/storage/v1; bucket insert/get/list/patch/delete; object uploads
(uploadType=media, multipart, resumable incl. chunked with Content-Range and
308), metadata get/patch, media download with Range, list with prefix /
delimiter / pagination, delete, copy / rewrite / compose; preconditions; GCS's
JSON resources (int64 fields as strings, md5Hash / crc32c in base64) and the
x-goog-hash header the client verifies downloads with; object properties
(contentEncoding, cacheControl, contentLanguage, contentDisposition, customTime,
storageClass), bucket versioning (versions=true listings, get / delete by
generation), matchGlob, the metadata-only insert and the /resumable/upload path.
Reads (preconditions, ETag, download, transcoding) are `gcsmedia.py`'s.

Must not: store anything itself (ObjectStore does, atomically), or import
TensorFlow / deployer.serving.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from datetime import datetime
from typing import Any
from urllib.parse import quote, unquote

from deployer.emulator import jsonlimits
from deployer.emulator.context import EmulatorContext, project_number
from deployer.emulator.gcsmedia import check_read_preconditions, download, object_etag
from deployer.emulator.gcsmedia import int_param as _int_param
from deployer.emulator.http import ApiError, Handler, Request, Response, Router, json_response
from deployer.emulator.jsonlimits import request_json
from deployer.emulator.objects import (
    OBJECT_PROPERTIES,
    ObjectMeta,
    rfc3339,
    validate_content_type,
    validate_object_name,
)

_B = r"(?P<bucket>[^/]+)"
_O = r"(?P<object>[^/]+)"
_API = r"/storage/v1"
_CHUNK = 1 << 20
# At most 19 digits: any int64, and never a number too long for int() to convert.
_CONTENT_RANGE = re.compile(
    r"bytes (?:(?P<start>\d{1,19})-(?P<end>\d{1,19})|\*)/(?P<total>\d{1,19}|\*)"
)
# Text fields of an object resource a request may set (each a string when present).
_TEXT_FIELDS = ("name", "contentType", "md5Hash", "crc32c", "storageClass", *OBJECT_PROPERTIES)
_STORAGE_CLASSES = frozenset(
    (
        "STANDARD",
        "NEARLINE",
        "COLDLINE",
        "ARCHIVE",
        "MULTI_REGIONAL",
        "REGIONAL",
        "DURABLE_REDUCED_AVAILABILITY",
    )
)


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
        "storageClass": meta.storage_class,
        "size": str(meta.size),
        "md5Hash": meta.md5_hash,
        "crc32c": meta.crc32c,
        "etag": object_etag(meta),
        "timeCreated": meta.time_created,
        "updated": meta.updated,
        "timeStorageClassUpdated": meta.time_created,
        **meta.properties,
    }
    if meta.content_type:  # none when a compose gave none: GCS invents no default
        resource["contentType"] = meta.content_type
    if meta.time_deleted:
        resource["timeDeleted"] = meta.time_deleted
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
    if bucket["versioning"]:
        resource["versioning"] = {"enabled": True}
    return resource


def _versioning(body: dict[str, Any]) -> bool | None:
    """A bucket resource's versioning.enabled (None when absent); 400 unless a boolean."""
    versioning = body.get("versioning")
    if versioning is None:
        return None
    enabled = versioning.get("enabled", False) if isinstance(versioning, dict) else None
    if not isinstance(enabled, bool):
        raise ApiError(400, "INVALID_ARGUMENT", 'versioning must be {"enabled": true|false}')
    return enabled


def _properties(body: dict[str, Any]) -> dict[str, Any]:
    """The OBJECT_PROPERTIES a request's object resource names (a null value kept: patch
    removes it), checked already by `_object_metadata_from_json`."""
    return {key: body[key] for key in OBJECT_PROPERTIES if key in body}


def _set_properties(body: dict[str, Any]) -> dict[str, str]:
    return {k: v for k, v in _properties(body).items() if v is not None}


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
    for key in OBJECT_PROPERTIES:
        if body.get(key) is not None:
            # Sent back as response headers (Cache-Control, ...): no CR/LF smuggling.
            try:
                validate_content_type(body[key])
            except ApiError:
                raise ApiError(400, "INVALID_ARGUMENT", f"Invalid {key}: {body[key]!r}") from None
    if body.get("customTime") is not None:
        try:
            datetime.fromisoformat(body["customTime"].replace("Z", "+00:00"))
        except ValueError:
            raise ApiError(
                400,
                "INVALID_ARGUMENT",
                f"Invalid customTime {body['customTime']!r}: expected an RFC 3339 timestamp",
            ) from None
    if body.get("storageClass") is not None and body["storageClass"] not in _STORAGE_CLASSES:
        raise ApiError(400, "INVALID_ARGUMENT", f"Invalid storageClass: {body['storageClass']!r}")
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
        # bulkRestore's operations (kept in memory: they are done when created).
        self._operations: dict[tuple[str, str], dict[str, Any]] = {}
        self._ops_lock = threading.Lock()

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
            versioning=bool(_versioning(body)),
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
        bucket = self.store.update_bucket(
            unquote(m["bucket"]), labels=labels, versioning=_versioning(body)
        )
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
            return download(req, self.store, bucket, name)
        meta = self.store.stat_generation(bucket, name, _int_param(req, "generation"))
        check_read_preconditions(req, meta)
        return json_response(object_resource(meta, _base(req, self.ctx)))

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
            versions=(req.q("versions") or "").lower() == "true",
            match_glob=req.q("matchGlob") or None,
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
        if req.raw_path.startswith("/resumable/"):  # the discovery document's resumable path
            kind = "resumable"
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
                properties=_set_properties(
                    _object_metadata_from_json({"contentEncoding": req.q("contentEncoding")})
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
                properties=_set_properties(metadata),
                storage_class=metadata.get("storageClass"),
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
                "properties": _set_properties(body),
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
        resource = object_resource(meta, _base(req, self.ctx))
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
        body = _object_metadata_from_json(request_json(req))
        name = body.get("name") or req.q("name")
        if not name:
            raise ApiError(400, "INVALID_ARGUMENT", "objects.insert needs the object name")
        meta = self.store.put(
            unquote(m["bucket"]),
            name,
            b"",
            content_type=body.get("contentType") or "application/octet-stream",
            metadata=body.get("metadata") or {},
            expected_md5=body.get("md5Hash"),
            expected_crc32c=body.get("crc32c"),
            properties=_set_properties(body),
            storage_class=body.get("storageClass"),
            **self._preconditions(req),
        )
        return json_response(object_resource(meta, _base(req, self.ctx)))

    def patch_object(self, req: Request, m: re.Match[str]) -> Response:
        body = _object_metadata_from_json(request_json(req))
        meta = self.store.update_metadata(
            unquote(m["bucket"]),
            unquote(m["object"]),
            metadata=body.get("metadata"),
            content_type=body.get("contentType"),
            properties=_properties(body),
            replace=req.method == "PUT",
            if_generation_match=_int_param(req, "ifGenerationMatch"),
            if_metageneration_match=_int_param(req, "ifMetagenerationMatch"),
        )
        return json_response(object_resource(meta, _base(req, self.ctx)))

    def delete_object(self, req: Request, m: re.Match[str]) -> Response:
        self.store.delete(
            unquote(m["bucket"]),
            unquote(m["object"]),
            generation=_int_param(req, "generation"),
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
            properties=_set_properties(body),
            storage_class=body.get("storageClass"),  # rewrite's way of changing the class
            source_generation=_int_param(req, "sourceGeneration"),
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
                raise ApiError(400, "INVALID_ARGUMENT", "each source object needs a name")
            conditions = src.get("objectPreconditions") or {}
            if not isinstance(conditions, dict):
                raise ApiError(400, "INVALID_ARGUMENT", "objectPreconditions must be an object")
            sources.append(
                (
                    str(src["name"]),
                    _int_field(src, "generation"),
                    _int_field(conditions, "ifGenerationMatch"),
                )
            )
        dest = _object_metadata_from_json(body.get("destination") or {})
        meta = self.store.compose(
            unquote(m["bucket"]),
            sources,
            unquote(m["object"]),
            content_type=dest.get("contentType"),
            metadata=dest.get("metadata"),
            properties=_set_properties(dest),
            if_generation_match=_int_param(req, "ifGenerationMatch"),
        )
        return json_response(object_resource(meta, _base(req, self.ctx)))

    # ---- bulkRestore and its operations -------------------------------------------

    def bulk_restore(self, req: Request, m: re.Match[str]) -> Response:
        """objects.bulkRestore: restores soft-deleted objects. The emulator keeps none (soft
        delete is not emulated: a delete is final, as in a bucket whose soft-delete retention
        is 0), so the operation completes at once having restored nothing."""
        bucket = unquote(m["bucket"])
        self.store.require_bucket(bucket)
        body = request_json(req)
        if not isinstance(body, dict):
            raise ApiError(400, "INVALID_ARGUMENT", "BulkRestoreObjectsRequest must be an object")
        globs = body.get("matchGlobs") or []
        if not isinstance(globs, list) or not all(isinstance(g, str) for g in globs):
            raise ApiError(400, "INVALID_ARGUMENT", "matchGlobs must be a list of strings")
        now = rfc3339(time.time())
        op_id = uuid.uuid4().hex
        operation = {
            "kind": "storage#operation",
            "name": f"projects/_/buckets/{bucket}/operations/{op_id}",
            "done": True,
            "metadata": {
                "@type": "type.googleapis.com/google.storage.v2.BulkRestoreObjectsMetadata",
                "commonMetadata": {
                    "type": "bulk-restore-objects",
                    "createTime": now,
                    "updateTime": now,
                    "endTime": now,
                    "progressPercent": 100,
                    "requestedCancellation": False,
                },
            },
            "response": {"@type": "type.googleapis.com/google.protobuf.Empty"},
        }
        with self._ops_lock:
            self._operations[(bucket, op_id)] = operation
        return json_response(operation)

    def get_operation(self, req: Request, m: re.Match[str]) -> Response:
        bucket, op_id = unquote(m["bucket"]), unquote(m["op"])
        self.store.require_bucket(bucket)
        with self._ops_lock:
            operation = self._operations.get((bucket, op_id))
        if operation is None:
            raise ApiError(404, "NOT_FOUND", f"No such operation: {bucket}/operations/{op_id}")
        return json_response(operation)

    def list_operations(self, req: Request, m: re.Match[str]) -> Response:
        bucket = unquote(m["bucket"])
        self.store.require_bucket(bucket)
        with self._ops_lock:
            found = [op for (b, _), op in self._operations.items() if b == bucket]
        out: dict[str, Any] = {"kind": "storage#operations"}
        if found:
            out["operations"] = found
        return json_response(out)


def _int_field(body: dict[str, Any], key: str) -> int | None:
    """An int64 JSON field (a string or number on the wire); 400 for anything else."""
    value = body.get(key)
    if value is None:
        return None
    try:
        if isinstance(value, bool):
            raise ValueError(value)
        return int(value)
    except (TypeError, ValueError):
        raise ApiError(400, "INVALID_ARGUMENT", f"Invalid value for {key}: {value!r}") from None


def register(router: Router, ctx: EmulatorContext) -> None:
    """Register the GCS JSON API routes (raw-path matching: object names carry encoded '/')."""
    api = GcsApi(ctx)
    bo = f"{_API}/b/{_B}/o/{_O}"
    dest = r"/b/(?P<dbucket>[^/]+)/o/(?P<dobject>[^/]+)"
    uploads = (rf"/upload{_API}/b/{_B}/o", rf"/resumable/upload{_API}/b/{_B}/o")
    ops = rf"{_API}/b/{_B}/operations"
    routes: list[tuple[str, str, Handler, str, bool]] = [
        # (HTTP method, path regex, handler, API method, mutating)
        ("POST", rf"{_API}/b", api.insert_bucket, "storage.buckets.insert", True),
        ("GET", rf"{_API}/b", api.list_buckets, "storage.buckets.list", False),
        ("GET", rf"{_API}/b/{_B}", api.get_bucket, "storage.buckets.get", False),
        ("PATCH", rf"{_API}/b/{_B}", api.patch_bucket, "storage.buckets.patch", True),
        ("PUT", rf"{_API}/b/{_B}", api.patch_bucket, "storage.buckets.update", True),
        ("DELETE", rf"{_API}/b/{_B}", api.delete_bucket, "storage.buckets.delete", True),
        (
            "GET",
            rf"{ops}/(?P<op>[^/]+)",
            api.get_operation,
            "storage.buckets.operations.get",
            False,
        ),
        ("GET", ops, api.list_operations, "storage.buckets.operations.list", False),
        ("GET", rf"{_API}/b/{_B}/o", api.list_objects, "storage.objects.list", False),
        ("POST", rf"{_API}/b/{_B}/o", api.insert_metadata_only, "storage.objects.insert", True),
        (
            "POST",
            rf"{_API}/b/{_B}/o/bulkRestore",
            api.bulk_restore,
            "storage.objects.bulkRestore",
            True,
        ),
        ("POST", rf"{bo}/copyTo{dest}", api.copy_object, "storage.objects.copy", True),
        ("POST", rf"{bo}/rewriteTo{dest}", api.copy_object, "storage.objects.rewrite", True),
        ("POST", rf"{bo}/compose", api.compose_object, "storage.objects.compose", True),
        ("GET", bo, api.get_object, "storage.objects.get", False),
        ("HEAD", bo, api.get_object, "storage.objects.get", False),
        ("GET", rf"/download{bo}", api.get_object, "storage.objects.get", False),
        ("HEAD", rf"/download{bo}", api.get_object, "storage.objects.get", False),
        ("PATCH", bo, api.patch_object, "storage.objects.patch", True),
        ("PUT", bo, api.patch_object, "storage.objects.update", True),
        ("DELETE", bo, api.delete_object, "storage.objects.delete", True),
    ]
    for upload in uploads:
        routes += [
            ("POST", upload, api.upload, "storage.objects.insert", True),
            ("PUT", upload, api.upload_chunk, "storage.objects.insert", True),
            ("DELETE", upload, api.cancel_upload, "storage.objects.insert", True),
        ]
    for method, pattern, handler, name, mutating in routes:
        streaming = handler in (api.upload, api.upload_chunk)
        router.add(
            method, pattern, handler, name=name, mutating=mutating, raw=True, streaming=streaming
        )


__all__ = ["GcsApi", "bucket_resource", "object_resource", "register"]
