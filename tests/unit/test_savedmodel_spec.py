"""A corrupt or signature-less saved_model.pb is a spec problem (issue 15): `validate`, `plan`
and `apply` refuse it with file:line, field, the file's path and a fix, exit 3, before any API
call (DEPLOYER_EMULATOR points at a listening loopback socket that must see no connection).
The messages per file are pinned in test_spec_corpus.py; this checks the commands and the
fixtures."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from deployer.spec import rules
from deployer.wire.savedmodel import read_signature
from tests.support.savedmodel_pb import ARTIFACTS, broken_variants
from tests.unit.test_predict_cli_input import assert_no_connection, listener, run_cli

__all__ = ["listener"]  # the fixture, imported to be used here

BAD = Path(__file__).parent / "specs" / "bad"
MODELS = Path(__file__).resolve().parents[2] / "models"


def test_the_fixtures_are_what_the_generator_writes() -> None:
    for name, data in broken_variants().items():
        assert (ARTIFACTS / name / "saved_model.pb").read_bytes() == data, (
            f"run `python -m tests.support.savedmodel_pb` to rewrite {name}"
        )


@pytest.mark.parametrize("command", [["validate"], ["plan"], ["apply", "--yes"]])
@pytest.mark.parametrize(
    ("case", "said"),
    [
        ("corrupt_truncated", "is not a readable SavedModel: truncated"),
        ("corrupt_random", "is not a readable SavedModel"),
        ("no_signature", "has no signature 'serving_default'"),
    ],
)
def test_a_broken_savedmodel_is_refused_before_any_call(
    listener: socket.socket, command: list[str], case: str, said: str
) -> None:
    spec = BAD / f"savedmodel_{case}.yaml"
    code, output = run_cli([*command, str(spec)], listener)
    assert code == 3, output
    assert f"{spec}:11: models[0].versions[1].artifact:" in output
    assert f"{ARTIFACTS / case / 'saved_model.pb'} {said}" in output
    assert "fix: " in output
    assert "Traceback" not in output
    assert_no_connection(listener)  # no API call was made


def test_skip_artifacts_skips_the_savedmodel_check_too(listener: socket.socket) -> None:
    spec = BAD / "savedmodel_corrupt_random.yaml"
    assert run_cli(["validate", str(spec), "--skip-artifacts"], listener)[0] == 0


def test_an_empty_saved_model_pb_says_empty(tmp_path: Path) -> None:
    (tmp_path / "saved_model.pb").write_bytes(b"")
    problem = rules.artifact(str(tmp_path), Path)
    assert problem is not None
    assert problem[0] == f"{tmp_path / 'saved_model.pb'} is empty, not a SavedModel"


def test_a_good_savedmodel_passes(tmp_path: Path) -> None:
    (tmp_path / "saved_model.pb").write_bytes(broken_variants()["mnist/0001"])
    assert rules.artifact(str(tmp_path), Path) is None


@pytest.mark.parametrize(
    "version", ["my_mnist_model/0001", "my_mnist_model/0002", "mnist_png/0001"]
)
def test_the_check_is_fast_on_the_mnist_models(version: str) -> None:
    """It runs on every validate: the signature only, not the graph (~0.1 ms measured)."""
    model = MODELS / version
    if not (model / "saved_model.pb").is_file():
        pytest.skip(f"{model} is not trained here (scripts/train_mnist.py)")
    read_signature(model, decode_raw=False)  # warm the page cache
    start = time.perf_counter()
    for _ in range(20):
        assert rules.artifact(str(model), Path) is None
    assert (time.perf_counter() - start) / 20 < 0.02  # generous: a shared 2-core machine
