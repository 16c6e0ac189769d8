"""Fixtures for integration tests: the local emulator as a real process, and official clients for
it.

Stable names others import: `emulator` (fresh per test), `shared_emulator`
(one per session), `storage_client` (google-cloud-storage client on `emulator`),
`shared_storage_client` (on `shared_emulator`), `make_storage_client(url)`.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.emulator import EmulatorProcess


def make_storage_client(url: str):  # type: ignore[no-untyped-def]
    """A google.cloud.storage.Client talking to the emulator at `url` with anonymous credentials."""
    from google.api_core.client_options import ClientOptions
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    return storage.Client(
        project="test-project",
        credentials=AnonymousCredentials(),
        client_options=ClientOptions(api_endpoint=url),
    )


@pytest.fixture
def emulator() -> Iterator[EmulatorProcess]:
    """A fresh emulator (own port, own temp data dir and request log), stopped after the test."""
    with EmulatorProcess() as proc:
        yield proc


@pytest.fixture(scope="module")
def module_emulator() -> Iterator[EmulatorProcess]:
    """One emulator for a test module: tests in it must not depend on each other's leftovers."""
    with EmulatorProcess() as proc:
        yield proc


@pytest.fixture(scope="session")
def shared_emulator() -> Iterator[EmulatorProcess]:
    """One emulator for the whole session: use unique bucket names, never restart or fault it."""
    with EmulatorProcess() as proc:
        yield proc


@pytest.fixture
def storage_client(emulator: EmulatorProcess, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """google-cloud-storage client on the per-test `emulator`; STORAGE_EMULATOR_HOST set too
    (clients created inside the code under test, e.g. aiplatform's iter_outputs, honour it)."""
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", emulator.url)
    return make_storage_client(emulator.url)


@pytest.fixture(scope="session")
def shared_storage_client(shared_emulator: EmulatorProcess):  # type: ignore[no-untyped-def]
    return make_storage_client(shared_emulator.url)
