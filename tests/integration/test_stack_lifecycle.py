"""The whole life of a stack through the CLI, against the real emulator process.

apply -> apply again is a no-op (zero mutating calls in the request log) -> change one
version's artifact (only changed files go up, one new version) -> 90/10 traffic (shifted
without undeploying) -> rename the registry model -> teardown leaves nothing labelled with the
stack.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.stacks import StackFiles, json_out, run_cli


def _apis(emulator, mutating_only: bool = True) -> list[str]:  # type: ignore[no-untyped-def]
    log = emulator.mutating_calls() if mutating_only else emulator.read_request_log()
    return [e["api"] for e in log]


@pytest.mark.timeout(600)
def test_apply_noop_change_artifact_shift_traffic_teardown(
    emulator, storage_client, tmp_path: Path
) -> None:
    files = StackFiles(tmp_path)
    spec = str(files.write())

    plan = run_cli(
        ["plan", spec, "--detailed-exitcode", "--output", "json"], emulator.url, expect=2
    )
    assert json_out(plan)["changes"] is True
    assert _apis(emulator) == []  # plan changes nothing

    first = json_out(run_cli(["apply", spec, "--yes", "--output", "json"], emulator.url))
    assert first["no_changes"] is False
    assert {u["files_uploaded"] for u in first["uploads"]} == {
        u["files_total"] for u in first["uploads"]
    }

    # 1. Re-apply of an unchanged spec: no mutating call at all, and "No changes".
    emulator.clear_request_log()
    again = run_cli(["apply", spec, "--yes"], emulator.url)
    assert "No changes" in again.stdout
    assert _apis(emulator) == []
    reads = _apis(emulator, mutating_only=False)
    assert len(reads) <= 5, reads
    run_cli(["plan", spec, "--detailed-exitcode"], emulator.url, expect=0)

    # 2. Retrain v2: a new artifact. Only the changed files are sent, one version created.
    retrained = files.retrain("v2", seed=3)
    emulator.clear_request_log()
    changed = json_out(run_cli(["apply", spec, "--yes", "--output", "json"], emulator.url))
    [upload] = changed["uploads"]
    assert upload["files_uploaded"] == len(retrained) < upload["files_total"], upload
    assert upload["files_copied"] == upload["files_total"] - upload["files_uploaded"]
    assert _apis(emulator).count("storage.objects.copy") == upload["files_copied"]
    apis = _apis(emulator)
    assert apis.count("upload") == 1  # one new model version
    assert "deployModel" not in apis  # v2 is not deployed yet: nothing to redeploy
    assert "deleteModelVersion" in apis  # the superseded v2 version went away

    # 3. 90/10 canary: deploy v2 next to v1 and shift traffic; nothing is undeployed.
    files.deployments = [("v1", 90), ("v2", 10)]
    files.write()
    emulator.clear_request_log()
    run_cli(["apply", spec, "--yes"], emulator.url)
    apis = _apis(emulator)
    assert apis.count("deployModel") == 1 and "undeployModel" not in apis
    status = json_out(run_cli(["status", spec, "--output", "json"], emulator.url))
    [ep] = status["endpoints"]
    assert sorted(d["traffic"] for d in ep["deployments"]) == [10, 90]
    [model] = status["models"]
    assert sorted(a for v in model["versions"] for a in v["aliases"]) == ["default", "v1", "v2"]

    # 4. The registry model's own display name and description: one model-level update,
    #    seen by an independent client, then no changes.
    from tests.integration._vertex import PARENT, gapic_clients

    clients = gapic_clients(emulator.url)  # an independent look, not deployer's own observe
    text = Path(spec).read_text()
    Path(spec).write_text(
        text.replace(
            "  - name: mnist\n",
            "  - name: mnist\n"
            "    display_name: MNIST digits\n"
            "    description: handwritten digits\n",
        )
    )
    planned = run_cli(["plan", spec], emulator.url)
    assert "update  model mnist  (display name and description changed)" in planned.stdout
    emulator.clear_request_log()
    run_cli(["apply", spec, "--yes"], emulator.url)
    assert _apis(emulator) == ["storage.objects.insert", "updateModel", "storage.objects.delete"]
    for v in clients.model.list_model_versions(name=model["resource"]):
        assert (v.display_name, v.description) == ("MNIST digits", "handwritten digits")
    run_cli(["plan", spec, "--detailed-exitcode"], emulator.url, expect=0)

    # 5. Teardown: nothing labelled with the stack is left, and the bucket is gone.
    run_cli(["teardown", spec, "--yes"], emulator.url)
    assert list(clients.model.list_models(parent=PARENT)) == []
    assert list(clients.endpoint.list_endpoints(parent=PARENT)) == []
    assert list(storage_client.list_buckets()) == []
    after = json_out(run_cli(["status", spec, "--output", "json"], emulator.url))
    assert after["models"] == [] and after["endpoints"] == []
    dry = run_cli(["teardown", spec, "--dry-run"], emulator.url)
    assert "Nothing to remove" in dry.stdout
