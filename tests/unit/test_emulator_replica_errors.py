"""Why a replica did not start, as the emulator words it for the failed operation (issue 15):
the replica's own `error: ...` line and where its log is, not the log's tail; the tail only
when the replica printed no cause. Real processes write the logs, as replicas do."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from deployer.emulator.vertex.replicas import Replica, ReplicaManager


def exited(tmp_path: Path, script: str) -> Replica:
    log_path = tmp_path / "r.log"
    with open(log_path, "wb") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-c", script], stdout=log_file, stderr=subprocess.STDOUT
        )
        proc.wait(30)
    return Replica(name="r", model_name="m", port=1, process=proc, log_path=log_path)


def test_the_cause_is_the_replicas_last_error_line(tmp_path: Path) -> None:
    replica = exited(
        tmp_path,
        "import sys\n"
        "print('I0000 chatter ' * 200)\n"
        "print('error: first', file=sys.stderr)\n"
        "print('error: model m failed to load: Wire format was corrupt.', file=sys.stderr)\n"
        "print('INFO stopped')\n",
    )
    assert ReplicaManager._failure_cause(replica) == (
        f"model m failed to load: Wire format was corrupt. (full log: {tmp_path / 'r.log'})"
    )


def test_without_an_error_line_the_tail_of_the_log_is_the_cause(tmp_path: Path) -> None:
    replica = exited(tmp_path, "print('x' * 5000)\nprint('Segmentation fault')\n")
    cause = ReplicaManager._failure_cause(replica)
    assert cause.endswith(f" | Segmentation fault (log: {tmp_path / 'r.log'})")
    assert len(cause) < 1500 + 100


def test_no_log_at_all(tmp_path: Path) -> None:
    replica = exited(tmp_path, "pass")
    replica.log_path.unlink()
    assert ReplicaManager._failure_cause(replica) == "(no log)"
