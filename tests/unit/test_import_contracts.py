"""The layering contracts in .importlinter hold (import-linter, run as a test).

Also checks the reconciler modules the file does not list yet (state, actions, journal, teardown,
render; reaper wires a provider like the CLI, so only the emulator rule applies to it)
against the same rules, from a temporary config that extends it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

EXTRA = """
[importlinter:contract:reconciler-support-without-google-cloud]
name = Reconciler support modules never import google.cloud or the emulator
type = forbidden
source_modules =
    deployer.state
    deployer.journal
    deployer.teardown
    deployer.render
forbidden_modules =
    google
    deployer.emulator
    deployer.serving

[importlinter:contract:reaper-never-imports-the-emulator]
name = The reaper (which wires a provider, like the CLI) never imports the emulator
type = forbidden
source_modules =
    deployer.reaper
forbidden_modules =
    deployer.emulator
    deployer.serving

[importlinter:contract:state-is-pure]
name = state (ids, labels, observed types) and actions (plan vocabulary) import nothing with I/O
type = forbidden
source_modules =
    deployer.state
    deployer.actions
forbidden_modules =
    deployer.providers
    google
    requests
    urllib3
    tensorflow
"""


def _lint(config: Path) -> int:
    from importlinter.cli import lint_imports
    return lint_imports(config_filename=str(config), no_cache=True, no_logo=True)


@pytest.mark.timeout(120)
def test_layering_contracts_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    assert _lint(ROOT / ".importlinter") == 0


@pytest.mark.timeout(120)
def test_reconciler_support_modules_keep_the_same_rules(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    config = tmp_path / "importlinter.ini"
    config.write_text((ROOT / ".importlinter").read_text() + EXTRA)
    assert _lint(config) == 0
