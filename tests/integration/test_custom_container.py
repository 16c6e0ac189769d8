"""Custom containers under Vertex's contract, run with Podman or Docker: the example server's
image reads its model from the emulator's Cloud Storage, serves the AIP_* routes, and is
removed when its replica is stopped or when the emulator dies by SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from deployer.emulator.vertex import containers
from deployer.emulator.vertex.containers import ContainerSpec, Placement
from tests.integration._vertex import put_tree
from tests.integration.test_serve_support import ROOT, http
from tests.support.containers import containers_labelled, example_image
from tests.support.emulator import EmulatorProcess, free_port
from tests.support.frameworks import rows, server_module, train_all


def _wait_health(url: str, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if http("GET", url, timeout=2)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"not healthy after {timeout}s: {log.read_text(errors='replace')}")


@pytest.mark.timeout(900)
def test_container_serves_from_the_emulators_storage_and_dies_with_its_parent(
    tmp_path: Path, emulator: EmulatorProcess, storage_client: Any
) -> None:
    image = example_image()
    models, data = train_all(tmp_path)
    uri = put_tree(storage_client, "custom-bucket", "models/custom", models / "custom_diabetes")
    port = free_port()
    where = Placement(
        endpoint_id="111",
        deployed_model_id="222",
        project_number="333",
        storage_uri=uri,
        emulator_url=emulator.url,
        port=port,
    )
    owner = containers.owner_label(str(tmp_path))
    name = f"deployer-test-{owner[:8]}-{port}"
    cmd = containers.launch_command(
        containers.find_runtime(),
        name,
        containers.run_args(ContainerSpec(image=image), where, owner=owner),
        parent_pid=0,  # the stand-in below puts its own pid here
    )
    log = tmp_path / "container.log"
    # A stand-in for the emulator: the replica's parent, killed with SIGKILL below.
    parent_code = (
        "import os, subprocess, sys, time\n"
        "cmd = sys.argv[2:]\n"
        "cmd[cmd.index('--parent') + 1] = str(os.getpid())\n"
        "with open(sys.argv[1], 'ab') as log:\n"
        "    subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)\n"
        "time.sleep(3600)\n"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", parent_code, str(log), *cmd],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_health(base + "/v1/endpoints/111/deployedModels/222", log)
        instances = rows(data, "diabetes")
        status, body = http(
            "POST", base + "/v1/endpoints/111/deployedModels/222:predict", {"instances": instances}
        )
        assert status == 200, body
        model = json.loads((models / "custom_diabetes" / "model.json").read_text())
        assert body == {"predictions": server_module().predict(model, instances)}
        assert containers_labelled(owner) == [name]
        assert f"model loaded from {uri}" in log.read_text()
    finally:
        parent.send_signal(signal.SIGKILL)
        parent.wait()
    deadline = time.monotonic() + 30
    while containers_labelled(owner) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert containers_labelled(owner) == [], log.read_text(errors="replace")


@pytest.mark.timeout(300)
def test_sweep_removes_containers_a_killed_emulator_left(tmp_path: Path) -> None:
    image = example_image()
    runtime = containers.find_runtime()
    owner = containers.owner_label(str(tmp_path))
    subprocess.run(
        [runtime, "create", "--label", f"{containers.LABEL}={owner}", image],
        check=True,
        capture_output=True,
        timeout=60,
    )
    assert len(containers_labelled(owner)) == 1
    assert containers.sweep(owner) == 1
    assert containers_labelled(owner) == []
