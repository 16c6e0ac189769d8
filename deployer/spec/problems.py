"""Where a spec problem is, and how pydantic's shape errors read to a user.

Owns `Findings`, the collector one validation run fills: every problem with its file,
line, field path and fix, at most one per field path, ordered as they appear in the
file. It is also the pydantic validation context: the validators in
`deployer.spec.document` report to it, which is what lets one run report every
problem at once instead of stopping at the first. Owns `Located` (a YAML mapping that
knows its field path), field-path rendering, "did you mean" suggestions, and the
translation of pydantic's errors (wrong types, missing fields) into messages with a fix.

Must not: read files (it only resolves local paths), parse YAML, or import pydantic
(the CLI's fast path imports this package).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from deployer.errors import SpecProblem

Path_ = tuple[str | int, ...]


def field_path(path: Path_) -> str:
    """("endpoints", 0, "traffic") -> "endpoints[0].traffic"."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
            continue
        name = part if part.isprintable() else repr(part)  # a key the YAML spelled oddly
        out += f".{name}" if out else name
    return out or "(top level)"


def suggest(word: str, choices: Iterable[str], *, prefix: str = "did you mean ") -> str | None:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"{prefix}'{close[0]}'?" if close else None


def resolve_local(path_text: str, base_dir: Path) -> Path:
    """A local path as the spec means it: relative to the spec file's directory."""
    path = Path(path_text).expanduser()
    return (path if path.is_absolute() else base_dir / path).resolve()


class Located(dict[str, Any]):
    """A mapping read from the YAML, carrying its field path (the validators report by it)."""

    __slots__ = ("path",)

    def __init__(self, items: Iterable[tuple[str, Any]] = (), path: Path_ = ()) -> None:
        super().__init__(items)
        self.path = path


class Findings:
    """The problems of one spec file, and what the validators need to find them."""

    def __init__(
        self, file: str, *, base_dir: Path | None = None, check_artifacts: bool = False
    ) -> None:
        self.file = file
        # field path -> (line, column), 1-based line, of its key (or list item) in the file
        self.positions: dict[Path_, tuple[int, int]] = {}
        self.base_dir = base_dir  # relative local paths resolve against it (None: no disk)
        self.check_artifacts = check_artifacts  # whether local artifacts and inputs must exist
        self._problems: list[tuple[tuple[int, int], SpecProblem]] = []
        self._flagged: set[Path_] = set()
        self._where: list[Path_] = []  # the objects being validated, innermost last
        self._resolved: dict[str, Path] = {}
        # Names declared so far, per list they must be unique in: list path -> name -> item.
        self._names: dict[Path_, dict[str, Path_]] = {}

    def resolve(self, path_text: str) -> Path:
        """A local path of the spec, resolved against its directory (once per distinct text)."""
        found = self._resolved.get(path_text)
        if found is None:
            found = resolve_local(path_text, self.base_dir or Path.cwd())
            self._resolved[path_text] = found
        return found

    def declare(self, item: Path_, name: str) -> Path_ | None:
        """Record the name of the list item at `item`; the earlier item of that name, if any."""
        first = self._names.setdefault(item[:-1], {}).setdefault(name, item)
        return None if first == item else first

    def declared(self, items: Path_) -> dict[str, Path_]:
        """The names declared so far in the list at `items`, each with its first item."""
        return self._names.get(items, {})

    def position(self, path: Path_) -> tuple[int, int] | None:
        # A missing key has no position: use the nearest enclosing node's.
        for n in range(len(path), -1, -1):
            found = self.positions.get(path[:n])
            if found is not None:
                return found
        return None

    def add(self, path: Path_, message: str, fix: str, *, line: int | None = None) -> None:
        """Record a problem; a second one on the same field path is dropped (the first says it)."""
        if path in self._flagged:
            return
        self._flagged.add(path)
        pos = (line, 0) if line is not None else self.position(path)
        self._problems.append(
            (
                pos or (0, 0),
                SpecProblem(
                    file=self.file,
                    line=pos[0] if pos else None,
                    field=field_path(path),
                    message=message,
                    fix=fix,
                ),
            )
        )

    @property
    def problems(self) -> list[SpecProblem]:
        """Every problem, in the order they appear in the file."""
        return [p for _, p in sorted(self._problems, key=lambda item: item[0])]

    # The path of the object under validation: pydantic gives validators no location, so
    # each document object announces itself (enter/leave) around its own validation.
    def enter(self, path: Path_) -> None:
        self._where.append(path)

    def leave(self) -> None:
        self._where.pop()

    @property
    def here(self) -> Path_:
        return self._where[-1] if self._where else ()

    def add_validation_errors(self, errors: Iterable[Any]) -> None:
        """Record pydantic's errors (`ValidationError.errors()`) as located, fixable problems."""
        for err in errors:
            loc = tuple(err["loc"])
            self.add(loc, *translate(err, loc))


_EXPECTED = {
    "int": "a whole number",
    "float": "a number",
    "bool": "true or false",
    "string": "a string",
    "list": "a list",
    "dict": "a mapping (key: value)",
    "model": "a mapping (key: value)",
    "model_attributes": "a mapping (key: value)",
}


def translate(err: Any, loc: Path_) -> tuple[str, str]:
    """(message, fix) for one pydantic error: the shape problems a type can express.

    The value rules (patterns, ranges, names, references) are reported by the
    document's validators in their own words; what reaches here is a wrong type, a
    missing field or a value outside a closed set.
    """
    kind, value, ctx = err["type"], err.get("input"), err.get("ctx") or {}
    # Name list entries by their path ("models[0]"), fields by their key ("traffic").
    leaf = (str(loc[-1]) if isinstance(loc[-1], str) else field_path(loc)) if loc else ""
    if value is None and kind.endswith("_type") and loc:
        return f"{leaf} is empty", f"give {leaf} a value (`deployer schema` shows its shape)"
    if kind == "missing":
        return f"missing required field {leaf!r}", f"add {leaf}: to {field_path(loc[:-1])}"
    if kind == "literal_error":
        return f"{value!r} is not a valid {leaf}", f"use one of {ctx.get('expected')}"
    if kind == "int_from_float":
        return f"{leaf} must be a whole number, got {value!r}", f"write {leaf} without a fraction"
    if kind == "spec_rule":  # a value rule, raised when validating outside load_spec
        return str(ctx.get("message")), str(ctx.get("fix"))
    base = "model_attributes" if kind == "model_attributes_type" else kind.split("_")[0]
    if kind.endswith(("_type", "_parsing")) and base in _EXPECTED:
        return (
            f"{leaf or 'value'} must be {_EXPECTED[base]}, got {_type_name(value)} {value!r}",
            f"write {leaf} as {_EXPECTED[base]}",
        )
    return f"{leaf}: {err.get('msg')}", "see `deployer schema` for the expected shape"


def _type_name(value: Any) -> str:
    return "dict" if isinstance(value, dict) else type(value).__name__  # not `Located`
