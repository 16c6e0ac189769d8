"""The emulator's console: a browser view of the local Vertex AI project, on its own port.

Owns `Console`, the site served at `/_console/` by a second listener of the emulator
(console/listener.py binds it when emulator/server.py starts; `--console-port`, off with
`--no-console`): the views (models, endpoints with traffic split and per deployed model
replicas and recent traffic, batch jobs, a bucket browser with download, the request log
with filters), the try-predict form (through the API's own handler, in-process) and the
fault-injection controls (the same calls as /_emulator/faults and /_emulator/misbehave).
Pages are rendered on the server (`views`, `markup`: everything escaped), with one
stylesheet and one small script shipped in `static/`; nothing is fetched from anywhere else
(the Content-Security-Policy says so too). Access: the transport applies the emulator's
rules (deployer.emulator.access: its own Host only, no request from another origin or site,
the token when one is set) before `handle`; the console adds the token's first visit:
`?access_token=` in the URL `deployer local up` prints becomes an HttpOnly SameSite=Strict
cookie, and the page reloads without it.

Must not: import the core, talk HTTP to the emulator (state is read in-process), or change
state except through the calls the API and admin routes make.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, quote, urlencode

from deployer.emulator.access import TOKEN_COOKIE, TOKEN_QUERY, Denial
from deployer.emulator.console import data, forms, views
from deployer.emulator.console.activity import Activity
from deployer.emulator.console.markup import NAV, ROOT, Markup, notice, page
from deployer.emulator.context import EmulatorContext
from deployer.emulator.http import Request, Response, ServiceError

log = logging.getLogger("deployer.emulator.console")

ApiCall = Callable[[Request], tuple[Response, "str | None"]]

_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
    "img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    # Never to another origin (a token URL must not leak); same-origin keeps the Origin
    # header of the console's own form posts (no-referrer would send "Origin: null").
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
}
_STATIC = {"console.css": "text/css; charset=utf-8", "console.js": "text/javascript; charset=utf-8"}
_TITLES = dict(NAV)


def _form(request: Request) -> dict[str, str]:
    """A url-encoded form body as {field: first value}."""
    try:
        text = request.body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ServiceError(400, "INVALID_ARGUMENT", "The form is not UTF-8.") from exc
    return {k: v[0] for k, v in parse_qs(text, keep_blank_values=True).items()}


def _number(form: dict[str, str], name: str) -> float:
    try:
        value = float(form.get(name, ""))
    except ValueError as exc:
        raise ServiceError(400, "INVALID_ARGUMENT", f"{name} must be a number.") from exc
    if not math.isfinite(value):
        raise ServiceError(400, "INVALID_ARGUMENT", f"{name} must be a finite number.")
    return value


class Console:
    """The console site of one emulator; `handle` runs on the console listener's threads."""

    def __init__(
        self,
        ctx: EmulatorContext,
        *,
        activity: Activity,
        call_api: ApiCall,
    ) -> None:
        self.ctx = ctx
        self.activity = activity
        self.call_api = call_api
        self._get: dict[str, Callable[[Request], Response]] = {
            "": self._home,
            "models": self._models,
            "endpoints": self._endpoints,
            "jobs": self._jobs,
            "buckets": self._buckets,
            "bucket": self._bucket,
            "object": self._object,
            "download": self._download,
            "requests": self._requests,
            "predict": self._predict_form,
            "faults": self._faults,
        }
        self._post: dict[str, Callable[[Request], Response]] = {
            "predict": self._predict,
            "faults": self._set_rates,
            "faults/script": self._add_rule,
            "faults/clear": self._clear_rules,
            "misbehave": self._misbehave,
        }

    # ---- dispatch ---------------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        """Serve one request the transport's access rules admitted."""
        login = self._token_login(request)
        if login is not None:
            return login
        if not request.path.startswith(ROOT):
            if request.path in ("/", "/_console"):
                return self._redirect(ROOT)
            return self.error_page(404, f"No console page at {request.path}.")
        view = request.path[len(ROOT) :].strip("/") if request.path != ROOT else ""
        if view.startswith("static/"):
            return self._static(view.removeprefix("static/"))
        table = self._post if request.method == "POST" else self._get
        handler = table.get(view)
        if handler is None:
            if view in self._get or view in self._post:
                return self.error_page(405, f"{request.method} is not accepted here.")
            return self.error_page(404, f"No console page at {request.path}.")
        try:
            return handler(request)
        except ServiceError as exc:
            return self.error_page(exc.http_status, exc.message)
        except Exception:  # a bug in a view: say so, keep serving
            log.exception("console view %s failed", view)
            return self.error_page(500, "This view failed; see the emulator log.")

    def _token_login(self, request: Request) -> Response | None:
        """The token in the URL (a first visit from what `local up` printed): keep it in an
        HttpOnly SameSite=Strict cookie and load the page without it, so it stays out of the
        address bar, history and links."""
        access = self.ctx.access
        offered = request.q(TOKEN_QUERY)
        if access is None or not access.token_required or offered is None:
            return None
        if request.method != "GET":
            return None
        # Admitted, but maybe by a cookie or header: keep the URL's token only if it is right.
        alone = access.check(
            "GET",
            request.raw_path,
            {"host": request.headers.get("host", "")},
            {TOKEN_QUERY: [offered]},
        )
        rest = {k: v for k, v in request.query.items() if k != TOKEN_QUERY}
        response = self._redirect(
            request.raw_path + ("?" + urlencode(rest, doseq=True) if rest else "")
        )
        if not isinstance(alone, Denial):
            response.headers["Set-Cookie"] = (
                f"{TOKEN_COOKIE}={offered}; HttpOnly; SameSite=Strict; Path={ROOT}"
            )
        return response

    def _page(self, view: str, body: Markup, *, title: str = "", status: int = 200) -> Response:
        text = page(view, title or _TITLES.get(view, "Console"), body, api_url=self.ctx.base_url)
        return Response(status, text, {**_HEADERS, "Content-Type": "text/html; charset=utf-8"})

    def error_page(self, status: int, message: str) -> Response:
        body = notice(message, error=True)
        if status == 403 and self.ctx.access is not None and self.ctx.access.token_required:
            body = Markup(
                body
                + notice(
                    "This emulator has a token: open the console URL that `deployer local up` "
                    "printed (it carries the token once)."
                )
            )
        return self._page("", body, title=f"Error {status}", status=status)

    @staticmethod
    def _redirect(target: str) -> Response:
        return Response(303, b"", {**_HEADERS, "Location": target})

    def _static(self, name: str) -> Response:
        if name not in _STATIC:
            return self.error_page(404, "No such file.")
        body = resources.files(__package__).joinpath("static", name).read_bytes()
        return Response(200, body, {**_HEADERS, "Content-Type": _STATIC[name]})

    # ---- state ------------------------------------------------------------------------

    def _vertex(self) -> Any:
        if self.ctx.vertex is None:
            raise ServiceError(404, "NOT_FOUND", "This emulator serves Cloud Storage only.")
        return self.ctx.vertex

    # ---- views ------------------------------------------------------------------------

    def _home(self, request: Request) -> Response:
        return self._redirect(ROOT + "endpoints")

    def _models(self, request: Request) -> Response:
        return self._page("models", views.models_view(data.models(self._vertex())))

    def _endpoints(self, request: Request) -> Response:
        items = data.endpoints(self._vertex(), self.activity)
        return self._page("endpoints", views.endpoints_view(items))

    def _jobs(self, request: Request) -> Response:
        return self._page("jobs", views.jobs_view(data.jobs(self._vertex())))

    def _buckets(self, request: Request) -> Response:
        return self._page("buckets", views.buckets_view(data.buckets(self.ctx.objects)))

    def _bucket(self, request: Request) -> Response:
        bucket = request.q("bucket") or ""
        listing = data.listing(
            self.ctx.objects, bucket, request.q("prefix") or "", request.q("page_token")
        )
        body = views.bucket_view(listing)
        return self._page("buckets", body, title=f"Bucket {bucket}")

    def _object(self, request: Request) -> Response:
        meta = self.ctx.objects.require(request.q("bucket") or "", request.q("name") or "")
        return self._page("buckets", views.object_view(meta), title=f"Object in {meta.bucket}")

    def _download(self, request: Request) -> Response:
        meta, fh = self.ctx.objects.open_with_meta(
            request.q("bucket") or "", request.q("name") or ""
        )
        filename = meta.name.rsplit("/", 1)[-1] or "object"

        def chunks() -> Any:
            while chunk := fh.read(1 << 20):
                yield chunk

        # Always an attachment of opaque bytes: a stored text/html object must not render
        # on the console's origin.
        headers = {
            **_HEADERS,
            "Content-Type": "application/octet-stream",
            "Content-Length": str(meta.size),
            "Content-Disposition": f"attachment; filename*=UTF-8''{quote(filename, safe='')}",
        }
        return Response(200, chunks(), headers, on_close=fh.close)

    def _requests(self, request: Request) -> Response:
        filters = {k: (request.q(k) or "") for k in ("method", "service", "path", "status")}
        calls = self.activity.recent(
            method=filters["method"],
            service=filters["service"],
            path=filters["path"],
            status=filters["status"],
        )
        kept = len(self.activity.calls())
        return self._page("requests", forms.requests_view(calls, filters, kept))

    def _endpoint_names(self) -> list[str]:
        return [ep.name for ep in self._vertex().store.all_endpoints()]

    def _predict_form(self, request: Request) -> Response:
        return self._page("predict", forms.predict_view(self._endpoint_names()))

    def _predict(self, request: Request) -> Response:
        form = _form(request)
        endpoint, text = form.get("endpoint", ""), form.get("instances", "")
        names = self._endpoint_names()

        def again(status: int, **kw: Any) -> Response:
            body = forms.predict_view(names, chosen=endpoint, instances=text, **kw)
            return self._page("predict", body, status=status)

        if endpoint not in names:
            return again(400, error="Choose one of the endpoints listed.")
        import json

        try:
            parsed = json.loads(text)
        except ValueError as exc:
            return again(400, error=f"The instances are not JSON: {exc}")
        payload = parsed if isinstance(parsed, dict) else {"instances": parsed}
        api_request = Request.from_target(
            "POST",
            "/v1/" + endpoint + ":predict",
            {"content-type": "application/json"},
            json.dumps(payload).encode(),
        )
        response, fault = self.call_api(api_request)
        answer = response.body if isinstance(response.body, bytes) else b""
        shown = forms.pretty(answer)
        if fault == "dropped":
            shown = "(fault injection dropped this reply; the call took effect)\n" + shown
        return again(200, result=(response.status, shown))

    def _faults(self, request: Request) -> Response:
        return self._faults_page(message="Saved." if request.q("saved") else "")

    def _faults_page(self, *, message: str = "", error: str = "", status: int = 200) -> Response:
        vertex = self.ctx.vertex
        deployed = []
        misbehaviours: list[dict[str, Any]] = []
        if vertex is not None:
            misbehaviours = vertex.misbehaviours.listing()
            for ep in vertex.store.all_endpoints():
                deployed += [(ep.name.rsplit("/", 1)[-1], dm.id) for dm in ep.deployed_models]
        body = forms.faults_view(
            self.ctx.faults.settings(), misbehaviours, deployed, message=message, error=error
        )
        return self._page("faults", body, status=status)

    def _configure(self, update: dict[str, Any]) -> Response:
        try:
            self.ctx.faults.configure(update)
        except ServiceError as exc:
            return self._faults_page(error=exc.message, status=400)
        return self._redirect(ROOT + "faults?saved=1")

    def _set_rates(self, request: Request) -> Response:
        form = _form(request)
        seed_text = form.get("seed", "").strip()
        try:
            seed = int(seed_text) if seed_text else None
        except ValueError:
            return self._faults_page(error="The seed must be a whole number.", status=400)
        try:
            update = {
                "inject_faults": _number(form, "inject_faults"),
                "drop_responses": _number(form, "drop_responses"),
                "op_delay": _number(form, "op_delay"),
                "seed": seed,
            }
        except ServiceError as exc:
            return self._faults_page(error=exc.message, status=400)
        return self._configure(update)

    def _add_rule(self, request: Request) -> Response:
        form = _form(request)
        rule = {
            "method": form.get("method", "").strip(),
            "count": form.get("count", "1"),
            "http_status": form.get("http_status", "503") or "503",
            "drop": form.get("drop") == "1",
        }
        if not rule["method"]:
            return self._faults_page(error="Name the API method the rule applies to.", status=400)
        return self._configure({"append_script": [rule]})

    def _clear_rules(self, request: Request) -> Response:
        return self._configure({"clear_script": True})

    def _misbehave(self, request: Request) -> Response:
        from deployer.emulator import misbehave

        form = _form(request)
        endpoint, _, deployed = form.get("target", "").partition("/")
        try:
            body = {
                "endpoint": endpoint,
                "deployed_model_id": deployed,
                "error_rate": _number(form, "error_rate"),
                "latency_ms": _number(form, "latency_ms"),
                "wrong_outputs": form.get("wrong_outputs") == "1",
            }
            parsed = misbehave.parse(body)
        except ServiceError as exc:
            return self._faults_page(error=exc.message, status=400)
        self._vertex().misbehaviours.set(*parsed)
        return self._redirect(ROOT + "faults?saved=1")


__all__ = ["Console"]
