"""`reap` against the emulator: an expired stack goes; an unexpired one and an unlabelled
resource stay. Drives the real provider's list-by-label path (`list_labelled`)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.integration._vertex import PARENT, gapic_clients
from tests.support.stacks import StackFiles, run_cli


@pytest.mark.timeout(300)
def test_reap_tears_down_expired_stacks_only(
    emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = StackFiles(
        tmp_path / "old", stack="old", bucket="test-project-old", extra="guards: {ttl: 1h}\n"
    )
    young = StackFiles(
        tmp_path / "young",
        stack="young",
        bucket="test-project-young",
        endpoints=(),
        extra="guards: {ttl: 2d}\n",
    )
    for files in (old, young):
        run_cli(["apply", str(files.write()), "--yes"], emulator.url)
    from google.cloud.aiplatform_v1.types import Endpoint

    clients = gapic_clients(emulator.url)
    clients.endpoint.create_endpoint(
        parent=PARENT, endpoint=Endpoint(display_name="hand-made"), endpoint_id="hand-made"
    ).result()

    from deployer.providers.vertex import connect
    from deployer.reconcile.reaper import reap

    monkeypatch.setenv("DEPLOYER_RETRY_SCALE", "0.02")
    later = time.time() + 2 * 3600
    provider = connect("local", "test-project", "us-central1", emulator=emulator.url)
    dry = reap("test-project", "us-central1", dry_run=True, provider=provider, now=later)
    assert [s.stack for s in dry.expired] == ["old"]
    assert dry.expired[0].bucket == "test-project-old"
    assert dry.expired[0].hourly_usd and dry.expired[0].hourly_usd > 0

    report = reap("test-project", "us-central1", provider=provider, now=later)
    assert [s.stack for s in report.stacks if s.torn_down] == ["old"], report.render()
    names = sorted(
        e.name.rsplit("/", 1)[-1] for e in clients.endpoint.list_endpoints(parent=PARENT)
    )
    assert names == ["hand-made"]
    models = [m.labels["deployer-stack"] for m in clients.model.list_models(parent=PARENT)]
    assert models == ["young"]
