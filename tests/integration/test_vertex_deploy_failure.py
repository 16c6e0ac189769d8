"""A deploy whose replica cannot load the model fails with the replica's own cause (issue 15):
the official GAPIC client, on the emulator, deploys a SavedModel whose saved_model.pb is cut
short (deployer's validate, which refuses it, is bypassed); the failed operation's error message
names the cause the replica printed, not only a log to go and read."""

from __future__ import annotations

from pathlib import Path

import pytest
from google.api_core import exceptions as gexc

from tests.integration._vertex import (
    PARENT,
    dedicated,
    gapic_clients,
    put_tree,
    replica_pids,
    upload_model,
)
from tests.integration.conftest import make_storage_client
from tests.support.emulator import EmulatorProcess
from tests.support.savedmodel_pb import broken_variants

pytestmark = pytest.mark.timeout(240)


def test_a_replica_that_cannot_load_puts_its_cause_in_the_operation_error(
    emulator: EmulatorProcess, tmp_path: Path
) -> None:
    from google.cloud import aiplatform_v1 as v1

    broken = tmp_path / "0001"
    broken.mkdir()
    (broken / "saved_model.pb").write_bytes(broken_variants()["corrupt_truncated"])
    clients = gapic_clients(emulator.url)
    uri = put_tree(make_storage_client(emulator.url), "broken-bucket", "m/0001", broken)
    model = upload_model(clients, uri, model_id="broken").model  # the registry checks the name only
    endpoint = clients.endpoint.create_endpoint(
        parent=PARENT, endpoint=v1.Endpoint(display_name="broken"), endpoint_id="broken"
    ).result(timeout=30)
    op = clients.endpoint.deploy_model(
        endpoint=endpoint.name,
        traffic_split={"0": 100},
        deployed_model=v1.DeployedModel(model=model, id="7", dedicated_resources=dedicated()),
    )
    with pytest.raises(gexc.GoogleAPICallError) as info:
        op.result(timeout=200)
    message = info.value.message
    # the replica's `error: ...` line, first, with TensorFlow's own words and the file
    assert "exited with status 1 while loading the model: model " in message, message
    assert "failed to load" in message and "saved_model.pb" in message, message
    assert "Error parsing message" in message or "corrupt" in message, message
    assert "(full log: " in message and message.endswith(".log)"), message
    # not the log's tail: no TensorFlow start-up chatter, no log lines joined by " | "
    assert " | " not in message and "oneDNN" not in message, message
    assert replica_pids(emulator.data_dir) == []
    got = clients.endpoint.get_endpoint(name=endpoint.name)
    assert list(got.deployed_models) == []
