"""Object names never become paths outside the emulator's data dir (issue 15, containment).

GCS object names may hold `..` segments, a leading `/` (after a prefix), backslashes or
NUL: they are stored as names, but deploying a model or running a batch job copies an
artifact's objects to a local cache, and there a name is a path. These tests upload such
names under an artifact prefix with the official storage client, then deploy (GAPIC) or run a
batch job over it, and check that the work fails naming the object and that nothing was
written outside the data dir.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration._vertex import PARENT, dedicated, gapic_clients, upload_model, wait_for
from tests.integration.conftest import make_storage_client
from tests.support.emulator import EmulatorProcess

pytestmark = pytest.mark.timeout(180)


def _deploy(emu: EmulatorProcess, artifact_uri: str, endpoint_id: str) -> str:
    """Upload a model over `artifact_uri`, deploy it; returns the operation's error message."""
    from google.cloud import aiplatform_v1 as v1

    clients = gapic_clients(emu.url)
    model = upload_model(clients, artifact_uri, model_id=f"m-{endpoint_id}").model
    ep = clients.endpoint.create_endpoint(
        parent=PARENT, endpoint=v1.Endpoint(display_name=endpoint_id), endpoint_id=endpoint_id
    ).result(timeout=30)
    op = clients.endpoint.deploy_model(
        endpoint=ep.name,
        traffic_split={"0": 100},
        deployed_model=v1.DeployedModel(model=model, dedicated_resources=dedicated()),
    )
    with pytest.raises(Exception) as info:
        op.result(timeout=120)
    return str(info.value)


def test_deploy_with_a_dotdot_object_name_writes_nothing_outside_the_data_dir(
    tmp_path: Path,
) -> None:
    with EmulatorProcess(data_dir=tmp_path / "a" / "b" / "c" / "data") as emu:
        bucket = make_storage_client(emu.url).create_bucket("b1x")
        bucket.blob("m/saved_model.pb").upload_from_string(b"not a model")
        # From <data>/vertex/artifacts/.tmp-*/ this climbs to tmp_path/a/b/c/victim.txt.
        evil = "m/../../../../victim.txt"
        bucket.blob(evil).upload_from_string(b"owned")
        assert bucket.get_blob(evil) is not None  # stored as a name, as GCS does
        message = _deploy(emu, "gs://b1x/m/", "ep-dotdot")
        assert "m/../../../../victim.txt" in message
        assert "'..'" in message
    assert list(tmp_path.rglob("victim.txt")) == []


def test_deploy_with_an_absolute_object_name_writes_nothing_there(tmp_path: Path) -> None:
    target = tmp_path / "abs-victim.txt"
    with EmulatorProcess(data_dir=tmp_path / "data") as emu:
        bucket = make_storage_client(emu.url).create_bucket("b2x")
        bucket.blob("m/saved_model.pb").upload_from_string(b"not a model")
        bucket.blob(f"m/{target}").upload_from_string(b"owned")  # "m//tmp/.../abs-victim.txt"
        message = _deploy(emu, "gs://b2x/m/", "ep-abs")
        assert str(target) in message
    assert not target.exists()


def test_batch_job_over_a_dotdot_artifact_fails_naming_the_object(tmp_path: Path) -> None:
    from google.cloud import aiplatform_v1 as v1

    with EmulatorProcess(data_dir=tmp_path / "a" / "b" / "c" / "data") as emu:
        storage = make_storage_client(emu.url)
        bucket = storage.create_bucket("b3x")
        bucket.blob("m/saved_model.pb").upload_from_string(b"not a model")
        bucket.blob("m/../../../../victim.txt").upload_from_string(b"owned")
        bucket.blob("in/instances.jsonl").upload_from_string(b"[1.0]\n[2.0]\n")
        clients = gapic_clients(emu.url)
        model = upload_model(clients, "gs://b3x/m/", model_id="m-batch").model
        job_client = v1.JobServiceClient(
            transport="rest",
            client_options={"api_endpoint": emu.url},
            credentials=_anonymous(),
        )
        job = job_client.create_batch_prediction_job(
            parent=PARENT,
            batch_prediction_job=v1.BatchPredictionJob(
                display_name="evil",
                model=model,
                input_config=v1.BatchPredictionJob.InputConfig(
                    instances_format="jsonl",
                    gcs_source=v1.GcsSource(uris=["gs://b3x/in/instances.jsonl"]),
                ),
                output_config=v1.BatchPredictionJob.OutputConfig(
                    predictions_format="jsonl",
                    gcs_destination=v1.GcsDestination(output_uri_prefix="gs://b3x/out/"),
                ),
                dedicated_resources=v1.BatchDedicatedResources(
                    machine_spec=v1.MachineSpec(machine_type="n1-standard-2"),
                    starting_replica_count=1,
                ),
            ),
        )
        done = wait_for(
            lambda: (
                j
                if (j := job_client.get_batch_prediction_job(name=job.name)).state
                in (v1.JobState.JOB_STATE_FAILED, v1.JobState.JOB_STATE_SUCCEEDED)
                else None
            ),
            timeout=120,
        )
        assert done.state == v1.JobState.JOB_STATE_FAILED
        assert "m/../../../../victim.txt" in done.error.message
    assert list(tmp_path.rglob("victim.txt")) == []


def _anonymous():  # type: ignore[no-untyped-def]
    from google.auth.credentials import AnonymousCredentials

    return AnonymousCredentials()
