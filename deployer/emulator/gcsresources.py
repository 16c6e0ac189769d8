"""Cloud Storage JSON resources as the emulator renders and reads them.

Owns `object_resource` / `bucket_resource` (storage#object and storage#bucket JSON: int64
fields as strings, the etag, the properties kept, versioning), and the checks on what a
request's object or bucket resource may hold (`object_metadata_from_json`, `versioning_of`,
the properties it sets or clears), plus the small query / field parsers the handlers share.

Must not: store anything, route requests, or import TensorFlow / deployer.serving.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import quote

from deployer.emulator.context import EmulatorContext, project_number
from deployer.emulator.gcsmedia import int_param, object_etag
from deployer.emulator.http import Request, ServiceError
from deployer.emulator.objects import (
    OBJECT_PROPERTIES,
    ObjectMeta,
    validate_content_type,
    validate_object_name,
)

# Text fields of an object resource a request may set (each a string when present).
TEXT_FIELDS = ("name", "contentType", "md5Hash", "crc32c", "storageClass", *OBJECT_PROPERTIES)
STORAGE_CLASSES = frozenset(
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


def max_results(req: Request) -> int:
    """maxResults as GCS takes it: absent or 0 means the default (1,000); negative is 400."""
    value = int_param(req, "maxResults")
    if value is not None and value < 0:
        raise ServiceError(
            400, "INVALID_ARGUMENT", f"Invalid value for maxResults: {value} (must be >= 0)"
        )
    return min(value or 1000, 1000)


def base_url(req: Request, ctx: EmulatorContext) -> str:
    host = req.headers.get("host")
    return f"http://{host}{req.base_path}" if host else ctx.base_url + req.base_path


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


def versioning_of(body: dict[str, Any]) -> bool | None:
    """A bucket resource's versioning.enabled (None when absent); 400 unless a boolean."""
    versioning = body.get("versioning")
    if versioning is None:
        return None
    enabled = versioning.get("enabled", False) if isinstance(versioning, dict) else None
    if not isinstance(enabled, bool):
        raise ServiceError(400, "INVALID_ARGUMENT", 'versioning must be {"enabled": true|false}')
    return enabled


def properties_of(body: dict[str, Any]) -> dict[str, Any]:
    """The OBJECT_PROPERTIES a request's object resource names (a null value kept: patch
    removes it), checked already by `_object_metadata_from_json`."""
    return {key: body[key] for key in OBJECT_PROPERTIES if key in body}


def set_properties(body: dict[str, Any]) -> dict[str, str]:
    return {k: v for k, v in properties_of(body).items() if v is not None}


def object_metadata_from_json(body: Any) -> dict[str, Any]:
    """A request's object resource, checked for the field types the store relies on."""
    if not isinstance(body, dict):
        raise ServiceError(400, "INVALID_ARGUMENT", "Object metadata must be a JSON object")
    for key in TEXT_FIELDS:
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
            except ServiceError:
                raise ServiceError(
                    400, "INVALID_ARGUMENT", f"Invalid {key}: {body[key]!r}"
                ) from None
    if body.get("customTime") is not None:
        try:
            datetime.fromisoformat(body["customTime"].replace("Z", "+00:00"))
        except ValueError:
            raise ServiceError(
                400,
                "INVALID_ARGUMENT",
                f"Invalid customTime {body['customTime']!r}: expected an RFC 3339 timestamp",
            ) from None
    if body.get("storageClass") is not None and body["storageClass"] not in STORAGE_CLASSES:
        raise ServiceError(
            400, "INVALID_ARGUMENT", f"Invalid storageClass: {body['storageClass']!r}"
        )
    metadata = body.get("metadata") or {}
    if not isinstance(metadata, dict) or any(
        isinstance(v, (dict, list)) for v in metadata.values()
    ):
        raise ServiceError(400, "INVALID_ARGUMENT", "metadata must be an object of string values")
    return body


def int_field(body: dict[str, Any], key: str) -> int | None:
    """An int64 JSON field (a string or number on the wire); 400 for anything else."""
    value = body.get(key)
    if value is None:
        return None
    try:
        if isinstance(value, bool):
            raise ValueError(value)
        return int(value)
    except (TypeError, ValueError):
        raise ServiceError(400, "INVALID_ARGUMENT", f"Invalid value for {key}: {value!r}") from None


__all__ = [
    "STORAGE_CLASSES",
    "TEXT_FIELDS",
    "base_url",
    "bucket_resource",
    "int_field",
    "max_results",
    "object_metadata_from_json",
    "object_resource",
    "properties_of",
    "set_properties",
    "versioning_of",
]
