"""Launcher of a replica process that dies with the emulator, even after `kill -9`.

`python -m deployer.emulator.vertex.replica_launch --parent PID --module M -- ARGS`
starts a watchdog thread (the emulator's pid stops being our parent -> SIGTERM
ourselves, SIGKILL after a grace period) and then runs module M as `__main__`
with ARGS, in this same process. PR_SET_PDEATHSIG cannot do this: it fires
when the forking *thread* exits, and deploys fork from short-lived threads.

Must not: import TensorFlow itself (the replica module does), or do anything
but watch and hand over.
"""

from __future__ import annotations

import os
import runpy
import signal
import sys
import threading
import time

GRACE_S = 10.0


def _watch(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(0.5)
    os.kill(os.getpid(), signal.SIGTERM)  # the replica drains and exits...
    time.sleep(GRACE_S)
    os.kill(os.getpid(), signal.SIGKILL)  # ...or is made to


def main(argv: list[str]) -> None:
    if len(argv) < 5 or argv[0] != "--parent" or argv[2] != "--module" or argv[4] != "--":
        sys.exit("usage: replica_launch --parent PID --module MODULE -- ARGS...")
    parent, module, args = int(argv[1]), argv[3], argv[5:]
    threading.Thread(target=_watch, args=(parent,), daemon=True, name="parent-watch").start()
    sys.argv = [module, *args]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main(sys.argv[1:])
