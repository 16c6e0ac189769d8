"""The console's views as HTML bodies: models, endpoints, batch jobs, buckets, objects,
the request log, the try-predict form and the fault controls.

Owns how each view looks: a heading per resource, tables with captions, the traffic split
as a bar drawn in SVG (with the percentages also in text), progress as <progress>, and forms
whose every control has a label. Every value shown goes through `markup.esc` (object names,
labels and messages are hostile input).

Must not: read state itself (callers pass the read model from `data`), or change anything.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from deployer.emulator.console.activity import Call, Stats
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


_STATUS_CHOICES = ("", "2xx", "3xx", "4xx", "5xx")
_METHODS = ("", "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD")
_SERVICES = (("", "any"), ("vertex", "Vertex AI"), ("storage", "Cloud Storage"))


def _select(name: str, label: str, options: Sequence[tuple[str, str]], chosen: str) -> Markup:
    return fill(
        '<label for="f-$name">$label</label><select id="f-$name" name="$name">$options</select>',
        name=name,
        label=label,
        options=join(
            fill(
                '<option value="$v"$sel>$t</option>',
                v=v,
                t=t,
                sel=Markup(" selected" if v == chosen else ""),
            )
            for v, t in options
        ),
    )


def requests_view(calls: Sequence[Call], filters: dict[str, str], kept: int) -> Markup:
    form = fill(
        '<form class="filters" method="get" action="/_console/requests" role="search"'
        ' aria-label="Filter the request log">$method$service$status'
        '<label for="f-path">Path or API method contains</label>'
        '<input id="f-path" name="path" type="search" value="$path">'
        '<button type="submit">Filter</button></form>',
        method=_select("method", "Method", [(m, m or "any") for m in _METHODS], filters["method"]),
        service=_select("service", "Service", _SERVICES, filters["service"]),
        status=_select(
            "status", "Status", [(s, s or "any") for s in _STATUS_CHOICES], filters["status"]
        ),
        path=filters["path"],
    )
    rows = [
        (
            _clock(c.at),
            c.method,
            fill('<span class="path">$p</span>', p=c.path),
            c.api,
            c.service,
            c.status,
            f"{c.duration_ms:.1f} ms",
            c.fault or "",
        )
        for c in calls
    ]
    return fill(
        "$form$count$table",
        form=form,
        count=notice(f"{len(calls)} matching call(s), newest first, of the last {kept} kept."),
        table=table(
            "API calls",
            (
                "Time (UTC)",
                "Method",
                "Path",
                "API method",
                "Service",
                "Status",
                "Duration",
                "Fault",
            ),
            rows,
        ),
    )


def _clock(at: float) -> str:
    import time

    return time.strftime("%H:%M:%S", time.gmtime(at)) + f".{int(at % 1 * 1000):03d}"


def predict_view(
    endpoint_names: Sequence[str],
    *,
    chosen: str = "",
    instances: str = "",
    result: tuple[int, str] | None = None,
    error: str = "",
) -> Markup:
    options = [(n, n) for n in endpoint_names]
    form = fill(
        '<form method="post" action="/_console/predict" class="predict">'
        "$select"
        '<label for="f-instances">Instances (a JSON list, or {"instances": [...]})</label>'
        '<textarea id="f-instances" name="instances" rows="8" cols="80" required'
        ' aria-describedby="instances-help" spellcheck="false">$instances</textarea>'
        '<p id="instances-help" class="help">Sent as the body of the endpoint\'s :predict,'
        " through the same handler as the API (faults apply).</p>"
        '<button type="submit">Predict</button></form>',
        select=_select("endpoint", "Endpoint", options, chosen)
        if options
        else notice("No endpoint to predict with yet."),
        instances=instances,
    )
    out = Markup("")
    if error:
        out = notice(error, error=True)
    elif result is not None:
        status, text = result
        out = fill(
            '<section aria-labelledby="answer"><h2 id="answer">Response: HTTP $status</h2>'
            '<pre id="predict-response" tabindex="0">$text</pre></section>',
            status=status,
            text=text,
        )
    return fill("$form$out", form=form, out=out)


def pretty(body: bytes) -> str:
    try:
        return json.dumps(json.loads(body), indent=2, sort_keys=True)
    except (ValueError, UnicodeDecodeError):
        return body.decode("utf-8", "replace")


def faults_view(
    settings: dict[str, Any],
    misbehaviours: list[dict[str, Any]],
    deployed: Sequence[tuple[str, str]],
    message: str = "",
    error: str = "",
) -> Markup:
    """`deployed`: (endpoint id, deployed model id) pairs for the misbehave form."""
    head = notice(error, error=True) if error else (notice(message) if message else Markup(""))
    rates = fill(
        '<form method="post" action="/_console/faults" aria-labelledby="rates-h">'
        '<h2 id="rates-h">Random faults</h2>'
        '<label for="f-inject">Share of API calls that fail first with 503 or 429 (0 to 1)</label>'
        '<input id="f-inject" name="inject_faults" type="number" min="0" max="1" step="any"'
        ' value="$inject" required>'
        '<label for="f-drop">Share of mutating calls whose reply is dropped (0 to 1)</label>'
        '<input id="f-drop" name="drop_responses" type="number" min="0" max="1" step="any"'
        ' value="$drop" required>'
        '<label for="f-delay">Seconds long-running operations stay running</label>'
        '<input id="f-delay" name="op_delay" type="number" min="0" step="any" value="$delay"'
        " required>"
        '<label for="f-seed">Seed (empty: unseeded)</label>'
        '<input id="f-seed" name="seed" type="number" step="1" value="$seed">'
        '<button type="submit">Save fault rates</button></form>',
        inject=settings["inject_faults"],
        drop=settings["drop_responses"],
        delay=settings["op_delay"],
        seed="" if settings["seed"] is None else settings["seed"],
    )
    script_rows = [
        (r["method"], r["count"], "drop reply" if r["drop"] else r["http_status"], r["message"])
        for r in settings["script"]
    ]
    script = fill(
        '<section aria-labelledby="script-h"><h2 id="script-h">Scripted faults</h2>$table'
        '<form method="post" action="/_console/faults/script">'
        '<label for="f-method">API method (e.g. deployModel, predict, storage.objects.insert;'
        " * for any)</label>"
        '<input id="f-method" name="method" required value="predict">'
        '<label for="f-count">How many calls</label>'
        '<input id="f-count" name="count" type="number" min="1" step="1" value="1" required>'
        '<label for="f-status">HTTP status answered</label>'
        '<input id="f-status" name="http_status" type="number" min="400" max="599" value="503">'
        '<input id="f-dropit" name="drop" type="checkbox" value="1">'
        '<label for="f-dropit" class="inline">Let the call take effect, then drop its reply'
        "</label>"
        '<button type="submit">Add rule</button></form>'
        '<form method="post" action="/_console/faults/clear">'
        '<button type="submit">Clear scripted faults</button></form></section>',
        table=table(
            "Pending scripted faults",
            ("API method", "Calls left", "Answer", "Message"),
            script_rows,
        ),
    )
    counts = notice(
        f"Injected so far: {settings['injected']}; replies dropped: {settings['dropped']}."
    )
    mis_rows = [
        (
            m["endpoint"],
            m["deployed_model_id"],
            m["error_rate"],
            m["latency_ms"],
            "yes" if m["wrong_outputs"] else "no",
        )
        for m in misbehaviours
    ]
    options = [(f"{e}/{d}", f"endpoint {e}, deployed model {d}") for e, d in deployed]
    misbehave = fill(
        '<section aria-labelledby="mis-h"><h2 id="mis-h">Misbehaving deployed models</h2>$table'
        "$form</section>",
        table=table(
            "Misbehaving deployed models",
            ("Endpoint", "Deployed model", "Error rate", "Added latency (ms)", "Wrong outputs"),
            mis_rows,
        ),
        form=fill(
            '<form method="post" action="/_console/misbehave">$select'
            '<label for="f-erate">Share of its predictions that fail (0 to 1)</label>'
            '<input id="f-erate" name="error_rate" type="number" min="0" max="1" step="any"'
            ' value="0" required>'
            '<label for="f-lat">Added latency (ms)</label>'
            '<input id="f-lat" name="latency_ms" type="number" min="0" step="any" value="0"'
            " required>"
            '<input id="f-wrong" name="wrong_outputs" type="checkbox" value="1">'
            '<label for="f-wrong" class="inline">Wrong outputs</label>'
            '<button type="submit">Apply (all zero clears it)</button></form>',
            select=_select("target", "Deployed model", options, ""),
        )
        if options
        else notice("No deployed model to break yet."),
    )
    return fill(
        "$head$counts$rates$script$misbehave",
        head=head,
        counts=counts,
        rates=rates,
        script=script,
        misbehave=misbehave,
    )
