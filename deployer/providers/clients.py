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
import subprocess
import sys
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from deployer import lazyimport, settings
from deployer.errors import ConfigError


@dataclass(frozen=True)
class ClientTarget:
    kind: str  # "local" | "vertex"
    project: str
    region: str
    api_endpoint: str  # "http://127.0.0.1:PORT" or "us-central1-aiplatform.googleapis.com"
    storage_endpoint: str | None  # emulator URL; None: the real GCS

    @property
    def parent(self) -> str:
        return f"projects/{self.project}/locations/{self.region}"


def emulator_url(environ: dict[str, str] | None = None) -> str:
    """The local emulator's URL: $DEPLOYER_EMULATOR, else start (or find) `deployer local up`."""
    url = settings.EMULATOR_URL.get(environ)
    if url:
        return url.rstrip("/")
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
            hint="run `deployer local up` yourself, or set DEPLOYER_EMULATOR to "
            "the URL of a running one",
        ) from exc


def resolve_target(
    kind: str, project: str, region: str, *, emulator: str | None = None
) -> ClientTarget:
    """Where a spec's target lives. `emulator` overrides the URL for kind "local"."""
    if kind == "local":
        url = emulator or emulator_url()
        return ClientTarget("local", project, region, url, url)
    if kind == "vertex":
        return ClientTarget("vertex", project, region, f"{region}-aiplatform.googleapis.com", None)
    raise ConfigError(f"unknown target {kind!r}", hint="use target: local or target: vertex")


class Clients:
    """The official clients for one target, each built on first use."""

    def __init__(self, target: ClientTarget) -> None:
        self.target = target

    def _credentials(self) -> Any:
        if self.target.kind == "local":
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
        lazyimport.install()
        from google.cloud.aiplatform_v1.services.model_service import ModelServiceClient

        return self._gapic(ModelServiceClient)

    @cached_property
    def endpoints(self) -> Any:
        lazyimport.install()
        from google.cloud.aiplatform_v1.services.endpoint_service import EndpointServiceClient

        return self._gapic(EndpointServiceClient)

    @cached_property
    def jobs(self) -> Any:
        lazyimport.install()
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
