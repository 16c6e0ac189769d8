"""The wire contract, over everything the integration tests sent the emulator this session.

Every emulator the tests start records request and response bodies, and its request log is
kept for the session (tests/support/emulator.py); `conftest.py` runs the last test here
after every other test. Run alone, the file still checks the traffic of its first test.
The rules are tests/support/wire_contract.py's; tests/unit/test_wire_contract.py shows they
catch a wrong request and a wrong response.
"""

from __future__ import annotations

import io

import pytest

from tests.support import wire_contract
from tests.support.emulator import session_request_log

pytestmark = pytest.mark.timeout(300)


def test_official_storage_client_calls_for_the_contract(shared_storage_client) -> None:  # type: ignore[no-untyped-def]
    """A spread of google-cloud-storage calls, so the contract has traffic even run alone."""
    client = shared_storage_client
    bucket = client.bucket("gcs-contract-spread")
    bucket.versioning_enabled = True
    bucket.labels = {"deployer-stack": "contract"}
    client.create_bucket(bucket)
    blob = bucket.blob("dir/a.json")
    blob.cache_control = "no-cache"
    blob.upload_from_string(b'{"a": 1}', content_type="application/json")
    bucket.blob("dir/big.bin").upload_from_file(
        io.BytesIO(b"x" * (9 * 1024 * 1024)), size=9 * 1024 * 1024
    )
    got = bucket.get_blob("dir/a.json")
    got.metadata = {"k": "v"}
    got.patch()
    assert bucket.blob("dir/a.json").download_as_bytes() == b'{"a": 1}'
    bucket.copy_blob(got, bucket, "copy.json")
    bucket.blob("joined").compose([got, bucket.blob("copy.json")])
    bucket.blob("copy.json").update_storage_class("NEARLINE")
    assert len(list(client.list_blobs(bucket.name, prefix="dir/", delimiter="/"))) == 2
    assert list(client.list_blobs(bucket.name, versions=True, match_glob="**.json"))
    client.get_bucket(bucket.name).patch()
    for b in client.list_blobs(bucket.name, versions=True):
        bucket.blob(b.name, generation=b.generation).delete()
    bucket.delete()


def test_every_request_of_the_session_keeps_the_wire_contract() -> None:
    entries = session_request_log()
    checked = [e for e in entries if "target" in e]
    assert checked, "no emulator request was recorded this session"
    problems = wire_contract.check(checked)
    assert not problems, f"{len(problems)} wire contract problems:\n" + "\n".join(problems[:40])
