"""Object listings GCS filters beyond name order: `matchGlob`, and `versions=true`.

Owns `glob_matcher` (GCS's matchGlob syntax: `*` within a path segment, `**` across
segments, `?`, `[...]` classes, `{a,b}` alternatives; matched in linear time per name)
and `filtered_page`, which pages through an already sorted sequence of generations with
a delimiter and an opaque page token. The store's fast listing (one indexed range query
per page) stays in `objects.py`; this slower path reads the range it lists, which is fine
for an emulator and keeps those two rarer options exact.

Must not: touch SQLite, files or HTTP, or import TensorFlow / deployer.serving.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any, Protocol, TypeVar

from deployer.emulator import jsonlimits
from deployer.emulator.http import ServiceError


class _Named(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def generation(self) -> int: ...


T = TypeVar("T", bound=_Named)


# A glob's {a,b} alternatives expand to at most this many patterns (400 beyond).
_MAX_ALTERNATIVES = 256
_MAX_GLOB = 1024  # characters


def _alternatives(glob: str) -> list[str]:
    """`glob` with its {a,b} groups expanded (nested ones too); 400 if unbalanced or huge."""
    open_at = glob.find("{")
    if open_at < 0:
        if "}" in glob:
            raise ServiceError(400, "INVALID_ARGUMENT", f"Invalid matchGlob: {glob!r}")
        return [glob]
    depth, options, start = 0, [], open_at + 1
    for i in range(open_at, len(glob)):
        c = glob[i]
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                options.append(glob[start:i])
                head, tail = glob[:open_at], glob[i + 1 :]
                out: list[str] = []
                for option in options:
                    out += _alternatives(head + option + tail)
                    if len(out) > _MAX_ALTERNATIVES:
                        raise ServiceError(
                            400,
                            "INVALID_ARGUMENT",
                            f"matchGlob has too many alternatives: {glob!r}",
                        )
                return out
        elif c == "," and depth == 1:
            options.append(glob[start:i])
            start = i + 1
    raise ServiceError(400, "INVALID_ARGUMENT", f"Invalid matchGlob: {glob!r}")


# Tokens of one expanded glob: ("lit", char), ("one",) for ?, ("class", regex) for [...],
# ("star",) for *, ("any",) for **, ("dirs",) for **/ (empty, or anything ending in /).
_Token = tuple[str, Any]


def _tokens(glob: str) -> list[_Token]:
    out: list[_Token] = []
    i = 0
    while i < len(glob):
        if glob.startswith("**/", i):
            out.append(("dirs", None))
            i += 3
        elif glob.startswith("**", i):
            out.append(("any", None))
            i += 2
        elif glob[i] == "*":
            out.append(("star", None))
            i += 1
        elif glob[i] == "?":
            out.append(("one", None))
            i += 1
        elif glob[i] == "[":
            close = glob.find("]", i + 2)
            if close < 0:
                raise ServiceError(400, "INVALID_ARGUMENT", f"Invalid matchGlob: {glob!r}")
            body = glob[i + 1 : close]
            negate = body[:1] in ("!", "^")
            body = body[1:] if negate else body
            try:
                cls = re.compile("[" + ("^" if negate else "") + body.replace("\\", "\\\\") + "]")
            except re.error as exc:
                raise ServiceError(
                    400, "INVALID_ARGUMENT", f"Invalid matchGlob {glob!r}: {exc}"
                ) from None
            out.append(("class", cls))
            i = close + 1
        else:
            out.append(("lit", glob[i]))
            i += 1
    return out


def _closure(tokens: list[_Token], states: set[int]) -> set[int]:
    """`states` plus every state reachable without a character (past empty-matching tokens)."""
    todo, seen = list(states), set(states)
    while todo:
        j = todo.pop()
        if j < len(tokens) and tokens[j][0] in ("star", "any", "dirs") and j + 1 not in seen:
            seen.add(j + 1)
            todo.append(j + 1)
    return seen


def _matches(tokens: list[_Token], name: str) -> bool:
    """Whether `name` matches, by simulating the glob's automaton: O(len(name) x tokens),
    whatever the pattern (a backtracking regex can take exponential time on `**a**a**b`)."""
    states = _closure(tokens, {0})
    for ch in name:
        nxt: set[int] = set()
        for j in states:
            if j == len(tokens):
                continue
            kind, arg = tokens[j]
            if kind == "any" or (kind == "star" and ch != "/"):
                nxt.add(j)
            elif kind == "dirs":
                nxt.add(j)
                if ch == "/":
                    nxt.add(j + 1)
            elif (
                (kind == "lit" and ch == arg)
                or (kind == "one" and ch != "/")
                or (kind == "class" and arg.fullmatch(ch))
            ):
                nxt.add(j + 1)
        if not nxt:
            return False
        states = _closure(tokens, nxt)
    return len(tokens) in states


@lru_cache(maxsize=64)
def glob_matcher(glob: str) -> Callable[[str], bool]:
    """A predicate for GCS's matchGlob syntax; 400 for a malformed (or oversized) pattern."""
    if len(glob) > _MAX_GLOB:
        raise ServiceError(400, "INVALID_ARGUMENT", "matchGlob is too long")
    patterns = [_tokens(alt) for alt in _alternatives(glob)]
    return lambda name: any(_matches(tokens, name) for tokens in patterns)


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
        raise ServiceError(400, "INVALID_ARGUMENT", "Invalid pageToken") from exc


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
    matcher = glob_matcher(match_glob) if match_glob else None
    after = _after(page_token) if page_token else None
    items: list[T] = []
    prefixes: list[str] = []
    last: tuple[str, int, bool] | None = None
    for meta in generations:
        if matcher is not None and not matcher(meta.name):
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


__all__ = ["filtered_page", "glob_matcher"]
