"""Light shells for `google.cloud.aiplatform_v1`: import its submodules without its `__init__`.

`google/cloud/aiplatform_v1/__init__.py` (and `types/__init__.py`) import every service
client and message of the API: ~85 MB of resident memory and ~1 s idle (3-5 s on a busy
machine) to use one of them, most of a no-op apply. The providers build three clients and
the emulator's control plane needs a dozen message types. `install()` registers those
packages as shells (PEP 562) before anything imports them: their submodules
(`...types.model`, `...services.job_service`) import as usual, and the first lookup of any
other attribute (`from google.cloud.aiplatform_v1 import ModelServiceClient`, by any code)
runs the real `__init__` into the same module object, so nothing else sees a difference.
One shell completes once, under a lock: apply imports from its worker threads, and a thread
that looks up a name mid-way waits instead of missing it. Our own code imports message types
from their submodules, never from the shells, so no worker thread completes one (a unit
test holds the providers to that). `DEPLOYER_EAGER_IMPORTS=1` turns the shells off.

Used by both deployer.providers and deployer.emulator, hence its place at the bottom of the
layers. Must not: import google (or anything heavy) itself, change a package already
imported, or import anything from deployer but the settings.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import threading
from collections.abc import Sequence
from types import ModuleType
from typing import Any

from deployer import settings

AIPLATFORM_V1 = (
    "google.cloud.aiplatform_v1",
    "google.cloud.aiplatform_v1.types",
    "google.cloud.aiplatform_v1.services",
)

# Reentrant: completing one shell runs an __init__ that looks names up on the others.
_LOCK = threading.RLock()


def install(packages: Sequence[str] = AIPLATFORM_V1) -> None:
    """Register shells for `packages` (parents first); no-op for those already imported."""
    if settings.EAGER_IMPORTS.get():
        return
    with _LOCK:
        for name in packages:
            if name in sys.modules:
                continue
            module = _shell(name)
            if module is None:  # not installed, or not a package: import normally
                return
            sys.modules[name] = module
            parent, _, child = name.rpartition(".")
            if parent in sys.modules:  # what the import system would have bound
                setattr(sys.modules[parent], child, module)


def _shell(name: str) -> ModuleType | None:
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None or spec.submodule_search_locations is None:
        return None
    loader = spec.loader
    module = importlib.util.module_from_spec(spec)
    completed = threading.Event()

    def __getattr__(attr: str) -> Any:
        if attr.startswith("__"):
            raise AttributeError(attr)
        sub = f"{name}.{attr}"
        try:  # `from pkg import submodule` asks the package first: no need for its __init__
            return importlib.import_module(sub)
        except ModuleNotFoundError as exc:
            if exc.name != sub:
                raise
        with _LOCK:
            if not completed.is_set():
                completed.set()  # first, so a lookup from inside the __init__ cannot re-enter
                loader.exec_module(module)  # the real __init__, once
                module.__dict__.pop("__getattr__", None)
        try:
            return module.__dict__[attr]
        except KeyError:
            raise AttributeError(f"module {name!r} has no attribute {attr!r}") from None

    module.__getattr__ = __getattr__  # type: ignore[method-assign]
    return module
