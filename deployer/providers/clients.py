"""Build the official clients for a target: GAPIC v1 over REST, and google-cloud-storage.

Owns: `ClientTarget` (where the APIs are and which credentials to use) and `Clients`
(lazily built ModelService, EndpointService, JobService clients with
`transport="rest"`, an authorized HTTP session for online prediction, and a storage
client). Local and cloud differ only here:
- local: the emulator's URL (env DEPLOYER_EMULATOR, else `deployer local up --output json`
  run as a subprocess, so the core never imports deployer.emulator), anonymous credentials,
  storage through the same URL;
- vertex: Application Default Credentials, `{region}-aiplatform.googleapis.com`.

Must not: make API calls itself (beyond starting the local emulator), or be imported by
the CLI root (SDK imports here are heavy; everything is lazy).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from deployer.errors import ConfigError
from deployer.spec import Target

EMULATOR_ENV = "DEPLOYER_EMULATOR"

# google.cloud.aiplatform_v1/__init__.py (and types/__init__.py) import every service and
# message of the API: ~1 s idle, 3-5 s on a busy machine, most of a no-op apply. The four
# clients we build need ~5% of that. So, before the first client import, these packages are
# registered as empty shells whose submodules import normally; the first attribute looked
# up on a shell (by any other code: `from google.cloud.aiplatform_v1 import X`) runs the
# real __init__ into it (PEP 562), so nothing else sees a difference.
# DEPLOYER_EAGER_IMPORTS=1 turns this off. Our own code imports message types from their
# submodules (`types.model`, `types.endpoint`, ...), never from the shells: completing a
# shell inside apply's worker threads, while others import submodules, can leave a name
# missing (a test checks the providers keep to this).
_LIGHT_PACKAGES = (
    "google.cloud.aiplatform_v1",
    "google.cloud.aiplatform_v1.types",
    "google.cloud.aiplatform_v1.services",
)


_LIGHT_LOCK = threading.RLock()


def _light_import() -> None:
    import importlib
    import importlib.util

    if os.environ.get("DEPLOYER_EAGER_IMPORTS") or _LIGHT_PACKAGES[0] in sys.modules:
        return
    for name in _LIGHT_PACKAGES:
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            return
        module = importlib.util.module_from_spec(spec)

        def complete(
            attr: str,
            module: Any = module,
            spec: Any = spec,
            state: dict[str, bool] = {"done": False},  # noqa: B006 - one per closure, on purpose
        ) -> Any:
            if attr.startswith("__"):
                raise AttributeError(attr)
            try:  # `from pkg import submodule` asks the package first
                return importlib.import_module(f"{module.__name__}.{attr}")
            except ModuleNotFoundError as exc:
                if exc.name != f"{module.__name__}.{attr}":
                    raise
            # Apply works on several resources in threads: complete once, under a lock;
            # others wait here rather than miss the attribute mid-way.
            with _LIGHT_LOCK:
                if not state["done"]:
                    state["done"] = True
                    spec.loader.exec_module(module)  # the real __init__, once
                    module.__dict__.pop("__getattr__", None)
            try:
                return module.__dict__[attr]
            except KeyError:
                raise AttributeError(
                    f"module {module.__name__!r} has no attribute {attr!r}"
                ) from None

        module.__getattr__ = complete  # type: ignore[method-assign]
        sys.modules[name] = module
        parent, _, child = name.rpartition(".")
        if parent in sys.modules:  # what the import system would have bound
            setattr(sys.modules[parent], child, module)


@dataclass(frozen=True)
class ClientTarget:
    kind: Target
    project: str
    region: str
    api_endpoint: str  # "http://127.0.0.1:PORT" or "us-central1-aiplatform.googleapis.com"
    storage_endpoint: str | None  # emulator URL; None: the real GCS
    # What to tell a user whose calls cannot reach api_endpoint: where the address came from.
    connect_hint: str | None = None

    @property
    def parent(self) -> str:
        return f"projects/{self.project}/locations/{self.region}"


def _start_local_emulator() -> str:
    try:
        out = subprocess.run(
            [sys.executable, "-m", "deployer", "local", "up", "--output", "json"],
            check=True,
            capture_output=True,
            text=True,
            timeout=120,
        )
        return str(json.loads(out.stdout)["url"]).rstrip("/")
    except (subprocess.SubprocessError, OSError, ValueError, KeyError) as exc:
        detail = getattr(exc, "stderr", "") or str(exc)
        raise ConfigError(
            f"could not start the local emulator: {detail.strip()}",
            hint=f"run `deployer local up` yourself, or set {EMULATOR_ENV} to "
            "the URL of a running one",
        ) from exc


def emulator_url(environ: Mapping[str, str] | None = None) -> str:
    """The local emulator's URL: $DEPLOYER_EMULATOR, else start (or find) `deployer local up`."""
    env = os.environ if environ is None else environ
    url = env.get(EMULATOR_ENV)
    return url.rstrip("/") if url else _start_local_emulator()


def _local_connect_hint(url: str, source: str) -> str:
    if source == EMULATOR_ENV:
        return (
            f"{EMULATOR_ENV} is {url}: start the emulator with `deployer local up` and set "
            f"{EMULATOR_ENV} to the http:// URL it prints (the emulator speaks plain HTTP), "
            f"or unset {EMULATOR_ENV} to let deployer start one"
        )
    if source == "option":
        return f"no emulator answers at {url}: start one with `deployer local up`"
    return (
        f"the emulator started by `deployer local up` at {url} does not answer: run "
        "`deployer local down` and try again"
    )


def resolve_target(
    kind: str, project: str, region: str, *, emulator: str | None = None
) -> ClientTarget:
    """Where a spec's target lives. `emulator` overrides the URL for kind "local"."""
    try:
        target = Target(kind)
    except ValueError:
        raise ConfigError(
            f"unknown target {kind!r}", hint="use target: local or target: vertex"
        ) from None
    if target is Target.LOCAL:
        if emulator:
            url, source = emulator.rstrip("/"), "option"
        elif os.environ.get(EMULATOR_ENV):
            url, source = emulator_url(), EMULATOR_ENV
        else:
            url, source = _start_local_emulator(), "local up"
        return ClientTarget(target, project, region, url, url, _local_connect_hint(url, source))
    return ClientTarget(target, project, region, f"{region}-aiplatform.googleapis.com", None)


class Clients:
    """The official clients for one target, each built on first use."""

    def __init__(self, target: ClientTarget) -> None:
        self.target = target

    def _credentials(self) -> Any:
        if self.target.kind == Target.LOCAL:
            from google.auth.credentials import AnonymousCredentials

            return AnonymousCredentials()  # type: ignore[no-untyped-call]
        import google.auth

        from deployer.providers.errors import translated

        with translated("Application Default Credentials", mutating=False):
            creds, _ = google.auth.default(
                scopes=["https://www.googleapis.com/auth/cloud-platform"]
            )
        return creds

    @cached_property
    def credentials(self) -> Any:
        return self._credentials()

    def _gapic(self, cls: Any) -> Any:
        from google.api_core.client_options import ClientOptions

        return cls(
            credentials=self.credentials,
            transport="rest",
            client_options=ClientOptions(api_endpoint=self.target.api_endpoint),
        )

    @cached_property
    def models(self) -> Any:
        _light_import()
        from google.cloud.aiplatform_v1.services.model_service import ModelServiceClient

        return self._gapic(ModelServiceClient)

    @cached_property
    def endpoints(self) -> Any:
        _light_import()
        from google.cloud.aiplatform_v1.services.endpoint_service import EndpointServiceClient

        return self._gapic(EndpointServiceClient)

    @cached_property
    def jobs(self) -> Any:
        _light_import()
        from google.cloud.aiplatform_v1.services.job_service import JobServiceClient

        return self._gapic(JobServiceClient)

    @cached_property
    def http(self) -> Any:
        """An authorized requests session for calls whose body we serialize ourselves.

        Online prediction goes through it: the GAPIC REST transport re-serializes
        instances as indented JSON with float32 values widened to 17 digits (2-5x the
        bytes of the compact body, against a 1.5 MB request limit)."""
        from google.auth.transport.requests import AuthorizedSession

        return AuthorizedSession(self.credentials)  # type: ignore[no-untyped-call]

    @cached_property
    def storage(self) -> Any:
        from google.cloud import storage  # type: ignore[attr-defined]

        if self.target.storage_endpoint is None:
            return storage.Client(project=self.target.project, credentials=self.credentials)
        from google.api_core.client_options import ClientOptions

        return storage.Client(
            project=self.target.project,
            credentials=self.credentials,
            client_options=ClientOptions(api_endpoint=self.target.storage_endpoint),
        )


def make_clients(target: ClientTarget) -> Clients:
    return Clients(target)
