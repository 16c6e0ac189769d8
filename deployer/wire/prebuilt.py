"""Vertex AI's pre-built prediction images and the artifact files each one loads: pure data.

Owns: the vocabulary the spec (validation), the emulator (which replica runs an image) and the
serving runtime (which loader runs) share about Vertex's pre-built prediction containers:
`<region>-docker.pkg.dev/vertex-ai/prediction/<framework>-<cpu|gpu>.<version>:latest`, the
versions Vertex publishes per framework (as the Vertex SDK's `constants/prediction.py` lists
them), and the files each image loads from the artifact directory (Vertex's "exporting model
artifacts" page), in the order the image tries them.
Must not: import anything but the standard library, or do I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum


class Framework(str, Enum):
    """A framework with a pre-built Vertex prediction image."""

    TENSORFLOW = "tensorflow"
    SKLEARN = "sklearn"
    XGBOOST = "xgboost"
    PYTORCH = "pytorch"


class Accelerator(str, Enum):
    CPU = "cpu"
    GPU = "gpu"


# Files the image loads, first found wins (the pre-built servers try them in this order).
ARTIFACT_FILES: dict[Framework, tuple[str, ...]] = {
    Framework.TENSORFLOW: ("saved_model.pb", "saved_model.pbtxt"),
    Framework.SKLEARN: ("model.joblib", "model.pkl"),
    Framework.XGBOOST: ("model.bst", "model.joblib", "model.pkl"),
    Framework.PYTORCH: ("model.mar",),
}

# Published versions (major-minor as in the image name) and which accelerators exist for each.
_CPU = (Accelerator.CPU,)
_BOTH = (Accelerator.CPU, Accelerator.GPU)
_SKLEARN = ("0-20", "0-22", "0-23", "0-24", "1-0", "1-2", "1-3", "1-4", "1-5", "1-6")
_XGBOOST = ("0-82", "0-90", "1-1", "1-2", "1-3", "1-4", "1-5", "1-6", "1-7", "2-0", "2-1")
_PYTORCH = ("1-11", "1-12", "1-13", "2-0", "2-1", "2-2", "2-3", "2-4")
VERSIONS: dict[Framework, dict[str, tuple[Accelerator, ...]]] = {
    Framework.SKLEARN: dict.fromkeys(_SKLEARN, _CPU),
    Framework.XGBOOST: dict.fromkeys(_XGBOOST, _CPU),
    Framework.PYTORCH: dict.fromkeys(_PYTORCH, _BOTH),
}
REGIONS = ("us", "europe", "asia")

# tf2-cpu.2-12, sklearn-cpu.1-6, xgboost-cpu.1-7, pytorch-gpu.2-4 (TensorFlow's images are tf2-*
# and the older tf-*; the emulator's TensorFlow replica checks its own pattern).
_IMAGE_RE = re.compile(
    r"^(?P<region>[a-z]+)-docker\.pkg\.dev/vertex-ai/prediction/"
    r"(?P<name>tf2|tf|sklearn|xgboost|pytorch)-(?P<acc>cpu|gpu)\.(?P<version>\d+-\d+):latest$"
)
_NAMES = {
    "tf": Framework.TENSORFLOW,
    "tf2": Framework.TENSORFLOW,
    "sklearn": Framework.SKLEARN,
    "xgboost": Framework.XGBOOST,
    "pytorch": Framework.PYTORCH,
}


@dataclass(frozen=True)
class PrebuiltImage:
    """A parsed pre-built prediction image URI."""

    uri: str
    region: str  # us | europe | asia
    framework: Framework
    accelerator: Accelerator
    version: str  # "1-7", as in the image name

    @property
    def artifact_files(self) -> tuple[str, ...]:
        return ARTIFACT_FILES[self.framework]


def looks_prebuilt(uri: str) -> bool:
    """True when the URI is in Vertex's pre-built prediction repository (valid or not)."""
    return "-docker.pkg.dev/vertex-ai/prediction/" in uri


def parse_prebuilt(uri: str) -> PrebuiltImage | None:
    """The image's parts when it has the pre-built naming shape, else None (a custom image)."""
    m = _IMAGE_RE.match(uri)
    if m is None:
        return None
    return PrebuiltImage(
        uri=uri,
        region=m["region"],
        framework=_NAMES[m["name"]],
        accelerator=Accelerator(m["acc"]),
        version=m["version"],
    )


def check_prebuilt(image: PrebuiltImage) -> str | None:
    """Why Vertex publishes no such image (region, version or accelerator), or None if it does.

    TensorFlow's many versions are checked by the TensorFlow side, not here.
    """
    if image.region not in REGIONS:
        return f"region prefix {image.region!r} is not one of {', '.join(REGIONS)}"
    if image.framework is Framework.TENSORFLOW:
        return None
    versions = VERSIONS[image.framework]
    accelerators = versions.get(image.version)
    if accelerators is None:
        known = ", ".join(versions)
        return (
            f"{image.framework.value} has no pre-built prediction image version "
            f"{image.version!r} (published: {known})"
        )
    if image.accelerator not in accelerators:
        return (
            f"{image.framework.value} {image.version} has no {image.accelerator.value.upper()} "
            f"image (only {', '.join(a.value for a in accelerators)})"
        )
    return None


def find_artifact(framework: Framework, names: set[str] | frozenset[str]) -> str | None:
    """The file the image would load among `names` (top-level file names), or None."""
    for candidate in ARTIFACT_FILES[framework]:
        if candidate in names:
            return candidate
    return None
