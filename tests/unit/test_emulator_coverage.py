"""docs/emulator-coverage.md is what the generator makes of the discovery documents and the
emulator's router today, and the generator's hand-kept notes cannot go stale."""

from __future__ import annotations

import pytest

from tests.support import discovery, emulator_coverage


def test_committed_coverage_document_is_regenerated_unchanged() -> None:
    expected = emulator_coverage.render(emulator_coverage.rows())
    assert emulator_coverage.DOC.read_text() == expected, (
        "docs/emulator-coverage.md is stale: run python -m tests.support.emulator_coverage"
    )


def test_every_method_in_scope_has_one_row_and_a_status() -> None:
    table = emulator_coverage.rows()
    assert [r.method.id for r in table] == [m.id for m in discovery.methods()]
    assert {r.status for r in table} <= {"implemented", "partial", "not"}
    status = {r.method.id: r.status for r in table}
    # Methods deployer itself calls are served; the IAM ones are not.
    assert status["storage.objects.insert"] == "partial"
    assert status["aiplatform.projects.locations.endpoints.deployModel"] == "partial"
    assert status["aiplatform.projects.locations.models.get"] == "implemented"
    assert status["storage.buckets.getIamPolicy"] == "not"


def test_a_partial_note_on_a_method_the_emulator_does_not_serve_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(emulator_coverage.PARTIAL, "storage.buckets.getIamPolicy", "no IAM")
    with pytest.raises(SystemExit, match="does not serve"):
        emulator_coverage.rows()
