"""Fixtures for integration tests: the local emulator as a real process, and official clients for
it.

Stable names others import: `emulator` (fresh per test), `shared_emulator`
(one per session), `storage_client` (google-cloud-storage client on `emulator`),
`shared_storage_client` (on `shared_emulator`), `make_storage_client(url)`.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.emulator import EmulatorProcess, collect_request_logs

_wire_dir: Path | None = None


def pytest_configure(config: pytest.Config) -> None:
    """Every emulator of the session records bodies, and its request log is kept for the wire
    contract test (tests/integration/test_wire_contract.py), which runs last."""
    global _wire_dir
    _wire_dir = Path(tempfile.mkdtemp(prefix="deployer-wire-"))
    collect_request_logs(_wire_dir)


def pytest_unconfigure(config: pytest.Config) -> None:
    collect_request_logs(None)
    if _wire_dir is not None:
        shutil.rmtree(_wire_dir, ignore_errors=True)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The wire contract test checks what every other test sent: it runs after them all."""
    last = [i for i in items if i.nodeid.endswith("test_wire_contract.py::" + _CONTRACT_TEST)]
    items[:] = [i for i in items if i not in last] + last


_CONTRACT_TEST = "test_every_request_of_the_session_keeps_the_wire_contract"


def _in_contract(request: pytest.FixtureRequest) -> bool:
    """False for tests marked wire_contract_exempt: they send malformed requests on purpose."""
    return request.node.get_closest_marker("wire_contract_exempt") is None


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
def emulator(request: pytest.FixtureRequest) -> Iterator[EmulatorProcess]:
    """A fresh emulator (own port, own temp data dir and request log), stopped after the test."""
    with EmulatorProcess(wire_contract=_in_contract(request)) as proc:
        yield proc


@pytest.fixture(scope="module")
def module_emulator(request: pytest.FixtureRequest) -> Iterator[EmulatorProcess]:
    """One emulator for a test module: tests in it must not depend on each other's leftovers."""
    with EmulatorProcess(wire_contract=_in_contract(request)) as proc:
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
