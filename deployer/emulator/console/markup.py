"""HTML for the console: escaping by default, the page layout, and small shared pieces.

Owns `Markup` (text that is already HTML), `esc` (everything else becomes text: object names,
labels, messages and JSON are hostile input), `fill` (a `string.Template` whose values are
escaped unless they are Markup), `join`, `page` (the layout every view shares: skip link,
navigation with the current view marked, one h1, a main landmark) and the small pieces the
views repeat (tables, definition lists, status messages).

Must not: read emulator state (the views pass what to show), or emit inline script or style
(the console's Content-Security-Policy allows only its own static files).
"""

from __future__ import annotations

import html
import string
from collections.abc import Iterable, Sequence

NAV = (
    ("models", "Models"),
    ("endpoints", "Endpoints"),
    ("jobs", "Batch jobs"),
    ("buckets", "Buckets"),
    ("requests", "Request log"),
    ("predict", "Try predict"),
    ("faults", "Faults"),
)
ROOT = "/_console/"


class Markup(str):
    """A string that is HTML already: `esc` and `fill` pass it through unchanged."""


def esc(value: object) -> Markup:
    """`value` as HTML text (quotes escaped too, so it is safe inside attributes)."""
    if isinstance(value, Markup):
        return value
    return Markup(html.escape("" if value is None else str(value), quote=True))


def fill(template: str, **values: object) -> Markup:
    """`template` (string.Template syntax) with every value escaped unless it is Markup."""
    return Markup(string.Template(template).substitute({k: esc(v) for k, v in values.items()}))


def join(parts: Iterable[object], sep: str = "") -> Markup:
    return Markup(sep.join(esc(p) for p in parts))


def table(caption: str, headers: Sequence[str], rows: Iterable[Sequence[object]]) -> Markup:
    """A data table with a caption and column headers; cells escaped unless Markup."""
    head = join(fill('<th scope="col">$h</th>', h=h) for h in headers)
    body = join(
        fill("<tr>$cells</tr>", cells=join(fill("<td>$c</td>", c=c) for c in row)) for row in rows
    )
    if not body:
        body = fill('<tr><td colspan="$n">None.</td></tr>', n=len(headers))
    return fill(
        "<table><caption>$caption</caption><thead><tr>$head</tr></thead><tbody>$body</tbody>"
        "</table>",
        caption=caption,
        head=head,
        body=body,
    )


def details(pairs: Iterable[tuple[str, object]]) -> Markup:
    """A definition list of (term, value) pairs."""
    return fill(
        "<dl>$items</dl>",
        items=join(fill("<dt>$k</dt><dd>$v</dd>", k=k, v=v) for k, v in pairs),
    )


def notice(message: str, *, error: bool = False) -> Markup:
    """A status line screen readers announce (an alert for errors)."""
    if error:
        return fill('<p class="notice error" role="alert">$m</p>', m=message)
    return fill('<p class="notice" role="status">$m</p>', m=message)


def link(path: str, text: object, **query: str) -> Markup:
    """A console link; the query values are URL-encoded, the text escaped."""
    from urllib.parse import urlencode

    href = ROOT + path + (("?" + urlencode(query)) if query else "")
    return fill('<a href="$href">$text</a>', href=href, text=text)


def page(view: str, title: str, body: Markup, *, api_url: str) -> bytes:
    """A whole console page; `view` is the NAV key marked as current."""
    nav = join(
        fill(
            '<li><a href="$href"$current>$label</a></li>',
            href=ROOT + key,
            label=label,
            current=Markup(' aria-current="page"' if key == view else ""),
        )
        for key, label in NAV
    )
    return fill(
        """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>$title - deployer emulator console</title>
<link rel="stylesheet" href="${root}static/console.css">
<script src="${root}static/console.js" defer></script>
</head>
<body>
<a class="skip" href="#main">Skip to content</a>
<header>
<p class="brand"><a href="$root">deployer emulator console</a></p>
<nav aria-label="Console views"><ul>$nav</ul></nav>
</header>
<main id="main" tabindex="-1">
<h1>$title</h1>
$body
</main>
<footer><p>Emulator API at <code>$api_url</code>. Read in-process; nothing here leaves this
machine.</p></footer>
</body>
</html>
""",
        title=title,
        root=ROOT,
        nav=nav,
        body=body,
        api_url=api_url,
    ).encode()
