"""The layering contracts in .importlinter hold (import-linter, run as a test).

The contracts: the core (spec, plan, state, apply, teardown, reaper, upload, batch,
cost, ...) never imports the emulator or the serving runtime; only
`deployer.providers` imports google.*; plan/actions/state import nothing with I/O;
the emulator's control plane never imports TensorFlow.
"""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _lint(config: Path) -> int:
    from importlinter.cli import lint_imports

    return lint_imports(config_filename=str(config), no_cache=True, no_logo=True)


@pytest.mark.timeout(120)
def test_layering_contracts_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    assert _lint(ROOT / ".importlinter") == 0


@pytest.mark.timeout(120)
def test_a_broken_contract_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The check must be able to fail: forbid something the CLI really imports.
    monkeypatch.chdir(ROOT)
    config = tmp_path / "importlinter.ini"
    config.write_text(
        "[importlinter]\nroot_package = deployer\n\n"
        "[importlinter:contract:x]\nname = cli never imports errors\ntype = forbidden\n"
        "source_modules =\n    deployer.cli\nforbidden_modules =\n    deployer.errors\n"
    )
    assert _lint(config) != 0
