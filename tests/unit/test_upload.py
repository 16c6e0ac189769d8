"""Content hashing of artifact trees, and the vendor-error mapping uploads rely on."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from deployer import errors
from deployer.reconcile.upload import hash_tree


def tree(root: Path, files: dict[str, bytes]) -> Path:
    for rel, data in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    return root


def test_hash_depends_on_paths_and_bytes_not_on_location(tmp_path: Path) -> None:
    a = hash_tree(tree(tmp_path / "a", {"saved_model.pb": b"g", "variables/v": b"w"}))
    b = hash_tree(tree(tmp_path / "b", {"saved_model.pb": b"g", "variables/v": b"w"}))
    assert a.content_hash == b.content_hash
    assert [f.relpath for f in a.files] == ["saved_model.pb", "variables/v"]


def test_moving_bytes_between_names_changes_the_hash(tmp_path: Path) -> None:
    a = hash_tree(tree(tmp_path / "a", {"ab": b"c"}))
    b = hash_tree(tree(tmp_path / "b", {"a": b"bc"}))
    assert a.content_hash != b.content_hash


def test_editing_a_file_invalidates_the_memo(tmp_path: Path) -> None:
    root = tree(tmp_path / "m", {"saved_model.pb": b"one"})
    first = hash_tree(root).content_hash
    (root / "saved_model.pb").write_bytes(b"two")
    os.utime(root / "saved_model.pb", ns=(1, 1))  # even with an odd mtime
    assert hash_tree(root).content_hash != first


def test_md5_is_the_base64_form_gcs_reports(tmp_path: Path) -> None:
    digest = hash_tree(tree(tmp_path / "m", {"x": b"hello"}))
    assert digest.files[0].md5_b64 == "XUFAKrxLKna5cZ2REBfFkg=="


def test_missing_artifact_dir_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(errors.ConfigError, match="does not exist"):
        hash_tree(tmp_path / "nope")


# ---------------------------------------------------------------- provider error mapping


@pytest.mark.parametrize(
    ("code", "status", "expected"),
    [
        (429, "RESOURCE_EXHAUSTED", errors.TransientError),
        (503, "UNAVAILABLE", errors.TransientError),
        (500, "INTERNAL", errors.TransientError),
        (404, "NOT_FOUND", errors.NotFound),
        (409, "ALREADY_EXISTS", errors.AlreadyExists),
        (400, "INVALID_ARGUMENT", errors.InvalidArgument),
        (400, "FAILED_PRECONDITION", errors.FailedPrecondition),
        (412, None, errors.FailedPrecondition),
        (403, "PERMISSION_DENIED", errors.PermissionDenied),
        (401, "UNAUTHENTICATED", errors.PermissionDenied),
    ],
)
def test_api_core_errors_map_by_status(code: int, status: str | None, expected: type) -> None:
    import requests
    from google.api_core import exceptions as gexc

    from deployer.providers.errors import translated

    response = requests.Response()
    response.status_code = code
    body = {"error": {"code": code, "message": "boom", **({"status": status} if status else {})}}
    response._content = __import__("json").dumps(body).encode()
    response.request = requests.Request("POST", "http://127.0.0.1:1/v1/x?$alt=json").prepare()
    with pytest.raises(expected) as info, translated("create thing", mutating=True):
        raise gexc.from_http_response(response)
    assert type(info.value) is expected
    assert info.value.message == "create thing: boom"  # no URL noise
    assert isinstance(info.value.__cause__, gexc.GoogleAPICallError)


def test_a_broken_connection_is_response_lost_only_on_mutating_calls() -> None:
    import requests

    from deployer.providers.errors import translated

    broken = requests.exceptions.ConnectionError(
        "Connection aborted.",
    )
    with pytest.raises(errors.ResponseLost), translated("deploy", mutating=True):
        raise broken
    with pytest.raises(errors.TransientError) as info, translated("list", mutating=False):
        raise broken
    assert not isinstance(info.value, errors.ResponseLost)


def test_a_refused_connection_never_reached_the_server() -> None:
    import requests

    from deployer.providers.errors import translated

    with pytest.raises(errors.TransientError) as info, translated("deploy", mutating=True):
        requests.get("http://127.0.0.1:9/", timeout=1)  # nothing listens on port 9
    assert not isinstance(info.value, errors.ResponseLost)


def test_retry_stops_on_permanent_errors_and_is_bounded() -> None:
    from deployer.providers.retry import RetryPolicy, call_with_retry

    calls = []

    def always(exc: Exception) -> None:
        calls.append(1)
        raise exc

    policy = RetryPolicy(attempts=4, initial_seconds=0.0, max_seconds=0.0)
    with pytest.raises(errors.NotFound):
        call_with_retry(lambda: always(errors.NotFound("x")), policy=policy)
    assert len(calls) == 1
    calls.clear()
    with pytest.raises(errors.TransientError):
        call_with_retry(lambda: always(errors.TransientError("x")), policy=policy)
    assert len(calls) == 4


def test_lost_response_asks_the_probe_before_retrying() -> None:
    from deployer.providers.retry import RetryPolicy, call_with_retry

    calls = []

    def create() -> str:
        calls.append(1)
        raise errors.ResponseLost("dropped")

    policy = RetryPolicy(attempts=4, initial_seconds=0.0, max_seconds=0.0)
    assert call_with_retry(create, policy=policy, probe=lambda: "adopted") == "adopted"
    assert len(calls) == 1


def test_hashes_are_remembered_across_runs_without_reading_the_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from deployer.reconcile import upload

    monkeypatch.setenv("DEPLOYER_HOME", str(tmp_path / "home"))
    root = tree(tmp_path / "m", {"saved_model.pb": b"graph", "variables/v": b"w" * 100})
    first = hash_tree(root)
    assert (tmp_path / "home" / "cache" / "artifact-hashes.json").exists()
    upload._cache.clear()  # a new process

    real_open = Path.open

    def no_reading(self: Path, mode: str = "r", *args: object, **kwargs: object) -> object:
        if "b" in mode:  # artifact bytes are read in binary; the cache file is text
            raise AssertionError("the bytes were read again")
        return real_open(self, mode, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Path, "open", no_reading)
    assert hash_tree(root) == first
    monkeypatch.undo()
    monkeypatch.setenv("DEPLOYER_HOME", str(tmp_path / "home"))
    (root / "variables" / "v").write_bytes(b"x" * 101)  # size and mtime change
    assert hash_tree(root).content_hash != first.content_hash
