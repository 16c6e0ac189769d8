"""Suite-wide settings: every test run gets its own DEPLOYER_HOME.

deployer keeps user state under $DEPLOYER_HOME (default ~/.deployer): the local
emulator instance, the artifact hash cache, the price cache. Tests must neither
read a developer's state nor leave any behind, so the whole run points it at a
temporary folder (tests that need their own still set it with monkeypatch).
"""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest

_home: str | None = None


def pytest_configure(config: pytest.Config) -> None:
    global _home
    _home = tempfile.mkdtemp(prefix="deployer-home-")
    os.environ["DEPLOYER_HOME"] = _home


def pytest_unconfigure(config: pytest.Config) -> None:
    if _home:
        shutil.rmtree(_home, ignore_errors=True)
