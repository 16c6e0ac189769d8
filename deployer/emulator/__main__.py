"""`python -m deployer.emulator run ...`: the same command as `deployer local run`.

Exists so the emulator starts without the deployer CLI root (background
instances and test fixtures spawn it this way). Must not hold any logic.
"""

from __future__ import annotations

import sys

from deployer.cli import main

if __name__ == "__main__":
    # Through the root CLI so our errors render as messages with their exit codes.
    main(["local", *sys.argv[1:]])
