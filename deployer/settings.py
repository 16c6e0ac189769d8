"""Every `DEPLOYER_*` environment variable deployer reads: name, type, default and meaning, once.

Owns reading them. `settings.UPLOAD_WORKERS.get()` reads the environment when called (never
frozen into a constant at import, so a test or a caller may set a variable afterwards),
treats an empty value as unset, parses it, and raises `SettingError` naming the variable and
the fix when it does not parse. `~` in `DEPLOYER_HOME` is expanded here and nowhere else.
The README's "Environment variables" table is `readme_table()` (`python -m deployer.settings`
prints it; a unit test holds the two equal).

Must not: import anything from deployer (it sits below the error tree in the layers), cache
a value, or be bypassed: code under deployer/ reads no `DEPLOYER_*` variable but through here.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class SettingError(ValueError):
    """A variable is set to a value its setting cannot parse (the CLI exits 3 on it)."""

    def __init__(self, name: str, value: str, expected: str) -> None:
        super().__init__(f"{name}={value!r} is not {expected}")
        self.message = str(self)
        self.hint = f"set {name} to {expected}, or unset it for the default"


@dataclass(frozen=True)
class Setting(Generic[T]):
    """One variable. `default` is written as it would be in the environment ("" = unset)."""

    name: str  # DEPLOYER_...
    kind: str  # what a valid value is, in words (the README's type column and the error's fix)
    default: str  # parsed by `parse` like a set value, so the README shows what applies
    parse: Callable[[str], T]  # raises ValueError on a bad value
    read_by: tuple[str, ...]  # the processes that read it: set it where they start
    doc: str  # one line for the README

    def get(self, environ: Mapping[str, str] | None = None) -> T:
        """The value now (from `environ`, default `os.environ`), parsed."""
        env = os.environ if environ is None else environ
        raw = env.get(self.name, "").strip()
        try:
            return self.parse(raw or self.default)
        except ValueError:
            raise SettingError(self.name, raw, self.kind) from None


def _optional(raw: str) -> str | None:
    return raw or None


def _text(raw: str) -> str:
    if not raw:
        raise ValueError("empty")
    return raw


def _path(raw: str) -> Path:
    return Path(raw).expanduser()


def _flag(raw: str) -> bool:
    value = raw.lower()
    if value in ("", "0", "false", "no", "off"):
        return False
    if value in ("1", "true", "yes", "on"):
        return True
    raise ValueError(raw)


def _positive_int(raw: str) -> int:
    value = int(raw)
    if value < 1:
        raise ValueError(raw)
    return value


def _positive_float(raw: str) -> float:
    value = float(raw)
    if not value > 0:  # also refuses nan
        raise ValueError(raw)
    return value


def _non_negative_float(raw: str) -> float:
    value = float(raw)
    if not value >= 0:
        raise ValueError(raw)
    return value


_FLAG = "a flag: 1/true/yes/on, or 0/false/no/off"
_COUNT = "a whole number >= 1"
CLI = "CLI"
EMULATOR = "emulator"

HOME: Setting[Path] = Setting(
    "DEPLOYER_HOME",
    "a directory",
    "~/.deployer",
    _path,
    (CLI,),
    "Per-user state: the background emulator (`local/`: state file, data, log), the artifact "
    "hash cache (`cache/`), refreshed prices (`prices.json`).",
)
EMULATOR_URL: Setting[str | None] = Setting(
    "DEPLOYER_EMULATOR",
    "a URL such as http://127.0.0.1:8765",
    "",
    _optional,
    (CLI,),
    "URL of a running emulator for `target: local`; unset: the `deployer local up` instance, "
    "started on demand.",
)
EMULATOR_TOKEN: Setting[str | None] = Setting(
    "DEPLOYER_EMULATOR_TOKEN",
    "a secret of 16+ printable characters",
    "",
    _optional,
    (CLI, EMULATOR),
    "Bearer token of the local emulator: the emulator requires it on every request "
    "(`--auth-token` overrides; required to bind a non-loopback address) and deployer sends "
    "it as `Authorization: Bearer`.",
)
UPLOAD_WORKERS: Setting[int] = Setting(
    "DEPLOYER_UPLOAD_WORKERS",
    _COUNT,
    "8",
    _positive_int,
    (CLI,),
    "Parallel Cloud Storage uploads, server-side copies and deletes (artifacts, batch inputs, "
    "teardown).",
)
DOWNLOAD_WORKERS: Setting[int] = Setting(
    "DEPLOYER_DOWNLOAD_WORKERS",
    _COUNT,
    "8",
    _positive_int,
    (CLI,),
    "Parallel downloads of a batch job's output shards.",
)
RETRY_SCALE: Setting[float] = Setting(
    "DEPLOYER_RETRY_SCALE",
    "a number >= 0",
    "1",
    _non_negative_float,
    (CLI,),
    "Multiplies every retry backoff (tests against a faulty emulator shrink it); the number "
    "of attempts and the time limit stay.",
)
NO_HASH_CACHE: Setting[bool] = Setting(
    "DEPLOYER_NO_HASH_CACHE",
    _FLAG,
    "",
    _flag,
    (CLI,),
    "Hash every artifact's bytes on every run, instead of reusing a digest remembered by "
    "path, size and mtime in `$DEPLOYER_HOME/cache/`.",
)
EAGER_IMPORTS: Setting[bool] = Setting(
    "DEPLOYER_EAGER_IMPORTS",
    _FLAG,
    "",
    _flag,
    (CLI, EMULATOR),
    "Import `google.cloud.aiplatform_v1` whole when first needed, instead of through light "
    "shells that load only the submodules used (seconds and ~85 MB more).",
)
BILLING_API: Setting[str | None] = Setting(
    "DEPLOYER_BILLING_API",
    "a URL",
    "",
    _optional,
    (CLI,),
    "Base URL of the Cloud Billing Catalog API that `deployer prices --refresh` reads; unset: "
    "https://cloudbilling.googleapis.com.",
)
BATCH_PART_BYTES: Setting[int] = Setting(
    "DEPLOYER_BATCH_PART_BYTES",
    _COUNT,
    str(16 * 1024 * 1024),
    _positive_int,
    (CLI,),
    "Most bytes in one part of a staged batch input (Vertex reads the parts in parallel).",
)
BATCH_UPLOADS_IN_FLIGHT: Setting[int] = Setting(
    "DEPLOYER_BATCH_UPLOADS_IN_FLIGHT",
    _COUNT,
    "1",
    _positive_int,
    (CLI,),
    "Batch input parts (1 MiB or more) uploading at once; each holds an 8 MiB chunk in memory.",
)
REPLICA_MODULE: Setting[str] = Setting(
    "DEPLOYER_REPLICA_MODULE",
    "a Python module name",
    "deployer.serving.replica",
    _text,
    (EMULATOR,),
    "The module each model replica process runs; a module taking the same flags can stand in "
    "for the TensorFlow replica.",
)
REPLICA_READY_TIMEOUT: Setting[float] = Setting(
    "DEPLOYER_REPLICA_READY_TIMEOUT",
    "seconds, > 0",
    "300",
    _positive_float,
    (EMULATOR,),
    "How long the emulator waits for a replica to load its model and answer its health route.",
)
CONTAINER_RUNTIME: Setting[str | None] = Setting(
    "DEPLOYER_CONTAINER_RUNTIME",
    "docker or podman",
    "",
    _optional,
    (EMULATOR,),
    "The runtime that runs custom serving containers; unset: Docker if its daemon answers, "
    "else Podman.",
)
EMULATOR_BATCH_SHARD_ROWS: Setting[int] = Setting(
    "DEPLOYER_EMULATOR_BATCH_SHARD_ROWS",
    _COUNT,
    "2500",
    _positive_int,
    (EMULATOR,),
    "Input rows per output shard (`prediction.results-0000N-of-0000M`) of an emulated batch job.",
)
EMULATOR_BATCH_MAX_REPLICAS: Setting[int] = Setting(
    "DEPLOYER_EMULATOR_BATCH_MAX_REPLICAS",
    _COUNT,
    "2",
    _positive_int,
    (EMULATOR,),
    "Most replica processes one emulated batch job starts, whatever its `replicas` asks.",
)

EMULATOR_MAX_REPLICAS: Setting[int] = Setting(
    "DEPLOYER_EMULATOR_MAX_REPLICAS",
    _COUNT,
    "4",
    _positive_int,
    (EMULATOR,),
    "Most replica processes the emulator runs for one deployed model: caps both its "
    "`min_replicas` and how far autoscaling goes towards `max_replicas`.",
)
EMULATOR_AUTOSCALE_INTERVAL: Setting[float] = Setting(
    "DEPLOYER_EMULATOR_AUTOSCALE_INTERVAL",
    "seconds, > 0",
    "5",
    _positive_float,
    (EMULATOR,),
    "How often the emulator measures each autoscaled deployed model (requests per minute, "
    "replica CPU) and resizes its replicas towards the target.",
)
EMULATOR_AUTOSCALE_COOLDOWN: Setting[float] = Setting(
    "DEPLOYER_EMULATOR_AUTOSCALE_COOLDOWN",
    "seconds, > 0",
    "60",
    _positive_float,
    (EMULATOR,),
    "How long load must stay low before the emulator removes replicas (scale-up is at once; "
    "Vertex waits several minutes before scaling down).",
)

ALL: tuple[Setting[Any], ...] = (
    HOME,
    EMULATOR_URL,
    EMULATOR_TOKEN,
    UPLOAD_WORKERS,
    DOWNLOAD_WORKERS,
    RETRY_SCALE,
    NO_HASH_CACHE,
    EAGER_IMPORTS,
    BILLING_API,
    BATCH_PART_BYTES,
    BATCH_UPLOADS_IN_FLIGHT,
    REPLICA_MODULE,
    REPLICA_READY_TIMEOUT,
    CONTAINER_RUNTIME,
    EMULATOR_BATCH_SHARD_ROWS,
    EMULATOR_BATCH_MAX_REPLICAS,
    EMULATOR_MAX_REPLICAS,
    EMULATOR_AUTOSCALE_INTERVAL,
    EMULATOR_AUTOSCALE_COOLDOWN,
)


def check(*, read_by: str) -> None:
    """Parse every variable `read_by` that process now: SettingError on the first bad one."""
    for setting in ALL:
        if read_by in setting.read_by:
            setting.get()


def readme_table() -> str:
    """The README's table of variables (Markdown), generated from ALL."""
    rows = [
        "| Variable | Value | Default | Read by | What it does |",
        "|---|---|---|---|---|",
    ]
    for s in ALL:
        default = f"`{s.default}`" if s.default else "unset"
        read_by = ", ".join(s.read_by)
        rows.append(f"| `{s.name}` | {s.kind} | {default} | {read_by} | {s.doc} |")
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    sys.stdout.write(readme_table())
