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
Reads (preconditions, ETag, download, transcoding) are `gcsmedia.py`'s, uploads
`gcsupload.py`'s, the JSON resources `gcsresources.py`'s.

Must not: store anything itself (ObjectStore does, atomically), or import
TensorFlow / deployer.serving.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from typing import Any
from urllib.parse import unquote

from deployer.emulator.context import EmulatorContext
from deployer.emulator.gcsmedia import check_read_preconditions, download, int_param
from deployer.emulator.gcsresources import (
    base_url,
    bucket_resource,
    int_field,
    max_results,
    object_metadata_from_json,
    object_resource,
    properties_of,
    set_properties,
    versioning_of,
)
from deployer.emulator.gcsupload import GcsUploads
from deployer.emulator.http import Handler, Request, Response, Router, ServiceError, json_response
from deployer.emulator.jsonlimits import request_json
from deployer.emulator.objects import (
    rfc3339,
)

_B = r"(?P<bucket>[^/]+)"
_O = r"(?P<object>[^/]+)"
_API = r"/storage/v1"


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
            versioning=bool(versioning_of(body)),
        )
        return json_response(bucket_resource(created, base_url(req, self.ctx)))

    def get_bucket(self, req: Request, m: re.Match[str]) -> Response:
        bucket = self.store.require_bucket(unquote(m["bucket"]))
        return json_response(bucket_resource(bucket, base_url(req, self.ctx)))

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
            unquote(m["bucket"]), labels=labels, versioning=versioning_of(body)
        )
        return json_response(bucket_resource(bucket, base_url(req, self.ctx)))

    def list_buckets(self, req: Request, m: re.Match[str]) -> Response:
        buckets = self.store.list_buckets(req.q("prefix") or "")
        start = req.q("pageToken") or ""
        buckets = [b for b in buckets if b["name"] > start] if start else buckets
        limit = max_results(req)
        page, rest = buckets[:limit], buckets[limit:]
        out: dict[str, Any] = {
            "kind": "storage#buckets",
            "items": [bucket_resource(b, base_url(req, self.ctx)) for b in page],
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
        meta = self.store.stat_generation(bucket, name, int_param(req, "generation"))
        check_read_preconditions(req, meta)
        return json_response(object_resource(meta, base_url(req, self.ctx)))

    def list_objects(self, req: Request, m: re.Match[str]) -> Response:
        bucket = unquote(m["bucket"])
        page = self.store.list_page(
            bucket,
            prefix=req.q("prefix") or "",
            delimiter=req.q("delimiter") or None,
            page_token=req.q("pageToken") or None,
            max_results=max_results(req),
            start_offset=req.q("startOffset") or None,
            end_offset=req.q("endOffset") or None,
            include_trailing_delimiter=(req.q("includeTrailingDelimiter") or "").lower() == "true",
            versions=(req.q("versions") or "").lower() == "true",
            match_glob=req.q("matchGlob") or None,
        )
        base = base_url(req, self.ctx)
        out: dict[str, Any] = {"kind": "storage#objects"}
        if page.items:
            out["items"] = [object_resource(o, base) for o in page.items]
        if page.prefixes:
            out["prefixes"] = page.prefixes
        if page.next_page_token:
            out["nextPageToken"] = page.next_page_token
        return json_response(out)

    # ---- object writes ------------------------------------------------------------
    def patch_object(self, req: Request, m: re.Match[str]) -> Response:
        body = object_metadata_from_json(request_json(req))
        meta = self.store.update_metadata(
            unquote(m["bucket"]),
            unquote(m["object"]),
            metadata=body.get("metadata"),
            content_type=body.get("contentType"),
            properties=properties_of(body),
            replace=req.method == "PUT",
            if_generation_match=int_param(req, "ifGenerationMatch"),
            if_metageneration_match=int_param(req, "ifMetagenerationMatch"),
        )
        return json_response(object_resource(meta, base_url(req, self.ctx)))

    def delete_object(self, req: Request, m: re.Match[str]) -> Response:
        self.store.delete(
            unquote(m["bucket"]),
            unquote(m["object"]),
            generation=int_param(req, "generation"),
            if_generation_match=int_param(req, "ifGenerationMatch"),
            if_metageneration_match=int_param(req, "ifMetagenerationMatch"),
        )
        return Response(204)

    def copy_object(self, req: Request, m: re.Match[str]) -> Response:
        body = object_metadata_from_json(request_json(req))
        meta = self.store.copy(
            unquote(m["bucket"]),
            unquote(m["object"]),
            unquote(m["dbucket"]),
            unquote(m["dobject"]),
            content_type=body.get("contentType"),
            metadata=body.get("metadata"),
            properties=set_properties(body),
            storage_class=body.get("storageClass"),  # rewrite's way of changing the class
            source_generation=int_param(req, "sourceGeneration"),
            if_generation_match=int_param(req, "ifGenerationMatch"),
            if_source_generation_match=int_param(req, "ifSourceGenerationMatch"),
        )
        resource = object_resource(meta, base_url(req, self.ctx))
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
            conditions = src.get("objectPreconditions") or {}
            if not isinstance(conditions, dict):
                raise ServiceError(400, "INVALID_ARGUMENT", "objectPreconditions must be an object")
            sources.append(
                (
                    str(src["name"]),
                    int_field(src, "generation"),
                    int_field(conditions, "ifGenerationMatch"),
                )
            )
        dest = object_metadata_from_json(body.get("destination") or {})
        meta = self.store.compose(
            unquote(m["bucket"]),
            sources,
            unquote(m["object"]),
            content_type=dest.get("contentType"),
            metadata=dest.get("metadata"),
            properties=set_properties(dest),
            if_generation_match=int_param(req, "ifGenerationMatch"),
        )
        return json_response(object_resource(meta, base_url(req, self.ctx)))

    # ---- bulkRestore and its operations -------------------------------------------

    def bulk_restore(self, req: Request, m: re.Match[str]) -> Response:
        """objects.bulkRestore: restores soft-deleted objects. The emulator keeps none (soft
        delete is not emulated: a delete is final, as in a bucket whose soft-delete retention
        is 0), so the operation completes at once having restored nothing."""
        bucket = unquote(m["bucket"])
        self.store.require_bucket(bucket)
        body = request_json(req)
        if not isinstance(body, dict):
            raise ServiceError(
                400, "INVALID_ARGUMENT", "BulkRestoreObjectsRequest must be an object"
            )
        globs = body.get("matchGlobs") or []
        if not isinstance(globs, list) or not all(isinstance(g, str) for g in globs):
            raise ServiceError(400, "INVALID_ARGUMENT", "matchGlobs must be a list of strings")
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
            raise ServiceError(404, "NOT_FOUND", f"No such operation: {bucket}/operations/{op_id}")
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


def register(router: Router, ctx: EmulatorContext) -> None:
    """Register the GCS JSON API routes (raw-path matching: object names carry encoded '/')."""
    api, up = GcsApi(ctx), GcsUploads(ctx)
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
        ("POST", rf"{_API}/b/{_B}/o", up.insert_metadata_only, "storage.objects.insert", True),
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
            ("POST", upload, up.upload, "storage.objects.insert", True),
            ("PUT", upload, up.upload_chunk, "storage.objects.insert", True),
            ("DELETE", upload, up.cancel_upload, "storage.objects.insert", True),
        ]
    for method, pattern, handler, name, mutating in routes:
        streaming = handler in (up.upload, up.upload_chunk)
        router.add(
            method, pattern, handler, name=name, mutating=mutating, raw=True, streaming=streaming
        )


__all__ = ["GcsApi", "bucket_resource", "object_resource", "register"]
