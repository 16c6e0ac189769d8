"""Custom containers under Vertex's contract, and which replica serves which image (pure parts:
no runtime is started here; tests/integration/test_custom_container.py runs real containers)."""

from __future__ import annotations

import pytest
from google.cloud.aiplatform_v1.types import model as model_t

from deployer.emulator.http import ServiceError
from deployer.emulator.vertex import containers
from deployer.emulator.vertex.containers import ContainerSpec, Placement
from deployer.emulator.vertex.serving_kinds import Kind, classify
from deployer.wire.prebuilt import Framework

WHERE = Placement(
    endpoint_id="123",
    deployed_model_id="456",
    project_number="789",
    storage_uri="gs://b/models/m/",
    emulator_url="http://127.0.0.1:9999",
    port=40123,
)


def _spec(**fields: object) -> object:
    return model_t.ModelContainerSpec.pb(model_t.ModelContainerSpec(**fields))


def test_vertex_env_is_set_and_wins_over_the_specs_env() -> None:
    spec = ContainerSpec(image="x", env=(("AIP_MODE", "mine"), ("LOG_LEVEL", "debug")))
    env = containers.container_env(spec, WHERE)
    assert env == {
        "LOG_LEVEL": "debug",
        "AIP_HTTP_PORT": "40123",
        "AIP_HEALTH_ROUTE": "/v1/endpoints/123/deployedModels/456",
        "AIP_PREDICT_ROUTE": "/v1/endpoints/123/deployedModels/456:predict",
        "AIP_MODE": "PREDICTION",
        "AIP_DEPLOYED_MODEL_ID": "456",
        "AIP_ENDPOINT_ID": "123",
        "AIP_PROJECT_NUMBER": "789",
        "STORAGE_EMULATOR_HOST": "http://127.0.0.1:9999",
        "AIP_STORAGE_URI": "gs://b/models/m/",
    }


def test_run_args_carry_command_args_routes_and_the_owner_label() -> None:
    spec = ContainerSpec.from_proto(
        _spec(
            image_uri="localhost/srv:1",
            command=["python3", "/app/server.py"],
            args=["--port", "$(AIP_HTTP_PORT)", "$(UNKNOWN)"],
            predict_route="/score",
            health_route="/ok",
            ports=[model_t.Port(container_port=7080)],
        )
    )
    args = containers.run_args(spec, WHERE, owner="abc")
    assert args[:5] == [
        "--network=host",
        "--label",
        "deployer.emulator=abc",
        "--pull=never",
        "--env",
    ]
    assert "AIP_PREDICT_ROUTE=/score" in args and "AIP_HEALTH_ROUTE=/ok" in args
    entry = args.index("--entrypoint")
    assert args[entry + 1] == '["python3", "/app/server.py"]'
    assert args[entry + 2 :] == ["localhost/srv:1", "--port", "40123", "$(UNKNOWN)"]


def test_no_runtime_names_both_docker_and_podman(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(containers, "_cached_runtime", None)
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(containers.ContainerRuntimeMissing) as err:
        containers.find_runtime()
    assert "Docker or Podman" in str(err.value)
    assert "docker: not found on PATH" in str(err.value)
    assert "podman: not found on PATH" in str(err.value)


@pytest.mark.parametrize(
    ("image", "kind", "framework"),
    [
        ("us-docker.pkg.dev/vertex-ai/prediction/tf2-cpu.2-12:latest", Kind.TENSORFLOW, None),
        (
            "us-docker.pkg.dev/vertex-ai/prediction/sklearn-cpu.1-6:latest",
            Kind.PREBUILT,
            Framework.SKLEARN,
        ),
        (
            "europe-docker.pkg.dev/vertex-ai/prediction/xgboost-cpu.1-7:latest",
            Kind.PREBUILT,
            Framework.XGBOOST,
        ),
        (
            "us-docker.pkg.dev/vertex-ai/prediction/pytorch-gpu.2-4:latest",
            Kind.PREBUILT,
            Framework.PYTORCH,
        ),
        ("us-central1-docker.pkg.dev/p/repo/server:1", Kind.CUSTOM, None),
        ("localhost/deployer-custom-example:1", Kind.CUSTOM, None),
    ],
)
def test_images_are_classified(image: str, kind: Kind, framework: Framework | None) -> None:
    serving = classify(_spec(image_uri=image))
    assert (serving.kind, serving.framework) == (kind, framework)


@pytest.mark.parametrize(
    "image",
    [
        "us-docker.pkg.dev/vertex-ai/prediction/sklearn-gpu.1-6:latest",
        "us-docker.pkg.dev/vertex-ai/prediction/xgboost-cpu.7-7:latest",
        "us-docker.pkg.dev/vertex-ai/prediction/sklearn-cpu:latest",
    ],
)
def test_unpublished_prebuilt_images_are_400(image: str) -> None:
    with pytest.raises(ServiceError) as err:
        classify(_spec(image_uri=image))
    assert err.value.http_status == 400 and "pre-built" in err.value.message.lower()
