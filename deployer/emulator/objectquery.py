"""Object listings GCS filters beyond name order: `matchGlob`, and `versions=true`.

Owns `glob_regex` (GCS's matchGlob syntax: `*` within a path segment, `**` across
segments, `?`, `[...]` classes, `{a,b}` alternatives) and `filtered_page`, which
pages through an already sorted sequence of generations with a delimiter and an
opaque page token. The store's fast listing (one indexed range query per page)
stays in `objects.py`; this slower path reads the range it lists, which is fine
for an emulator and keeps those two rarer options exact.

Must not: touch SQLite, files or HTTP, or import TensorFlow / deployer.serving.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Sequence
from functools import lru_cache
from typing import Protocol, TypeVar

from deployer.emulator import jsonlimits
from deployer.emulator.http import ApiError


class _Named(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def generation(self) -> int: ...


T = TypeVar("T", bound=_Named)


@lru_cache(maxsize=64)
def glob_regex(glob: str) -> re.Pattern[str]:
    """A compiled regex (fullmatch) for a GCS matchGlob pattern; 400 for a malformed one."""
    out: list[str] = []
    i, depth = 0, 0
    while i < len(glob):
        c = glob[i]
        if glob.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
            continue
        if glob.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            close = glob.find("]", i + 2)
            if close < 0:
                raise ApiError(400, "INVALID_ARGUMENT", f"Invalid matchGlob: {glob!r}")
            body = glob[i + 1 : close]
            negate = body[:1] in ("!", "^")
            body = body[1:] if negate else body
            out.append("[" + ("^" if negate else "") + body.replace("\\", "\\\\") + "]")
            i = close + 1
            continue
        elif c == "{":
            depth += 1
            out.append("(?:")
        elif c == "}" and depth:
            depth -= 1
            out.append(")")
        elif c == "," and depth:
            out.append("|")
        else:
            out.append(re.escape(c))
        i += 1
    if depth:
        raise ApiError(400, "INVALID_ARGUMENT", f"Invalid matchGlob: {glob!r}")
    try:
        return re.compile("".join(out), re.DOTALL)
    except re.error as exc:
        raise ApiError(400, "INVALID_ARGUMENT", f"Invalid matchGlob {glob!r}: {exc}") from None


def _token(key: tuple[str, int, bool]) -> str:
    name, generation, rolled = key
    return base64.urlsafe_b64encode(
        json.dumps({"n": name, "g": generation, "p": rolled}).encode()
    ).decode()


def _after(page_token: str) -> tuple[str, int, bool]:
    try:
        token = jsonlimits.loads(base64.urlsafe_b64decode(page_token.encode()))
        return str(token["n"]), int(token["g"]), bool(token["p"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ApiError(400, "INVALID_ARGUMENT", "Invalid pageToken") from exc


def filtered_page(
    generations: Sequence[T],
    *,
    prefix: str,
    delimiter: str | None,
    match_glob: str | None,
    page_token: str | None,
    max_results: int,
    include_trailing_delimiter: bool,
) -> tuple[list[T], list[str], str | None]:
    """(items, prefixes, next page token) of `generations` (sorted by name, then generation,
    all under `prefix`) that match the glob."""
    pattern = glob_regex(match_glob) if match_glob else None
    after = _after(page_token) if page_token else None
    items: list[T] = []
    prefixes: list[str] = []
    last: tuple[str, int, bool] | None = None
    for meta in generations:
        if pattern is not None and not pattern.fullmatch(meta.name):
            continue
        rolled = None
        if delimiter:
            idx = meta.name.find(delimiter, len(prefix))
            if idx >= 0:
                rolled = meta.name[: idx + len(delimiter)]
        if after is not None:
            if after[2]:  # everything under a rolled-up prefix was on earlier pages
                if meta.name < after[0] or meta.name.startswith(after[0]):
                    continue
            elif (meta.name, meta.generation) <= (after[0], after[1]):
                continue
        if rolled is not None and prefixes and prefixes[-1] == rolled:
            if include_trailing_delimiter and meta.name == rolled:
                items.append(meta)
            continue
        if len(items) + len(prefixes) >= max_results:
            assert last is not None
            return items, prefixes, _token(last)
        if rolled is not None:
            prefixes.append(rolled)
            if include_trailing_delimiter and meta.name == rolled:
                items.append(meta)
            last = (rolled, 0, True)
        else:
            items.append(meta)
            last = (meta.name, meta.generation, False)
    return items, prefixes, None


__all__ = ["filtered_page", "glob_regex"]
