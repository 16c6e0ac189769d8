"""The emulator console in a real browser: headless Chromium (Debian's package) under Playwright.

One emulator for the module, with state made the way a user makes it: `deployer apply` of a
two-version MNIST-shaped model on an endpoint split 90/10, `deployer batch-predict` of a job
with two bad rows, a bucket with hostile object names written with google-cloud-storage, and
predictions through the official client. Each test opens a view and checks what a person sees
there against what the API says (GAPIC clients, the storage client, the admin routes), then
saves a screenshot under test-artifacts/console/<view>.png (DEPLOYER_TEST_ARTIFACTS moves it).

Chromium is contained to loopback: besides the flags that turn its background services off
(--disable-background-networking, --disable-component-update, --disable-sync, --no-first-run,
--disable-quic), every host name but localhost resolves to nothing (--host-resolver-rules),
any other address goes to a proxy on a closed loopback port (--proxy-server; loopback itself
bypasses proxies), and every request a page makes passes a route that aborts and records
anything not on 127.0.0.1; the last test proves a page cannot reach 192.0.2.1 or a name.
The session's Python network guard does not cover the browser, hence these.

Without Chromium or Playwright the module is skipped, except under CI=true, where it fails.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.integration._vertex import gapic_clients
from tests.integration.conftest import make_storage_client
from tests.support.emulator import EmulatorProcess
from tests.support.stacks import StackFiles, run_cli

CHROMIUM = Path("/usr/bin/chromium")
REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("DEPLOYER_TEST_ARTIFACTS", REPO / "test-artifacts")) / "console"
PARENT = "projects/test-project/locations/us-central1"
HOSTILE = (
    "<script>alert(1)</script>",
    "../x",
    "dir/<img src=x onerror=alert(2)>.txt",
    'dir/"quoted" & <b>bold</b>',
    "dir/sub/deep.json",
)
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
    "--proxy-server=http://127.0.0.1:9",
]


def _browser_or_skip() -> Any:
    """Playwright's sync API, or skip (fail under CI) when it or Chromium is missing."""
    why = None
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        why = "playwright is not installed (pip install -e '.[test]')"
    if why is None and not CHROMIUM.exists():
        why = f"{CHROMIUM} is missing (apt-get install chromium chromium-driver)"
    if why is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"the browser tests must run in CI: {why}")
        pytest.skip(why)
    return sync_playwright


@dataclass
class World:
    emulator: EmulatorProcess
    console: str  # http://127.0.0.1:PORT/_console/
    files: StackFiles
    clients: Any  # tests.integration._vertex.Clients
    storage: Any  # google.cloud.storage.Client
    bucket: str  # the hostile bucket
    endpoint: Any  # the 90/10 Endpoint proto, from the API
    job: Any  # the batch job, from the API
    instance: list[Any]  # one input the models take


def _console_url(emulator: EmulatorProcess) -> str:
    match = re.search(r"console at (http://127\.0\.0\.1:\d+/_console/)", emulator.stderr_tail(200))
    assert match, f"the emulator printed no console URL:\n{emulator.stderr_tail()}"
    return match.group(1)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    _browser_or_skip()
    root = tmp_path_factory.mktemp("console")
    with EmulatorProcess() as emulator:
        files = StackFiles(
            root,
            stack="console",
            bucket="test-project-console",
            deployments=[("v1", 90), ("v2", 10)],
        )
        rows = [json.dumps({"flatten_input": [[0.01 * (i % 7)] * 28] * 28}) for i in range(20)]
        rows[3] = rows[11] = json.dumps({"flatten_input": [1.0, 2.0]})  # wrong shape: fails
        (root / "in.jsonl").write_text("\n".join(rows) + "\n")
        files.extra = (
            "batch_jobs:\n"
            "  - name: score\n"
            "    model: mnist@v2\n"
            "    input: {path: in.jsonl, format: jsonl}\n"
            "    output: {prefix: predictions/}\n"
            "    machine_type: n1-standard-2\n"
        )
        files.write()
        run_cli(["apply", str(files.spec_path), "--yes"], emulator.url)
        run_cli(["batch-predict", str(files.spec_path), "--json"], emulator.url)
        clients = gapic_clients(emulator.url)
        endpoint = next(iter(clients.endpoint.list_endpoints(parent=PARENT)))
        job = next(iter(clients.job.list_batch_prediction_jobs(parent=PARENT)))

        storage = make_storage_client(emulator.url)
        bucket = storage.create_bucket("console-hostile")
        for name in HOSTILE:
            bucket.blob(name).upload_from_string(
                f"bytes of {name}".encode(), content_type="text/html"
            )
        instance = [[[0.5] * 28] * 28]
        for _ in range(12):
            clients.prediction.predict(endpoint=endpoint.name, instances=_values(instance))
        yield World(
            emulator,
            _console_url(emulator),
            files,
            clients,
            storage,
            "console-hostile",
            endpoint,
            job,
            instance,
        )


def _values(instances: list[Any]) -> list[Any]:
    from google.protobuf import json_format, struct_pb2

    out = []
    for inst in instances:
        value = struct_pb2.Value()
        json_format.ParseDict(inst, value)
        out.append(value)
    return out


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    sync_playwright = _browser_or_skip()
    profile = tempfile.mkdtemp(prefix="deployer-chromium-")  # a new, empty profile
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            profile,
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_FLAGS,
            accept_downloads=True,
            viewport={"width": 1280, "height": 900},
        )
        yield context
        context.close()
    shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh tab that records dialogs (an XSS would raise one) and leaves of loopback."""
    tab = browser.new_page()
    tab.dialogs = []
    tab.left_loopback = []
    tab.on("dialog", lambda d: (tab.dialogs.append(d.message), d.dismiss()))

    def only_loopback(route: Any) -> None:
        host = urlsplit(route.request.url).hostname
        if host in ("127.0.0.1", "localhost") or route.request.url.startswith("data:"):
            route.continue_()
        else:
            tab.left_loopback.append(route.request.url)
            route.abort()

    tab.route("**/*", only_loopback)
    yield tab
    assert tab.dialogs == [], "a page ran script it was shown as data"
    assert tab.left_loopback == [], "a page asked for something off loopback"
    tab.close()


def _shot(page: Any, view: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{view}.png"), full_page=True)


def _open(page: Any, world: World, view: str, **query: str) -> None:
    from urllib.parse import urlencode

    url = world.console + view + ("?" + urlencode(query) if query else "")
    response = page.goto(url)
    assert response is not None and response.status == 200, (url, response and response.status)
    assert page.locator("h1").count() == 1


def _cells(page: Any, table: Any) -> list[list[str]]:
    return [
        [c.strip() for c in row.locator("td").all_inner_texts()]
        for row in table.locator("tbody tr").all()
    ]


def test_models_view_lists_each_version_with_its_aliases(world: World, page: Any) -> None:
    _open(page, world, "models")
    models = list(world.clients.model.list_models(parent=PARENT))
    assert models
    for model in models:
        versions = list(world.clients.model.list_model_versions(name=model.name))
        table = page.get_by_role("table", name=re.compile(f"Versions of {model.display_name}$"))
        shown = {row[0]: row[1] for row in _cells(page, table)}
        assert shown == {v.version_id: ", ".join(v.version_aliases) or "none" for v in versions}
    _shot(page, "models")


def test_endpoints_view_draws_the_split_and_each_deployed_models_replicas_and_traffic(
    world: World, page: Any
) -> None:
    ep = world.clients.endpoint.get_endpoint(name=world.endpoint.name)
    _open(page, world, "endpoints")
    card = page.locator(f'section[data-endpoint="{ep.name}"]')
    bars = {
        r.get_attribute("data-deployed-model-id"): int(r.get_attribute("width"))
        for r in card.locator("rect.split").all()
    }
    assert bars == {k: v for k, v in ep.traffic_split.items() if v} and sorted(bars.values()) == [
        10,
        90,
    ]
    label = card.get_by_role("img").get_attribute("aria-label")
    for dm_id, pct in ep.traffic_split.items():
        assert f"{dm_id} {pct}%" in label
    rows = {r[0]: r for r in _cells(page, card.get_by_role("table"))}
    assert set(rows) == {dm.id for dm in ep.deployed_models}
    total = 0
    for dm in ep.deployed_models:
        row = rows[dm.id]
        assert row[2] == f"{ep.traffic_split[dm.id]}%"
        assert row[3] == "deployed"
        replicas = dm.dedicated_resources.min_replica_count
        assert (
            row[4] == f"{replicas} (min {replicas}, max {dm.dedicated_resources.max_replica_count})"
        )
        total += int(re.search(r"\((\d+) in 60 s\)", row[6]).group(1)) if "in 60 s" in row[6] else 0
        assert re.fullmatch(r"\d+\.\d% \(\d+\)|-", row[7])
    # The fixture's 12 predictions, each counted for the deployed model that answered.
    assert total >= 12
    _shot(page, "endpoints")


def test_jobs_view_shows_the_jobs_state_progress_and_errors(world: World, page: Any) -> None:
    job = world.clients.job.get_batch_prediction_job(name=world.job.name)
    _open(page, world, "jobs")
    card = page.get_by_role("region", name=job.display_name)
    facts = dict(
        zip(
            card.locator("dt").all_inner_texts(),
            card.locator("dd").all_inner_texts(),
            strict=True,
        )
    )
    assert facts["State"] == job.state.name
    stats = job.completion_stats
    assert facts["Successful"] == str(stats.successful_count)
    assert facts["Failed"] == str(stats.failed_count) == "2"
    progress = card.locator("progress")
    assert progress.get_attribute("value") == str(stats.successful_count + stats.failed_count)
    assert facts["Output"] == job.output_info.gcs_output_directory
    _shot(page, "jobs")


def test_bucket_browser_lists_what_the_api_lists_and_shows_hostile_names_as_text(
    world: World, page: Any
) -> None:
    _open(page, world, "buckets")
    assert page.get_by_role("link", name=world.bucket).count() == 1
    _shot(page, "buckets")
    page.get_by_role("link", name=world.bucket).click()
    api = world.storage.list_blobs(world.bucket, delimiter="/")
    names = [b.name for b in api]
    folders = sorted(api.prefixes)
    table = page.get_by_role("table")
    shown = [row[0] for row in _cells(page, table)]
    assert shown == folders + names
    # Hostile names are text: no element they spell was created, no script ran.
    assert page.locator("main img, main b, main script").count() == 0
    assert "<script>alert(1)</" in shown  # "/" makes it a folder, shown as its text
    page.get_by_role("link", name="dir/").click()
    sub = world.storage.list_blobs(world.bucket, prefix="dir/", delimiter="/")
    sub_names = [b.name.removeprefix("dir/") for b in sub]
    assert [row[0] for row in _cells(page, page.get_by_role("table"))] == [
        p.removeprefix("dir/") for p in sorted(sub.prefixes)
    ] + sub_names
    assert page.locator("main img, main b").count() == 0
    _shot(page, "bucket")


def test_object_view_shows_metadata_and_downloads_the_bytes(world: World, page: Any) -> None:
    name = "dir/<img src=x onerror=alert(2)>.txt"
    blob = world.storage.bucket(world.bucket).get_blob(name)
    _open(page, world, "object", bucket=world.bucket, name=name)
    facts = dict(
        zip(page.locator("dt").all_inner_texts(), page.locator("dd").all_inner_texts(), strict=True)
    )
    assert facts["Name"] == name
    assert facts["Size"] == f"{blob.size} bytes"
    assert facts["MD5 (base64)"] == blob.md5_hash
    assert facts["Generation"] == str(blob.generation)
    assert page.locator("main img").count() == 0
    _shot(page, "object")
    with page.expect_download() as info:
        page.get_by_role("link", name="Download").click()
    download = info.value
    assert Path(download.path()).read_bytes() == blob.download_as_bytes()
    assert download.suggested_filename.endswith(".txt")


def test_request_log_filters_match_the_emulators_request_log(world: World, page: Any) -> None:
    _open(page, world, "requests")
    page.get_by_label("Method", exact=True).select_option("POST")
    page.get_by_label("Service").select_option("vertex")
    page.get_by_label("Status").select_option("2xx")
    page.get_by_label("Path or API method contains").fill(":predict")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url(re.compile(r"requests\?"))
    rows = _cells(page, page.get_by_role("table", name="API calls"))
    logged = [
        e
        for e in world.emulator.read_request_log()
        if e["method"] == "POST" and 200 <= e["status"] < 300 and ":predict" in e["path"]
    ]
    assert len(rows) == len(logged) >= 12
    assert all(r[1] == "POST" and r[3] == "predict" and r[5].startswith("2") for r in rows)
    assert [r[2] for r in rows] == [e["path"] for e in reversed(logged)]
    _shot(page, "requests")


def test_try_predict_answers_what_the_apis_predict_answers(world: World, page: Any) -> None:
    _open(page, world, "predict")
    page.get_by_label("Endpoint").select_option(world.endpoint.name)
    page.get_by_label(re.compile("^Instances")).fill(json.dumps(world.instance))
    page.get_by_role("button", name="Predict").click()
    answer = json.loads(page.locator("#predict-response").inner_text())
    assert page.get_by_role("heading", name="Response: HTTP 200").count() == 1
    # The split picks a deployed model at random: ask the API until the same one answers.
    for _ in range(60):
        api = world.clients.prediction.predict(
            endpoint=world.endpoint.name, instances=_values(world.instance)
        )
        if api.deployed_model_id == answer["deployedModelId"]:
            break
    else:
        pytest.fail("the API never answered from the console's deployed model")
    assert [list(p) for p in api.predictions] == answer["predictions"]
    assert api.model_version_id == answer["modelVersionId"]
    _shot(page, "predict")


def test_fault_controls_set_what_the_admin_api_reports(world: World, page: Any) -> None:
    _open(page, world, "faults")
    page.get_by_label(re.compile("^Seconds long-running")).fill("0.25")
    page.get_by_role("button", name="Save fault rates").click()
    assert page.get_by_role("status").filter(has_text="Saved.").count() == 1
    assert world.emulator.admin()["op_delay"] == 0.25
    page.get_by_label(re.compile("^API method")).fill("deployModel")
    page.get_by_label("How many calls").fill("2")
    page.get_by_label("HTTP status answered").fill("429")
    page.get_by_role("button", name="Add rule").click()
    script = world.emulator.admin()["script"]
    assert [(r["method"], r["count"], r["http_status"]) for r in script] == [
        ("deployModel", 2, 429)
    ]
    table = page.get_by_role("table", name="Pending scripted faults")
    assert _cells(page, table)[0][:3] == ["deployModel", "2", "429"]
    dm = world.endpoint.deployed_models[0].id
    ep_id = world.endpoint.name.rsplit("/", 1)[1]
    page.get_by_label("Deployed model", exact=True).select_option(f"{ep_id}/{dm}")
    page.get_by_label(re.compile("^Share of its predictions")).fill("0.5")
    page.get_by_role("button", name=re.compile("^Apply")).click()
    shown = world.emulator._call("GET", "/_emulator/misbehave")["misbehaviours"]
    assert [(m["endpoint"], m["deployed_model_id"], m["error_rate"]) for m in shown] == [
        (ep_id, dm, 0.5)
    ]
    _shot(page, "faults")
    # Put it all back for the other tests.
    page.get_by_role("button", name="Clear scripted faults").click()
    page.get_by_label("Deployed model", exact=True).select_option(f"{ep_id}/{dm}")
    page.get_by_role("button", name=re.compile("^Apply")).click()
    page.get_by_label(re.compile("^Seconds long-running")).fill("0")
    page.get_by_role("button", name="Save fault rates").click()
    assert world.emulator.admin()["script"] == []
    assert world.emulator._call("GET", "/_emulator/misbehave")["misbehaviours"] == []


_VIEWS = ("models", "endpoints", "jobs", "buckets", "requests", "predict", "faults")
_CONTROL_ROLES = {"textbox", "searchbox", "combobox", "spinbutton", "checkbox", "button", "link"}


@pytest.mark.parametrize("view", _VIEWS)
def test_every_control_has_an_accessible_name_and_one_h1(
    world: World, page: Any, view: str
) -> None:
    _open(page, world, view)
    cdp = page.context.new_cdp_session(page)
    tree = cdp.send("Accessibility.getFullAXTree")["nodes"]
    unnamed = [
        n
        for n in tree
        if not n.get("ignored")
        and n.get("role", {}).get("value") in _CONTROL_ROLES
        and not n.get("name", {}).get("value", "").strip()
    ]
    assert unnamed == []
    roles = [n.get("role", {}).get("value") for n in tree if not n.get("ignored")]
    assert "main" in roles and "navigation" in roles
    assert page.locator("h1").count() == 1


def test_tab_order_reaches_every_form_control_with_visible_focus(world: World, page: Any) -> None:
    _open(page, world, "faults")
    wanted = set(
        page.locator("main input, main select, main button, main textarea").evaluate_all(
            "els => els.map(e => e.id || e.textContent.trim())"
        )
    )
    reached: list[str] = []
    for _ in range(80):
        page.keyboard.press("Tab")
        focus = page.evaluate(
            """() => { const e = document.activeElement;
                       const s = getComputedStyle(e);
                       return [e.id || e.textContent.trim(), s.outlineStyle, s.outlineWidth]; }"""
        )
        reached.append(focus[0])
        if focus[0] in wanted:
            assert focus[1] == "solid" and focus[2] != "0px", f"no visible focus on {focus[0]}"
        if wanted <= set(reached):
            break
    assert wanted <= set(reached), sorted(wanted - set(reached))
    # The skip link comes first and takes a keyboard user to the content.
    assert reached[0] == "Skip to content"


def test_the_browser_cannot_leave_loopback(world: World, browser: Any, page: Any) -> None:
    targets = ["http://192.0.2.1/", "http://example.com/"]
    probe = "u => fetch(u, {mode: 'no-cors'}).then(() => 'answered', () => 'failed')"
    # Beneath the tests' route: Chromium itself resolves no name and reaches no address.
    bare = browser.new_page()
    failures: list[tuple[str, str]] = []
    bare.on("requestfailed", lambda r: failures.append((r.url, r.failure)))
    try:
        bare.goto("about:blank")
        assert [bare.evaluate(probe, url) for url in targets] == ["failed", "failed"]
    finally:
        bare.close()
    assert [url for url, _ in failures] == targets
    assert all(why.startswith("net::ERR_PROXY_CONNECTION_FAILED") for _, why in failures)
    # And the route every test page has records and aborts such a request.
    page.goto("about:blank")
    assert [page.evaluate(probe, url) for url in targets] == ["failed", "failed"]
    assert page.left_loopback == targets
    page.left_loopback.clear()


TOKEN = "console-browser-token-0123456789"


def test_the_printed_token_url_logs_the_browser_in_with_an_httponly_cookie(
    browser: Any, page: Any
) -> None:
    with EmulatorProcess(env={"DEPLOYER_EMULATOR_TOKEN": TOKEN}, wire_contract=False) as emu:
        console = _console_url(emu)
        try:
            refused = page.goto(console + "faults")
            assert refused is not None and refused.status == 403
            assert "carries the token once" in page.locator("main").inner_text()
            answered = page.goto(console + f"faults?access_token={TOKEN}")
            assert answered is not None and answered.status == 200
            assert page.url == console + "faults"  # the token left the address bar
            (cookie,) = [
                c for c in browser.cookies(console) if c["name"] == "deployer_emulator_token"
            ]
            assert (
                cookie["value"] == TOKEN and cookie["httpOnly"] and cookie["sameSite"] == "Strict"
            )
            assert page.evaluate("document.cookie") == ""  # no script can read it
            page.get_by_label(re.compile("^Seconds long-running")).fill("0.5")
            page.get_by_role("button", name="Save fault rates").click()
            assert page.get_by_role("status").filter(has_text="Saved.").count() == 1
            import urllib.request

            request = urllib.request.Request(
                emu.url + "/_emulator/faults", headers={"Authorization": f"Bearer {TOKEN}"}
            )
            with urllib.request.urlopen(request, timeout=10) as resp:
                assert json.loads(resp.read())["op_delay"] == 0.5
            _shot(page, "token-login")
        finally:
            browser.clear_cookies()
