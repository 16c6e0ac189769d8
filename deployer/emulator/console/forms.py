"""The console's views with forms: the request log's filters, try-predict, the fault controls.

Owns how those pages look: every control has a label (or an accessible name), errors are
announced (role=alert), and every value shown goes through `markup.esc`.

Must not: read or change state itself (the console passes what to show and applies the forms).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

from deployer.emulator.console.activity import Call
from deployer.emulator.console.markup import Markup, fill, join, notice, table

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
