"""The console's read-only views as HTML bodies: models, endpoints, batch jobs, buckets and
objects (the views with forms are in `forms`).

Owns how each view looks: a heading per resource, tables with captions, the traffic split
as a bar drawn in SVG (with the percentages also in text), progress as <progress>, and forms
whose every control has a label. Every value shown goes through `markup.esc` (object names,
labels and messages are hostile input).

Must not: read state itself (callers pass the read model from `data`), or change anything.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from deployer.emulator.console.activity import Stats
from deployer.emulator.console.data import EndpointView, JobView, Listing, ModelView
from deployer.emulator.console.markup import (
    Markup,
    details,
    fill,
    join,
    link,
    notice,
    table,
)
from deployer.emulator.gcstypes import ObjectMeta

_BAR_COLOURS = ("#1a5fb4", "#c64600", "#26a269", "#813d9c", "#986a44", "#5e5c64")


def _id(name: str) -> str:
    return name.rsplit("/", 1)[-1]


def _labels(labels: dict[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(labels.items())) or "none"


def models_view(items: Sequence[ModelView]) -> Markup:
    if not items:
        return notice("No models yet: upload one (deployer apply, or the SDK's Model.upload).")
    sections = []
    for m in items:
        rows = [
            (
                v.version_id,
                ", ".join(v.aliases) or "none",
                v.created,
                v.artifact_uri,
                v.image,
            )
            for v in m.versions
        ]
        sections.append(
            fill(
                '<section class="card" aria-labelledby="m-$key"><h2 id="m-$key">$title</h2>'
                "$facts$versions</section>",
                key=_id(m.name),
                title=m.display_name or _id(m.name),
                facts=details([("Name", m.name), ("Labels", _labels(m.labels))]),
                versions=table(
                    f"Versions of {m.display_name or _id(m.name)}",
                    ("Version", "Aliases", "Created", "Artifact", "Container image"),
                    rows,
                ),
            )
        )
    return join(sections)


def _split_bar(ep: EndpointView) -> Markup:
    """The traffic split as one horizontal bar (SVG attributes, no inline style)."""
    x = 0
    rects = []
    described = []
    for i, dm in enumerate(d for d in ep.deployed if d.traffic > 0):
        rects.append(
            fill(
                '<rect class="split" x="$x" y="0" width="$w" height="24" fill="$colour"'
                ' data-deployed-model-id="$dm" data-traffic="$w"><title>$label</title></rect>',
                x=x,
                w=dm.traffic,
                colour=_BAR_COLOURS[i % len(_BAR_COLOURS)],
                dm=dm.deployed_model_id,
                label=f"{dm.deployed_model_id}: {dm.traffic}%",
            )
        )
        described.append(f"{dm.deployed_model_id} {dm.traffic}%")
        x += dm.traffic
    return fill(
        '<svg class="split-bar" viewBox="0 0 100 24" preserveAspectRatio="none" role="img"'
        ' aria-label="$label" width="100%" height="24">$rects</svg>',
        label="Traffic split: " + (", ".join(described) or "no traffic assigned"),
        rects=join(rects),
    )


def _rate(stats: Stats | None) -> tuple[str, str, str]:
    if stats is None or not stats.requests:
        return ("0/s", "-", "-")
    p50 = f"{stats.p50_ms:.1f} ms" if stats.p50_ms is not None else "-"
    p95 = f"{stats.p95_ms:.1f} ms" if stats.p95_ms is not None else "-"
    return (
        f"{stats.rate_per_s:.2f}/s ({stats.requests} in 60 s)",
        f"{stats.error_rate * 100:.1f}% ({stats.errors})",
        f"p50 {p50}, p95 {p95}",
    )


def endpoints_view(items: Sequence[EndpointView]) -> Markup:
    if not items:
        return notice("No endpoints yet.")
    sections = []
    for ep in items:
        rows = []
        for dm in ep.deployed:
            rate, errors, latency = _rate(dm.stats)
            rows.append(
                (
                    dm.deployed_model_id,
                    f"{_id(dm.model)}@{dm.version_id}",
                    f"{dm.traffic}%",
                    dm.state,
                    f"{dm.replicas} (min {dm.min_replicas}, max {dm.max_replicas})",
                    dm.machine_type,
                    rate,
                    errors,
                    latency,
                )
            )
        extra = Markup("")
        if ep.unattributed is not None and ep.unattributed.requests:
            rate, errors, _ = _rate(ep.unattributed)
            extra = notice(
                f"Calls that failed before a deployed model was chosen: {rate}, {errors}."
            )
        sections.append(
            fill(
                '<section class="card endpoint" aria-labelledby="e-$key" data-endpoint="$name">'
                '<h2 id="e-$key">$title</h2>$facts<h3>Traffic split</h3>$bar$table$extra'
                "</section>",
                key=_id(ep.name),
                name=ep.name,
                title=ep.display_name or _id(ep.name),
                facts=details([("Name", ep.name), ("Labels", _labels(ep.labels))]),
                bar=_split_bar(ep),
                table=table(
                    f"Deployed models of {ep.display_name or _id(ep.name)}",
                    (
                        "Deployed model",
                        "Model",
                        "Traffic",
                        "State",
                        "Replicas",
                        "Machine",
                        "Requests",
                        "Errors",
                        "Latency",
                    ),
                    rows,
                ),
                extra=extra,
            )
        )
    return join(sections)


def jobs_view(items: Sequence[JobView]) -> Markup:
    if not items:
        return notice("No batch prediction jobs yet.")
    sections = []
    for job in items:
        progress = fill(
            '<progress id="p-$key" max="$total" value="$done">$done of $total</progress>'
            ' <label for="p-$key">$done of $total instances</label>',
            key=_id(job.name),
            total=max(job.total, 1) if job.total else 1,
            done=job.done,
        )
        facts = [
            ("Name", job.name),
            ("State", job.state),
            ("Model", job.model),
            ("Progress", progress),
            ("Successful", job.successful),
            ("Failed", job.failed),
            ("Output", job.output or "not yet"),
            ("Created", job.created),
            ("Ended", job.ended or "not yet"),
        ]
        if job.error:
            facts.append(("Error", fill('<span class="error">$e</span>', e=job.error)))
        if job.partial_failures:
            facts.append(
                (
                    "Partial failures",
                    fill(
                        "<ul>$items</ul>",
                        items=join(fill("<li>$f</li>", f=f) for f in job.partial_failures),
                    ),
                )
            )
        sections.append(
            fill(
                '<section class="card job" aria-labelledby="j-$key"><h2 id="j-$key">$title</h2>'
                "$facts</section>",
                key=_id(job.name),
                title=job.display_name or _id(job.name),
                facts=details(facts),
            )
        )
    return join(sections)


def buckets_view(items: Sequence[dict[str, Any]]) -> Markup:
    rows = [
        (
            link("bucket", b["name"], bucket=b["name"]),
            b["location"],
            b["storage_class"],
            "on" if b["versioning"] else "off",
            _labels(b["labels"]),
            b["time_created"],
        )
        for b in items
    ]
    return table(
        "Buckets", ("Bucket", "Location", "Storage class", "Versioning", "Labels", "Created"), rows
    )


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)


def bucket_view(page: Listing) -> Markup:
    crumbs = [link("bucket", page.bucket, bucket=page.bucket)]
    parts = page.prefix.split("/")[:-1] if page.prefix else []
    for i, part in enumerate(parts):
        crumbs.append(
            link("bucket", part + "/", bucket=page.bucket, prefix="/".join(parts[: i + 1]) + "/")
        )
    rows: list[tuple[object, ...]] = [
        (link("bucket", p[len(page.prefix) :], bucket=page.bucket, prefix=p), "folder", "", "")
        for p in page.prefixes
    ]
    rows += [
        (
            link("object", o.name[len(page.prefix) :], bucket=o.bucket, name=o.name),
            _size(o.size),
            o.content_type,
            o.updated,
        )
        for o in page.objects
    ]
    more = Markup("")
    if page.next_page_token:
        more = fill(
            "<p>$next</p>",
            next=link(
                "bucket",
                "Next page",
                bucket=page.bucket,
                prefix=page.prefix,
                page_token=page.next_page_token,
            ),
        )
    return fill(
        '<nav aria-label="Folder path" class="crumbs"><p>$crumbs</p></nav>$table$more',
        crumbs=join(crumbs, " / "),
        table=table(
            f"Objects in gs://{page.bucket}/{page.prefix}",
            ("Name", "Size", "Content type", "Updated"),
            rows,
        ),
        more=more,
    )


def object_view(meta: ObjectMeta) -> Markup:
    pairs: list[tuple[str, object]] = [
        ("Bucket", link("bucket", meta.bucket, bucket=meta.bucket)),
        ("Name", fill('<span class="object-name">$n</span>', n=meta.name)),
        ("Size", f"{meta.size} bytes"),
        ("Content type", meta.content_type or "none"),
        ("Generation", meta.generation),
        ("Metageneration", meta.metageneration),
        ("MD5 (base64)", meta.md5_hash),
        ("CRC32C (base64)", meta.crc32c),
        ("Storage class", meta.storage_class),
        ("Created", meta.time_created),
        ("Updated", meta.updated),
    ]
    pairs += [(k, v) for k, v in sorted(meta.properties.items())]
    pairs += [(f"metadata: {k}", v) for k, v in sorted(meta.metadata.items())]
    return fill(
        "$facts<p>$download</p>",
        facts=details(pairs),
        download=link("download", "Download", bucket=meta.bucket, name=meta.name),
    )
