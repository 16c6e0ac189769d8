"""Installs the loopback-only network guard in every Python process the tests start.

The pytest plugin (tests/support/netguard.py) prepends this folder to `PYTHONPATH`, so each
interpreter launched from a test (the emulator, its replicas, `deployer` and `python -m ...`
subprocesses) imports this module at startup, before any project code runs.

Owns: installing `loopback_guard` and then running the `sitecustomize` this one shadows, if
the interpreter has one. Must not: import anything outside the standard library.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import sys

import loopback_guard

loopback_guard.install()


def _run_shadowed_sitecustomize() -> None:
    """Putting this folder first on the path hides any other sitecustomize: run it too."""
    here = os.path.dirname(os.path.abspath(__file__))
    rest = [p for p in sys.path if os.path.abspath(p or os.curdir) != here]
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", rest)
    if spec is None or spec.loader is None:
        return
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)


_run_shadowed_sitecustomize()
