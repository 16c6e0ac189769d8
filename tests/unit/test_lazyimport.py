"""deployer.lazyimport: the light aiplatform_v1 shells are invisible to other code, also under
threads, and both the providers and the emulator go through them."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent("""
    import sys, threading
    from deployer import lazyimport
    lazyimport.install()
    from google.cloud.aiplatform_v1.services.model_service import ModelServiceClient
    from google.cloud.aiplatform_v1.services.endpoint_service import EndpointServiceClient
    loaded = sum(m.startswith("google.cloud.aiplatform_v1") for m in sys.modules)
    errors = []
    def use(n):
        try:
            if n % 2:
                from google.cloud.aiplatform_v1.types import Model, ModelContainerSpec
            else:
                from google.cloud.aiplatform_v1.types import AcceleratorType, DedicatedResources
        except Exception as exc:
            errors.append(repr(exc))
    threads = [threading.Thread(target=use, args=(i,)) for i in range(8)]
    [th.start() for th in threads]
    [th.join() for th in threads]
    from google.cloud import aiplatform_v1 as v1
    assert v1.JobServiceClient and v1.types.Model
    import google.cloud.aiplatform as aip
    assert aip.Endpoint
    print(loaded, errors)
""")


def _run(script: str, **env: str) -> str:
    out = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=110,
        check=True,
        env={**os.environ, **env},
    )
    return out.stdout.strip()


def _aiplatform_modules_after(statements: str, **env: str) -> int:
    script = f"import sys\n{statements}\n"
    script += 'print(sum(m.startswith("google.cloud.aiplatform_v1") for m in sys.modules))'
    return int(_run(script, **env))


@pytest.mark.timeout(120)
def test_light_import_loads_a_fraction_and_completes_on_demand() -> None:
    loaded, errors = _run(SCRIPT).split(" ", 1)
    assert errors == "[]"
    assert int(loaded) < 100  # of ~460 modules the package __init__ would import


def test_providers_import_message_types_from_their_submodules() -> None:
    # `from google.cloud.aiplatform_v1.types import Model` completes the light shell: the
    # whole API's __init__ runs inside one of apply's worker threads while others import
    # submodules, which can leave a name missing (seen in CI as "cannot import name 'Model'").
    # Submodule imports (`types.model`) never complete the shell.
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "deployer" / "providers"
    pattern = re.compile(
        r"^\s*from google\.cloud\.aiplatform_v1(\.types)? import \(?\s*[A-Z]", re.MULTILINE
    )
    offenders = [
        f"{p.name}: {m.group(0)}"
        for p in sorted(root.glob("*.py"))
        for m in pattern.finditer(p.read_text())
    ]
    assert offenders == []


@pytest.mark.timeout(120)
def test_the_emulator_control_plane_goes_through_the_same_shells() -> None:
    # The emulator's Vertex surface needs a dozen message types, not the whole API; a name
    # the shells do not hold as a submodule still resolves afterwards, from the real __init__.
    script = textwrap.dedent("""
        import sys
        import deployer.emulator.vertex.endpoints, deployer.emulator.vertex.models
        print(sum(m.startswith("google.cloud.aiplatform_v1") for m in sys.modules))
        from google.cloud.aiplatform_v1 import ModelServiceClient
        from google.cloud.aiplatform_v1.types import Endpoint
        print(ModelServiceClient.__name__, Endpoint.__name__)
    """)
    loaded, names = _run(script).splitlines()
    assert int(loaded) < 100
    assert names == "ModelServiceClient Endpoint"


@pytest.mark.timeout(120)
def test_eager_imports_setting_turns_the_shells_off() -> None:
    statements = (
        "from deployer import lazyimport\n"
        "lazyimport.install()\n"
        "assert 'google.cloud.aiplatform_v1' not in sys.modules"
    )
    assert _aiplatform_modules_after(statements, DEPLOYER_EAGER_IMPORTS="1") == 0
    assert _aiplatform_modules_after(statements.replace(" not in", " in")) == 3  # the shells
