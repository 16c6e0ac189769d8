"""Import aiplatform_v1's proto types without the client packages they sit in (~85 MB less RSS).

`google.cloud.aiplatform_v1/__init__.py` (and `.types/__init__.py`) import every
service client and every type of the API: importing one message type costs
~85 MB of resident memory and a second of start-up. The emulator's control plane
needs only a dozen message types. `install()` pre-registers those two packages
as lazy shells: submodules (`...types.model`) import on their own, and the first
access to any other attribute (`aiplatform_v1.ModelServiceClient`) runs the real
package `__init__` into the same module object, so code that wants the clients
in the same process still gets them, unchanged.

Must not: change anything when the packages are already imported, or import them eagerly.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from types import ModuleType
from typing import Any

_PACKAGES = ("google.cloud.aiplatform_v1", "google.cloud.aiplatform_v1.types")


def _lazy_package(name: str) -> ModuleType | None:
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None or spec.submodule_search_locations is None:
        return None
    module = importlib.util.module_from_spec(spec)
    loader = spec.loader
    state = {"loaded": False}

    def __getattr__(attr: str) -> Any:
        if attr.startswith("__"):
            raise AttributeError(attr)
        sub = f"{name}.{attr}"
        if not state["loaded"] and importlib.util.find_spec(sub) is not None:
            return importlib.import_module(sub)  # a submodule: no need for the whole package
        if state["loaded"]:
            raise AttributeError(f"module {name!r} has no attribute {attr!r}")
        state["loaded"] = True
        loader.exec_module(module)  # the real __init__, once
        return getattr(module, attr)

    module.__getattr__ = __getattr__  # type: ignore[method-assign]
    return module


def install() -> None:
    """Register the lazy shells (no-op for packages already imported)."""
    for name in _PACKAGES:
        if name in sys.modules:
            continue
        module = _lazy_package(name)
        if module is None:
            return
        sys.modules[name] = module
        parent, _, leaf = name.rpartition(".")
        setattr(sys.modules[parent], leaf, module)
