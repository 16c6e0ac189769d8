"""The vocabulary of Vertex's pre-built prediction images (deployer.wire.prebuilt)."""

from __future__ import annotations

import pytest

from deployer.wire.prebuilt import (
    Accelerator,
    Framework,
    check_prebuilt,
    find_artifact,
    looks_prebuilt,
    parse_prebuilt,
)

PREFIX = "us-docker.pkg.dev/vertex-ai/prediction/"


@pytest.mark.parametrize(
    ("name", "framework", "accelerator", "version"),
    [
        ("sklearn-cpu.1-6:latest", Framework.SKLEARN, Accelerator.CPU, "1-6"),
        ("xgboost-cpu.1-7:latest", Framework.XGBOOST, Accelerator.CPU, "1-7"),
        ("pytorch-gpu.2-4:latest", Framework.PYTORCH, Accelerator.GPU, "2-4"),
        ("tf2-cpu.2-12:latest", Framework.TENSORFLOW, Accelerator.CPU, "2-12"),
    ],
)
def test_published_images_parse_and_check(
    name: str, framework: Framework, accelerator: Accelerator, version: str
) -> None:
    image = parse_prebuilt(PREFIX + name)
    assert image is not None
    assert (image.framework, image.accelerator, image.version) == (framework, accelerator, version)
    assert check_prebuilt(image) is None


def test_an_unpublished_version_or_accelerator_says_what_exists() -> None:
    gpu = parse_prebuilt(PREFIX + "sklearn-gpu.1-6:latest")
    assert gpu is not None
    assert check_prebuilt(gpu) == "sklearn 1-6 has no GPU image (only cpu)"
    old = parse_prebuilt(PREFIX + "xgboost-cpu.9-9:latest")
    assert old is not None
    problem = check_prebuilt(old)
    assert problem is not None and "9-9" in problem and "1-7" in problem


def test_custom_images_are_not_prebuilt() -> None:
    custom = "us-central1-docker.pkg.dev/my-project/repo/server:1.0"
    assert parse_prebuilt(custom) is None
    assert not looks_prebuilt(custom)
    assert looks_prebuilt(PREFIX + "sklearn-cpu.latest")  # in the repository, malformed


def test_find_artifact_follows_the_images_order() -> None:
    assert find_artifact(Framework.XGBOOST, {"model.pkl", "model.bst"}) == "model.bst"
    assert find_artifact(Framework.SKLEARN, {"model.bst"}) is None
    assert find_artifact(Framework.PYTORCH, {"model.mar"}) == "model.mar"
