"""Local autoscaling: a deployed model with min < max replicas and a requests-per-minute or CPU
target gains replicas under a bounded loopback load and falls back to min after it, read back
through the official client (DeployedModel.status.available_replica_count) and `deployer
status`.

The emulator runs with a short evaluation interval and cool-down, and a cap of 2 replicas
below the spec's max of 3 (the cap is what a busy laptop keeps).
"""

from __future__ import annotations

import http.client
import json
import threading
from pathlib import Path
from typing import Any

import pytest

from deployer.providers.retry import poll_until
from tests.support.emulator import EmulatorProcess
from tests.support.stacks import StackFiles, json_out, run_cli

RPM = "aiplatform.googleapis.com/prediction/online/request_count"
CPU = "aiplatform.googleapis.com/prediction/online/cpu/utilization"
CAP = 2
# The most requests the load sends (about 3 minutes here): bounded even if no replica ever
# starts; it stops as soon as the replicas have risen (a new TF replica took 19 s under load).
BUDGET = 100_000
_budget = threading.Lock()


def _load(url: str, endpoint: str, stop: threading.Event, sent: list[int]) -> None:
    """POST predictions over one keep-alive connection until `stop` or the budget is spent."""
    body = json.dumps({"instances": [[[0.0] * 28] * 28]}).encode()
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=60)
    try:
        while not stop.is_set():
            with _budget:
                if sum(sent) >= BUDGET:
                    return
                sent[0] += 1
            conn.request(
                "POST", f"/v1/{endpoint}:predict", body, {"Content-Type": "application/json"}
            )
            resp = conn.getresponse()
            resp.read()
            assert resp.status == 200, resp.status
    finally:
        conn.close()


@pytest.mark.timeout(600)
@pytest.mark.parametrize(
    ("metric", "target"),
    [
        (RPM, 60),  # requests per minute per replica
        # Percent of one core per replica: a loaded replica used about 45% here, an idle one
        # well under 1%.
        (CPU, 5),
    ],
)
def test_replicas_rise_under_load_and_fall_back_to_min_after(
    tmp_path: Path, metric: str, target: int
) -> None:
    env = {
        "DEPLOYER_EMULATOR_AUTOSCALE_INTERVAL": "0.5",
        "DEPLOYER_EMULATOR_AUTOSCALE_COOLDOWN": "3",
        "DEPLOYER_EMULATOR_MAX_REPLICAS": str(CAP),
    }
    with EmulatorProcess(env=env) as emu:
        files = StackFiles(tmp_path, stack="scale", bucket="test-project-scale")
        spec = files.write()
        spec.write_text(
            spec.read_text().replace(
                "min_replicas: 1, max_replicas: 1}",
                "min_replicas: 1, max_replicas: 3,"
                f" autoscaling_metric_specs: [{{metric_name: {metric}, target: {target}}}]}}",
            )
        )
        run_cli(["apply", str(spec), "--yes"], emu.url)

        from tests.integration._vertex import PARENT, gapic_clients

        clients = gapic_clients(emu.url)
        [ep] = clients.endpoint.list_endpoints(parent=PARENT)

        def serving() -> int:
            got = clients.endpoint.get_endpoint(name=ep.name)
            return int(got.deployed_models[0].status.available_replica_count)

        assert serving() == 1

        seen: list[int] = []
        stop = threading.Event()
        sent = [0]
        errors: list[BaseException] = []

        def worker() -> None:
            try:
                _load(emu.url, ep.name, stop, sent)
            except BaseException as exc:  # reported by the test thread
                errors.append(exc)

        threads = [threading.Thread(target=worker) for _ in range(3)]
        for t in threads:
            t.start()
        try:
            # Far above the target: up to the cap, not the spec's 3.
            poll_until(serving, lambda n: n >= CAP, timeout=240, fixed=0.5, on_value=seen.append)
            status = json_out(run_cli(["status", str(spec), "--output", "json"], emu.url))
            [dep] = status["endpoints"][0]["deployments"]
            assert dep["replicas"] == {"min": 1, "max": 3, "available": CAP}
            text = run_cli(["status", str(spec)], emu.url).output
            assert f"replicas 1-3 ({CAP} serving)" in text, text
        finally:
            stop.set()
            for t in threads:
                t.join(timeout=120)
        assert not errors, errors
        assert max(seen) <= CAP
        load_sent = sent[0]
        assert 0 < load_sent <= BUDGET

        # Idle: back to min once the cool-down has passed.
        poll_until(serving, lambda n: n == 1, timeout=120, fixed=0.5)
        got: Any = clients.endpoint.get_endpoint(name=ep.name).deployed_models[0]
        assert got.status.last_update_time.timestamp() > 0
        # The remaining replica still serves.
        more = [BUDGET - 3]
        _load(emu.url, ep.name, threading.Event(), more)
        assert more == [BUDGET]
