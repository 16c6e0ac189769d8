"""The production settings as the official GAPIC v1 messages carry them (no server needed:
the messages are the real types the clients send, serialized as the REST transport does)."""

from __future__ import annotations

import json

from google.cloud.aiplatform_v1.types import batch_prediction_job as bpj
from google.cloud.aiplatform_v1.types import endpoint as ep
from google.cloud.aiplatform_v1.types import io
from google.cloud.aiplatform_v1.types import machine_resources as mr

from deployer.providers import vertex_production as production
from deployer.spec.production_model import (
    AutoscalingMetric,
    AutoscalingMetricSpec,
    BatchJobSettings,
    DeployedModelSettings,
    EndpointSettings,
    InstanceConfig,
    PredictionsFormat,
    PrivateServiceConnectConfig,
    RequestResponseLogging,
)

CPU = AutoscalingMetric.CPU_UTILIZATION.value
KEY = "projects/p/locations/us-central1/keyRings/r/cryptoKeys/k"


def _json(message: object) -> dict[str, object]:
    return json.loads(type(message).to_json(message))  # type: ignore[attr-defined]


def _deployed(settings: DeployedModelSettings) -> dict[str, object]:
    dm = ep.DeployedModel(
        dedicated_resources=mr.DedicatedResources(
            machine_spec=mr.MachineSpec(machine_type="n1-standard-4"),
            min_replica_count=1,
            max_replica_count=3,
        )
    )
    production.deployed_model(dm, settings, "acme", "us-central1")
    return _json(dm)


def test_deployed_model_on_dedicated_machines() -> None:
    body = _deployed(
        DeployedModelSettings(
            service_account="sa@acme.iam.gserviceaccount.com",
            autoscaling_metric_specs=(AutoscalingMetricSpec(CPU, 70),),
            spot=True,
            enable_access_logging=True,
            disable_container_logging=True,
        )
    )
    assert body["serviceAccount"] == "sa@acme.iam.gserviceaccount.com"
    assert body["enableAccessLogging"] is True and body["disableContainerLogging"] is True
    resources = body["dedicatedResources"]
    assert isinstance(resources, dict) and resources["spot"] is True
    assert resources["autoscalingMetricSpecs"] == [{"metricName": CPU, "target": 70}]


def test_deployed_model_on_a_shared_pool_sends_the_pool_not_machines() -> None:
    body = _deployed(DeployedModelSettings(shared_resources="pool-a"))
    assert body["sharedResources"] == (
        "projects/acme/locations/us-central1/deploymentResourcePools/pool-a"
    )
    assert "dedicatedResources" not in body  # a oneof: the pool replaces the machines


def test_endpoint_fields_and_reading_them_back() -> None:
    settings = EndpointSettings(
        private_service_connect_config=PrivateServiceConnectConfig(True, ("acme",)),
        kms_key_name=KEY,
        predict_request_response_logging_config=RequestResponseLogging(True, 0.1, "bq://acme.l.t"),
        dedicated_endpoint_enabled=True,
    )
    message = ep.Endpoint(display_name="e", **production.endpoint_fields(settings))
    body = _json(message)
    psc = body["privateServiceConnectConfig"]
    assert isinstance(psc, dict)
    assert (psc["enablePrivateServiceConnect"], psc["projectAllowlist"]) == (True, ["acme"])
    assert body["encryptionSpec"] == {"kmsKeyName": KEY}
    assert body["predictRequestResponseLoggingConfig"] == {
        "enabled": True,
        "samplingRate": 0.1,
        "bigqueryDestination": {"outputUri": "bq://acme.l.t"},
    }
    assert body["dedicatedEndpointEnabled"] is True
    assert production.observed_endpoint_settings(message) == (settings.fixed, settings.logging)


def test_network_endpoint() -> None:
    settings = EndpointSettings(network="projects/123/global/networks/vpc")
    body = _json(ep.Endpoint(**production.endpoint_fields(settings)))
    assert body["network"] == "projects/123/global/networks/vpc"
    assert "privateServiceConnectConfig" not in body


def _job(settings: BatchJobSettings) -> dict[str, object]:
    job = bpj.BatchPredictionJob(
        display_name="j",
        input_config=bpj.BatchPredictionJob.InputConfig(
            instances_format="jsonl", gcs_source=io.GcsSource(uris=["gs://b/in.jsonl"])
        ),
        output_config=bpj.BatchPredictionJob.OutputConfig(
            predictions_format="jsonl",
            gcs_destination=io.GcsDestination(output_uri_prefix="gs://b/out"),
        ),
    )
    production.batch_job(job, settings)
    return _json(job)


def test_batch_job_settings() -> None:
    body = _job(
        BatchJobSettings(
            instance_config=InstanceConfig("object", "id", (), ("label",)),
            model_parameters_json='{"top_k":3}',
            service_account="batch@acme.iam.gserviceaccount.com",
            kms_key_name=KEY,
        )
    )
    assert body["instanceConfig"] == {
        "instanceType": "object",
        "keyField": "id",
        "includedFields": [],
        "excludedFields": ["label"],
    }
    assert body["modelParameters"] == {"top_k": 3}
    assert body["serviceAccount"] == "batch@acme.iam.gserviceaccount.com"
    assert body["encryptionSpec"] == {"kmsKeyName": KEY}
    assert body["inputConfig"] == {
        "instancesFormat": "jsonl",
        "gcsSource": {"uris": ["gs://b/in.jsonl"]},
    }


def test_batch_job_from_and_to_bigquery() -> None:
    body = _job(
        BatchJobSettings(
            predictions_format=PredictionsFormat.BIGQUERY,
            bigquery_source="bq://acme.ml.instances",
            bigquery_destination="bq://acme",
        )
    )
    assert body["inputConfig"] == {
        "instancesFormat": "bigquery",
        "bigquerySource": {"inputUri": "bq://acme.ml.instances"},
    }
    assert body["outputConfig"] == {
        "predictionsFormat": "bigquery",
        "bigqueryDestination": {"outputUri": "bq://acme"},
    }
