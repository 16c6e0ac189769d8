"""Test helper: write small stack specs and run the deployer CLI in-process against an emulator.

Owns `StackFiles` (a spec YAML in a temp dir with tiny real SavedModels, rewritable per step)
and `run_cli` (click's CliRunner on the root group, errors surfaced as exceptions).
Must not: start processes itself (the `emulator` fixture does) or touch the network.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

IMAGE = "us-docker.pkg.dev/vertex-ai/prediction/tf2-cpu.2-12:latest"


def build_model(path: Path, seed: int, *, raw_bytes_input: bool = False) -> Path:
    from tests.support.savedmodels import make_mnist_like_model

    # Tiny (784-8-10): quick to build, upload and serve, still a real SavedModel.
    return make_mnist_like_model(path, hidden=(8,), seed=seed, raw_bytes_input=raw_bytes_input)


@dataclass
class StackFiles:
    root: Path
    stack: str = "life"
    bucket: str = "test-project-life"
    versions: dict[str, int] = field(default_factory=lambda: {"v1": 1, "v2": 2})
    deployments: list[tuple[str, int]] = field(default_factory=lambda: [("v1", 100)])
    endpoints: tuple[str, ...] = ("ep",)
    extra: str = ""
    raw_bytes_input: bool = False  # models take raw float32 bytes ({"b64"}), not float lists

    @property
    def spec_path(self) -> Path:
        return self.root / f"{self.stack}.yaml"

    def artifact(self, alias: str) -> Path:
        return self.root / "models" / alias

    def retrain(self, alias: str, seed: int) -> list[str]:
        """New weights, same graph: copy only the variables of a model built with `seed`.

        That is what retraining changes; returns the relative paths that changed."""
        import filecmp
        import shutil

        fresh = build_model(self.root / "retrain" / f"{alias}-{seed}", seed)
        changed = []
        for src in sorted((fresh / "variables").iterdir()):
            dst = self.artifact(alias) / "variables" / src.name
            if not filecmp.cmp(src, dst, shallow=False):
                shutil.copyfile(src, dst)
                changed.append(f"variables/{src.name}")
        return changed

    def write(self) -> Path:
        for alias, seed in self.versions.items():
            marker = self.root / "models" / f".{alias}.seed"  # outside the artifact tree
            if not marker.exists() or marker.read_text() != str(seed):
                build_model(self.artifact(alias), seed, raw_bytes_input=self.raw_bytes_input)
                marker.write_text(str(seed))
        lines = [
            f"stack: {self.stack}",
            "project: test-project",
            "region: us-central1",
            "target: local",
            f"bucket: {{name: {self.bucket}, create: true}}",
            "models:",
            "  - name: mnist",
            f"    container: {IMAGE}",
            "    versions:",
        ]
        lines += [f"      - {{alias: {a}, artifact: models/{a}}}" for a in self.versions]
        if self.endpoints:
            lines.append("endpoints:")
        for ep in self.endpoints:
            lines += [f"  - name: {ep}", "    deployments:"]
            lines += [
                f"      - {{model: mnist@{a}, traffic: {t}, machine_type: n1-standard-2, "
                f"min_replicas: 1, max_replicas: 1}}"
                for a, t in self.deployments
            ]
        self.spec_path.write_text("\n".join(lines) + "\n" + self.extra)
        return self.spec_path


def run_cli(args: list[str], emulator_url: str, *, expect: int = 0) -> Any:
    """Run `deployer ARGS` in-process; return the click Result (stdout JSON parsed if asked)."""
    from click.testing import CliRunner

    from deployer.cli import cli

    runner = CliRunner()
    result = runner.invoke(
        cli,
        args,
        env={"DEPLOYER_EMULATOR": emulator_url, "DEPLOYER_RETRY_SCALE": "0.02"},
        standalone_mode=False,
        catch_exceptions=True,
    )
    code = result.exit_code
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        from deployer.errors import DeployerError

        if isinstance(result.exception, DeployerError) and expect:
            # The root's main() would exit with the error's own code: check that one.
            assert result.exception.exit_code == expect, result.exception.render()
            result.deployer_error = result.exception
            return result
        raise result.exception
    assert code == expect, f"exit {code}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    return result


def json_out(result: Any) -> Any:
    return json.loads(result.stdout)
