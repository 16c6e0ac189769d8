"""One custom-container replica: `<runtime> run --rm --name NAME ARGS`, removed on SIGTERM.

    python -m deployer.emulator.vertex.replica_launch --parent PID \
        --module deployer.emulator.vertex.container_replica -- \
        --runtime /usr/bin/podman --name NAME -- RUN_ARGS...

Owns: running the container in the foreground (its output is this process's output, which the
emulator writes beside the other replica logs) and removing it by name when told to stop:
SIGTERM (undeploy, teardown, emulator exit, or the watchdog seeing the emulator gone) stops
the container with a grace period and removes it. Killing the `run` client alone would leave
the container running under the runtime's monitor; removing it by name does not.
Must not: import anything heavy; it only supervises.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading

STOP_GRACE_S = 5


def main(argv: list[str]) -> int:
    if len(argv) < 5 or argv[0] != "--runtime" or argv[2] != "--name" or argv[4] != "--":
        sys.exit("usage: container_replica --runtime PATH --name NAME -- RUN_ARGS...")
    runtime, name, args = argv[1], argv[3], argv[5:]
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    child = subprocess.Popen(
        [runtime, "run", "--rm", "--name", name, *args], stdin=subprocess.DEVNULL
    )
    while child.poll() is None and not stop.wait(0.2):
        pass
    if child.poll() is None:
        for cmd in (["stop", "-t", str(STOP_GRACE_S), name], ["rm", "-f", name]):
            subprocess.run(
                [runtime, *cmd],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                timeout=60,
                check=False,
            )
        try:
            child.wait(STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            child.kill()
        return 0
    return child.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
