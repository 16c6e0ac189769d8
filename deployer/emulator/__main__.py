"""`python -m deployer.emulator run ...`: the same command as `deployer local run`.

Exists so the emulator starts without the deployer CLI root (background
instances and test fixtures spawn it this way). Must not hold any logic.
"""

from __future__ import annotations

from deployer.cli.local import local

if __name__ == "__main__":
    local.main(prog_name="python -m deployer.emulator")
