"""Build the official clients for a target: GAPIC v1 over REST, and google-cloud-storage.

Owns: `ClientTarget` (where the APIs are and which credentials to use) and `Clients`
(lazily built ModelService, EndpointService, JobService clients with
`transport="rest"`, an authorized HTTP session for online prediction, and a storage
client). Local and cloud differ only here:
- local: the emulator's URL (env DEPLOYER_EMULATOR, else `deployer local up --output json`
  run as a subprocess, so the core never imports deployer.emulator), anonymous credentials
  (or DEPLOYER_EMULATOR_TOKEN as a bearer token when set), storage through the same URL;
- vertex: Application Default Credentials, `{region}-aiplatform.googleapis.com`.

Must not: make API calls itself (beyond starting the local emulator), or be imported by
the CLI root (SDK imports here are heavy; everything is lazy).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from deployer import lazyimport, settings
from deployer.errors import ConfigError
from deployer.spec import Target


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


EMULATOR_ENV = settings.EMULATOR_URL.name  # named in the hints a user gets


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
    url = settings.EMULATOR_URL.get(environ)
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
        configured = settings.EMULATOR_URL.get()
        if emulator:
            url, source = emulator.rstrip("/"), "option"
        elif configured:
            url, source = configured.rstrip("/"), EMULATOR_ENV
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
            token = settings.EMULATOR_TOKEN.get()
            if token:
                # A static bearer token: never refreshed, sent as `Authorization: Bearer`.
                from google.oauth2.credentials import Credentials

                return Credentials(token=token)  # type: ignore[no-untyped-call]
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
