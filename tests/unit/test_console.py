"""The console's pieces without a server: the activity window, escaping, the views' HTML."""

from __future__ import annotations

import json
import time

from deployer.emulator.console.activity import Activity
from deployer.emulator.console.data import DeployedView, EndpointView
from deployer.emulator.console.forms import faults_view
from deployer.emulator.console.markup import Markup, esc, fill, table
from deployer.emulator.console.views import endpoints_view

EP = "projects/123/locations/us-central1/endpoints/ep1"
PREDICT = "/v1/projects/p/locations/us-central1/endpoints/ep1:predict"


def _predict(
    activity: Activity, status: int, body: bytes, *, started: float, **headers: str
) -> None:
    activity.record(
        method="POST",
        path=PREDICT,
        api="predict",
        status=status,
        started=started,
        fault=None,
        body=body,
        headers=headers,
    )


def test_predict_calls_are_counted_for_the_deployed_model_that_answered_or_failed() -> None:
    activity = Activity()
    now = time.time()
    for _ in range(9):
        _predict(
            activity, 200, b'{"predictions":[1],"deployedModelId":"11","model":"m"}', started=now
        )
    failure = {
        "error": {"code": 500, "message": "Deployed model 22 failed: misbehaving on purpose"}
    }
    _predict(activity, 500, json.dumps(failure).encode(), started=now)
    _predict(activity, 200, b"{}", started=now, **{"X-Vertex-AI-Deployed-Model-Id": "22"})
    _predict(activity, 503, b'{"error": {"message": "starting"}}', started=now)
    _predict(activity, 200, b'{"deployedModelId":"11"}', started=now - 120)  # outside the window

    stats = activity.endpoint_stats(EP, window_s=60, now=now)

    assert stats["11"].requests == 9 and stats["11"].errors == 0
    assert stats["22"].requests == 2 and stats["22"].error_rate == 0.5
    assert stats[None].requests == 1 and stats[None].errors == 1
    assert stats["11"].rate_per_s == 9 / 60
    assert activity.endpoint_stats(EP.replace("ep1", "other"), now=now) == {}


def test_the_request_log_filters_by_method_service_path_and_status_class() -> None:
    activity = Activity(capacity=3)
    for method, api, status in (
        ("GET", "storage.objects.get", 404),
        ("POST", "predict", 200),
        ("POST", "storage.objects.insert", 200),
        ("DELETE", "deleteEndpoint", 200),
    ):
        activity.record(
            method=method,
            path="/x/" + api,
            api=api,
            status=status,
            started=1.0,
            fault=None,
            body=None,
            headers={},
        )
    assert [c.api for c in activity.calls()] == [
        "predict",
        "storage.objects.insert",
        "deleteEndpoint",
    ]
    assert [c.api for c in activity.recent(method="post")] == ["storage.objects.insert", "predict"]
    assert [c.api for c in activity.recent(service="storage")] == ["storage.objects.insert"]
    assert [c.api for c in activity.recent(path="Endpoint", status="2xx")] == ["deleteEndpoint"]
    assert activity.recent(status="404") == [] and activity.recent(status="bogus") == []


def test_everything_is_escaped_unless_it_is_markup_already() -> None:
    name = '<img src=x onerror="alert(1)">&'
    assert esc(name) == "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;&amp;"
    assert fill('<a title="$t">$t</a>', t=name).count("<img") == 0
    assert fill("<p>$m</p>", m=Markup("<b>ok</b>")) == "<p><b>ok</b></p>"
    html = table("c<", ["h&"], [[name]])
    assert "<img" not in html and "c&lt;" in html and "h&amp;" in html


def test_the_split_bar_and_the_table_say_the_same_percentages() -> None:
    deployed = tuple(
        DeployedView(
            dm, "projects/1/locations/l/models/m", v, "", pct, "deployed", 1, 1, 1, 2, "n1", None
        )
        for dm, v, pct in (("11", "1", 90), ("22", "2", 10))
    )
    html = endpoints_view([EndpointView(EP, "ep <1>", {"a": "<b>"}, deployed, None)])
    assert 'data-deployed-model-id="11" data-traffic="90"' in html
    assert 'x="90" y="0" width="10"' in html
    assert 'aria-label="Traffic split: 11 90%, 22 10%"' in html
    assert "<td>90%</td>" in html and "<td>10%</td>" in html
    assert "ep &lt;1&gt;" in html and "<b>" not in html


def test_every_fault_control_has_a_label() -> None:
    settings = {
        "inject_faults": 0.0,
        "drop_responses": 0.0,
        "op_delay": 0.0,
        "seed": None,
        "script": [],
        "injected": 0,
        "dropped": 0,
    }
    html = faults_view(settings, [], [("ep1", "11")])
    import re

    ids = re.findall(r'<(?:input|select|textarea)[^>]* id="([^"]+)"', html)
    assert ids and all(f'<label for="{i}"' in html for i in ids)
