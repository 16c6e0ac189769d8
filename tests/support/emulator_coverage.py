"""docs/emulator-coverage.md, generated: which documented methods the emulator serves.

Owns the generator: every method of the discovery documents in scope (`discovery.methods`:
storage v1 buckets / objects, aiplatform v1 projects.locations models / endpoints /
batchPredictionJobs / operations) is sent, as a sample request on each of its HTTP
bindings, to the emulator's own router (built in-process over a temp data dir, no socket);
a method whose bindings all resolve to a route is implemented, some of them partial, none
not. `PARTIAL` is the hand-kept table of what an implemented method leaves out; a note on
a method the router does not serve is an error, so the table cannot go stale either.

    python -m tests.support.emulator_coverage            # rewrite docs/emulator-coverage.md
    python -m tests.support.emulator_coverage --check    # exit 1 if the file differs

Must not: start a server process or reach the network.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from tests.support import discovery

DOC = Path(__file__).resolve().parents[2] / "docs" / "emulator-coverage.md"

# What an implemented method leaves out (documented behaviour the emulator does not emulate).
PARTIAL: dict[str, str] = {
    "storage.buckets.insert": (
        "keeps name, location, storageClass, labels and versioning; other bucket fields "
        "(lifecycle, cors, retentionPolicy, softDeletePolicy, encryption, ACLs, ...) are "
        "accepted and dropped; predefinedAcl, projection ignored"
    ),
    "storage.buckets.patch": "changes labels and versioning only",
    "storage.buckets.update": "changes labels and versioning only",
    "storage.buckets.get": "no ACLs (projection ignored)",
    "storage.buckets.list": "no ACLs (projection ignored)",
    "storage.buckets.operations.get": (
        "the only operations are bulkRestore's, kept in memory (gone after a restart)"
    ),
    "storage.buckets.operations.list": (
        "the only operations are bulkRestore's; filter and paging ignored"
    ),
    "storage.objects.bulkRestore": (
        "soft delete is not emulated (a delete is final, as with a soft-delete retention of "
        "0): the operation completes at once, having restored nothing"
    ),
    "storage.objects.copy": "no ACLs, KMS keys or retention; destinationPredefinedAcl ignored",
    "storage.objects.rewrite": (
        "finishes in one call (never returns a rewriteToken; maxBytesRewrittenPerCall "
        "ignored); no KMS keys or ACLs"
    ),
    "storage.objects.compose": "no KMS keys or ACLs",
    "storage.objects.delete": "ifGenerationNotMatch and ifMetagenerationNotMatch ignored",
    "storage.objects.get": "softDeleted / restoreToken ignored (nothing is soft-deleted)",
    "storage.objects.insert": (
        "no ACLs, KMS keys, retention or contexts; ifMetagenerationNotMatch ignored"
    ),
    "storage.objects.list": "softDeleted and includeFoldersAsPrefixes ignored; no ACLs",
    "storage.objects.patch": (
        "contentType, metadata, contentEncoding, cacheControl, contentLanguage, "
        "contentDisposition and customTime change; ACLs, retention, eventBasedHold, "
        "temporaryHold are not kept"
    ),
    "storage.objects.update": "as patch (the fields it keeps are replaced)",
    "aiplatform.projects.locations.models.list": (
        'filter: field="value" terms (labels.KEY, display_name, name) joined with AND'
    ),
    "aiplatform.projects.locations.endpoints.list": (
        'filter: field="value" terms (labels.KEY, display_name, name) joined with AND'
    ),
    "aiplatform.projects.locations.batchPredictionJobs.list": (
        'filter: field="value" terms (labels.KEY, display_name, name) joined with AND'
    ),
    "aiplatform.projects.locations.batchPredictionJobs.create": (
        "runs on the emulator's local replicas (machine types recorded, not provisioned); "
        "BigQuery input and output are local table files (<data dir>/bigquery/P.D.T.jsonl)"
    ),
    "aiplatform.projects.locations.endpoints.deployModel": (
        "replicas are local processes running the emulator's runtimes, not the container "
        "image; machine types and accelerators recorded, not provisioned; autoscaled between "
        "min and max replicas, at most $DEPLOYER_EMULATOR_MAX_REPLICAS"
    ),
}


@dataclass(frozen=True)
class Row:
    method: discovery.Method
    status: str  # "implemented" | "partial" | "not"
    routes: tuple[str, ...]  # emulator route names serving it
    note: str


def _router():  # type: ignore[no-untyped-def]
    """The emulator's router with every API surface, over a throwaway data dir."""
    from deployer.emulator import gcs, vertex
    from deployer.emulator.context import EmulatorContext
    from deployer.emulator.faults import FaultController, register_admin
    from deployer.emulator.http import Router
    from deployer.emulator.objects import ObjectStore

    tmp = tempfile.TemporaryDirectory(prefix="deployer-coverage-")
    data = Path(tmp.name)
    ctx = EmulatorContext(
        data_dir=data,
        host="127.0.0.1",
        port=0,
        objects=ObjectStore(data, fsync=False),
        faults=FaultController(),
    )
    router = Router()
    register_admin(router, ctx)
    gcs.register(router, ctx)
    vertex.register(router, ctx)
    return router, ctx, tmp


def rows() -> list[Row]:
    from deployer.emulator.http import Request, ServiceError

    router, ctx, tmp = _router()
    try:
        out = []
        for method in discovery.methods():
            served, missing = [], []
            for template in method.paths:
                path = discovery.Method(**{**method.__dict__, "paths": (template,)}).sample_path()
                try:
                    found = router.resolve(Request.from_target(method.http_method, path, {}))
                except ServiceError:  # 405: the path is served, not with this verb
                    found = None
                if found is None or found[0].name.startswith("_emulator"):
                    missing.append(template)
                else:
                    served.append(found[0].name)
            note = PARTIAL.get(method.id, "")
            if not served:
                if note:
                    raise SystemExit(
                        f"PARTIAL names {method.id}, which the emulator does not serve"
                    )
                status = "not"
            elif missing or note:
                status = "partial"
                if missing:
                    note = "; ".join(
                        [*([note] if note else []), "not served: " + ", ".join(missing)]
                    )
            else:
                status = "implemented"
            out.append(Row(method, status, tuple(dict.fromkeys(served)), note))
        stale = set(PARTIAL) - {r.method.id for r in out}
        if stale:
            raise SystemExit(f"PARTIAL names methods not in the documents: {sorted(stale)}")
        return out
    finally:
        ctx.run_shutdown_hooks()
        tmp.cleanup()


def render(table: list[Row]) -> str:
    lines = [
        "# Emulator coverage of Google's documented methods",
        "",
        "Generated by `python -m tests.support.emulator_coverage` from the discovery documents",
        "that google-api-python-client ships (storage v1, aiplatform v1) and the emulator's",
        "router; `tests/unit/test_emulator_coverage.py` fails when this file is stale. Do not",
        "edit it by hand: change the emulator, or the `PARTIAL` notes in the generator.",
        "",
        "A method is *implemented* when a request on each of its documented HTTP bindings",
        "reaches an emulator route, *partial* when some binding does not or the notes say what",
        "it leaves out, *not* when none does (the emulator answers 404 or 405).",
        "",
    ]
    for api, title in (("storage", "Cloud Storage JSON API v1"), ("aiplatform", "Vertex AI v1")):
        mine = [r for r in table if r.method.api == api]
        counts = Counter(r.status for r in mine)
        lines += [
            f"## {title}",
            "",
            f"{len(mine)} methods: {counts['implemented']} implemented, {counts['partial']} "
            f"partial, {counts['not']} not.",
            "",
            "| method | HTTP | status | emulator route | left out |",
            "|---|---|---|---|---|",
        ]
        for r in mine:
            binding = f"`{r.method.http_method} {r.method.paths[0]}`"
            route = ", ".join(f"`{n}`" for n in r.routes)
            note = r.note.replace("|", "\\|")
            lines.append(f"| `{r.method.id}` | {binding} | {r.status} | {route} | {note} |")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="exit 1 if the file is stale")
    args = parser.parse_args(argv)
    text = render(rows())
    if args.check:
        current = DOC.read_text() if DOC.exists() else ""
        if current != text:
            print(f"{DOC} is stale: run python -m tests.support.emulator_coverage", file=sys.stderr)
            return 1
        return 0
    DOC.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
