"""The JSON Schema and the Markdown field reference of the spec, generated from its document models.

Owns how the schema reads to editors (yaml-language-server, VS Code): every
constrained scalar also accepts `${VAR}` text, which the loader interpolates. The
shape and the constraints themselves come from `deployer.spec.document` (one
definition); nothing here validates. Imported by `deployer schema` only (pydantic is
heavy).
"""

from __future__ import annotations

import json
import types
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel

from deployer.spec.document import SpecDoc

__all__ = ["SpecDoc", "json_schema", "json_schema_text", "markdown_reference"]

# Any scalar may be written as ${VAR} or ${VAR:-default}; the loader fills it from the environment.
INTERPOLATION_SCHEMA: dict[str, Any] = {
    "type": "string",
    "pattern": r"\$\{[A-Za-z_][A-Za-z0-9_]*(:-[^}]*)?\}",
    "description": "${VAR} or ${VAR:-default}, filled from the environment when the spec is loaded",
}
_MOVED = ("title", "description", "default")


def json_schema() -> dict[str, Any]:
    """The JSON Schema of the spec, generated from the models above.

    Constrained scalars (patterns, enums, numbers, booleans) also accept
    `${VAR}` text, so editors do not flag interpolated values as errors.
    """
    schema = SpecDoc.model_json_schema()
    for model in [schema, *schema.get("$defs", {}).values()]:
        for name, prop in model.get("properties", {}).items():
            model["properties"][name] = _allow_interpolation(prop)
    return schema


def _constrained(part: dict[str, Any]) -> bool:
    if "$ref" in part or part.get("type") in ("object", "array", "null"):
        return False
    return part.get("type") != "string" or "pattern" in part or "enum" in part


def _allow_interpolation(prop: dict[str, Any]) -> dict[str, Any]:
    if "anyOf" in prop:
        if any(_constrained(p) for p in prop["anyOf"]):
            return {**prop, "anyOf": [*prop["anyOf"], INTERPOLATION_SCHEMA]}
        return prop
    if not _constrained(prop):
        return prop
    outer = {k: prop[k] for k in _MOVED if k in prop}
    inner = {k: v for k, v in prop.items() if k not in _MOVED}
    return {**outer, "anyOf": [inner, INTERPOLATION_SCHEMA]}


def json_schema_text() -> str:
    return json.dumps(json_schema(), indent=2, sort_keys=False) + "\n"


def markdown_reference() -> str:
    """Every spec field as a Markdown table (path, type, default, meaning), from the same models."""
    rows = ["| field | type | default | meaning |", "|---|---|---|---|"]

    def walk(model: type[BaseModel], prefix: str) -> None:
        for name, info in model.model_fields.items():
            path = f"{prefix}{name}"
            nested = _model_of(info.annotation)
            is_list = "list[" in str(info.annotation)
            if info.is_required():
                default = "required"
            elif info.default_factory is not None:
                default = "`[]`" if is_list else "`{}`" if "dict[" in str(info.annotation) else ""
            elif info.default is None:
                default = ""
            else:
                default = f"`{json.dumps(info.default)}`"
            kind = _type_name(info.annotation)
            rows.append(
                f"| `{path}` | {kind} | {default} | {(info.description or '').replace('|', '/')} |"
            )
            if nested is not None:
                walk(nested, f"{path}[]." if is_list else f"{path}.")

    walk(SpecDoc, "")
    return "\n".join(rows) + "\n"


def _type_name(annotation: Any) -> str:
    args = get_args(annotation)
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in args if a is not type(None))
    if origin is list:
        return f"list of {_type_name(args[0])}"
    if origin is dict:
        return "labels (key: value)"
    if origin is Literal:
        return " / ".join(f"`{a}`" for a in args)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "mapping"
    return {str: "string", int: "integer", float: "number", bool: "boolean"}.get(
        annotation, str(annotation)
    )


def _model_of(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_of(arg)
        if found is not None:
            return found
    return None
