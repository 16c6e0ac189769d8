"""Object listings of the emulator's Cloud Storage: name-ordered pages out of SQLite.

Owns `ObjectListing`, the part of `ObjectStore` (a mixin over its connection and lock)
that pages through a bucket's objects in name order with prefix, delimiter, start / end
offsets and page tokens, one indexed range query per page (never O(objects) per page);
listings with `versions=true` or a `matchGlob` read their range and hand it to
`objectquery.filtered_page`.

Must not: speak HTTP, touch object bytes, or import TensorFlow / deployer.serving.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

from deployer.emulator import jsonlimits
from deployer.emulator.buckettable import BucketTable
from deployer.emulator.gcstypes import OBJECT_COLUMNS, ListPage, ObjectMeta, object_meta, successor
from deployer.emulator.http import ServiceError
from deployer.emulator.objectquery import filtered_page


class ObjectListing(BucketTable):
    """Object listings (a mixin of ObjectStore)."""

    def list_page(
        self,
        bucket: str,
        *,
        prefix: str = "",
        delimiter: str | None = None,
        page_token: str | None = None,
        max_results: int = 1000,
        start_offset: str | None = None,
        end_offset: str | None = None,
        include_trailing_delimiter: bool = False,
        versions: bool = False,
        match_glob: str | None = None,
    ) -> ListPage:
        """One page of objects in name order; items and prefixes both count toward max_results.

        With `versions` noncurrent generations are listed too (each name's in generation
        order); `match_glob` keeps the names matching it. Both take the slower path of
        `objectquery`, which reads the whole range listed."""
        self.require_bucket(bucket)
        max_results = max(1, min(int(max_results), 1000))
        if versions or match_glob:
            generations = self._generations(bucket, prefix, start_offset, end_offset, versions)
            found, rolled_up, token = filtered_page(
                generations,
                prefix=prefix,
                delimiter=delimiter,
                match_glob=match_glob,
                page_token=page_token,
                max_results=max_results,
                include_trailing_delimiter=include_trailing_delimiter,
            )
            return ListPage(found, rolled_up, token)
        lower, inclusive = prefix, True
        if start_offset and start_offset > lower:
            lower = start_offset
        if page_token:
            try:
                token = jsonlimits.loads(base64.urlsafe_b64decode(page_token.encode()))
                after, rolled = str(token["a"]), bool(token["p"])
            except (ValueError, KeyError, TypeError) as exc:
                raise ServiceError(400, "INVALID_ARGUMENT", "Invalid pageToken") from exc
            if rolled:
                lower_bound = successor(after)
                if lower_bound is None:  # nothing sorts after that rolled-up prefix
                    return ListPage([], [], None)
                lower, inclusive = lower_bound, True
            else:
                lower, inclusive = after, False
        upper = successor(prefix) if prefix else None
        if end_offset and (upper is None or end_offset < upper):
            upper = end_offset
        items: list[ObjectMeta] = []
        prefixes: list[str] = []
        last: tuple[str, bool] | None = None  # (key, is_prefix) of the last thing emitted

        def make_token() -> str:
            assert last is not None
            return base64.urlsafe_b64encode(
                json.dumps({"a": last[0], "p": last[1]}).encode()
            ).decode()

        while True:
            sql = (
                f"SELECT {OBJECT_COLUMNS} FROM objects WHERE bucket=? AND name "
                f"{'>=' if inclusive else '>'} ?"
            )
            args: list[Any] = [bucket, lower]
            if upper is not None:
                sql += " AND name < ?"
                args.append(upper)
            sql += " ORDER BY name LIMIT ?"
            args.append(max_results + 1)
            with self._lock:
                rows = self._db.execute(sql, args).fetchall()
            if not rows:
                return ListPage(items, prefixes, None)
            jumped = False
            for row in rows:
                if len(items) + len(prefixes) >= max_results:
                    return ListPage(items, prefixes, make_token())  # `row` proves there is more
                name = row[1]
                if delimiter:
                    idx = name.find(delimiter, len(prefix))
                    if idx >= 0:
                        rolled = name[: idx + len(delimiter)]
                        if include_trailing_delimiter and name == rolled:
                            items.append(object_meta(row))
                        prefixes.append(rolled)
                        last = (rolled, True)
                        # Skip everything under the rolled-up prefix with a fresh query.
                        after_rolled = successor(rolled)
                        if after_rolled is None:  # nothing sorts after it
                            return ListPage(items, prefixes, None)
                        lower, inclusive, jumped = after_rolled, True, True
                        break
                items.append(object_meta(row))
                last = (name, False)
                lower, inclusive = name, False
            if not jumped and len(rows) <= max_results:
                return ListPage(items, prefixes, None)

    def _generations(
        self,
        bucket: str,
        prefix: str,
        start_offset: str | None,
        end_offset: str | None,
        versions: bool,
    ) -> list[ObjectMeta]:
        """Every generation (live, and noncurrent with `versions`) in the range, sorted."""
        where, args = "bucket=? AND name>=?", [bucket, max(prefix, start_offset or "")]
        upper = successor(prefix) if prefix else None
        if end_offset and (upper is None or end_offset < upper):
            upper = end_offset
        if upper is not None:
            where += " AND name<?"
            args.append(upper)
        with self._lock:
            rows = [
                (object_meta(r), r[1], r[3])
                for r in self._db.execute(
                    f"SELECT {OBJECT_COLUMNS} FROM objects WHERE {where}", args
                )
            ]
            if versions:
                rows += [
                    (object_meta(r[:-1], r[-1]), r[1], r[3])
                    for r in self._db.execute(
                        f"SELECT {OBJECT_COLUMNS},time_deleted FROM noncurrent WHERE {where}", args
                    )
                ]
        rows.sort(key=lambda r: (r[1], r[2]))
        return [r[0] for r in rows]

    def list(
        self,
        bucket: str,
        prefix: str = "",
        delimiter: str | None = None,
        *,
        start_offset: str | None = None,
        end_offset: str | None = None,
    ) -> Iterator[ObjectMeta]:
        """Objects in name order (with a delimiter: only those not rolled up into a prefix)."""
        token: str | None = None
        while True:
            page = self.list_page(
                bucket,
                prefix=prefix,
                delimiter=delimiter,
                page_token=token,
                start_offset=start_offset,
                end_offset=end_offset,
            )
            yield from page.items
            if not page.next_page_token:
                return
            token = page.next_page_token


__all__ = ["ObjectListing"]
