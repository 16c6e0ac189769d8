"""Render `deployer plan|apply|teardown|reap --output json` as Markdown for a CI job summary.

Owns: turning those JSON documents (read from a file or stdin) into a short Markdown report
that the action (scripts/deployer_action.py) and the workflows append to
`$GITHUB_STEP_SUMMARY`. Reads only the keys it knows and shows the rest as a JSON block, so a
new field in deployer's output never breaks a pipeline.
Must not: call deployer or any API, or fail on a document shape it does not recognise
(a malformed summary must not turn a good deploy red).

Usage: `python scripts/plan_summary.py [--title T] [--exit-code N] [--detailed-exitcode] [FILE|-]`
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

_KIND_ICON = {"create": "+", "update": "~", "replace": "-/+", "delete": "-"}


def _money(v: Any) -> str:
    return f"${v:,.2f}" if isinstance(v, (int, float)) else "n/a"


def _cost_lines(cost: dict[str, Any]) -> list[str]:
    after = cost.get("after") or {}
    now = cost.get("now") or {}
    lines = [
        "",
        "| cost (estimate) | hourly (min replicas) | hourly (max replicas) | monthly (min) |",
        "|---|---|---|---|",
        (
            f"| after this change | {_money(after.get('hourly_min'))} | "
            f"{_money(after.get('hourly_max'))} | {_money(after.get('monthly_min'))} |"
        ),
    ]
    if now:
        lines.append(
            f"| now | {_money(now.get('hourly_min'))} | {_money(now.get('hourly_max'))} | "
            f"{_money(now.get('monthly_min'))} |"
        )
    if cost.get("delta_hourly") is not None:
        lines.append(f"\nDelta: {cost['delta_hourly']:+.4f} USD/hour.")
    if after.get("unknown"):
        lines.append("\nNot priced: " + "; ".join(str(u) for u in after["unknown"]))
    if after.get("table_source"):
        lines.append(f"\nPrices: {after['table_source']} ({after.get('table_as_of', '?')}).")
    return lines


def render(doc: Any, *, title: str, exit_code: int | None = None, detailed: bool = False) -> str:
    lines = [f"## {title}", ""]
    if exit_code is not None:
        # --detailed-exitcode (terraform's convention): 0 no changes, 2 changes, else error.
        meanings = {0: "no changes", 2: "changes pending"} if detailed else {0: "success"}
        lines.append(f"`deployer` exit code {exit_code} ({meanings.get(exit_code, 'error')}).")
        lines.append("")
    if not isinstance(doc, dict):
        lines += ["```json", json.dumps(doc, indent=2)[:20000], "```"]
        return "\n".join(lines) + "\n"
    if "stack" in doc:
        lines.append(f"Stack **{doc['stack']}**.")
    actions = doc.get("actions")
    if isinstance(actions, list):
        summary = doc.get("summary") or {}
        counts = ", ".join(f"{n} to {k}" for k, n in summary.items() if n)
        if not actions:
            lines.append("\nNo changes: the stack matches the spec.")
        else:
            lines.append(f"\n{len(actions)} action(s): {counts or 'see below'}.")
            lines += ["", "| | action | resource | address | reason |", "|---|---|---|---|---|"]
            for a in actions:
                if not isinstance(a, dict):
                    continue
                kind = str(a.get("kind", "?"))
                lines.append(
                    f"| `{_KIND_ICON.get(kind, '?')}` | {kind} | {a.get('resource', '')} | "
                    f"`{a.get('address', '')}` | {a.get('reason', '')} |"
                )
    applied = doc.get("applied")
    if isinstance(applied, list) and applied:
        took = sum(float(r.get("seconds", 0) or 0) for r in applied if isinstance(r, dict))
        lines.append(f"\nApplied {len(applied)} action(s) in {took:.1f}s.")
    if isinstance(doc.get("cost"), dict):
        lines += _cost_lines(doc["cost"])
    known = {"stack", "changes", "summary", "actions", "cost", "applied"}
    rest = {k: v for k, v in doc.items() if k not in known}
    if rest:
        lines += [
            "",
            "<details><summary>details</summary>",
            "",
            "```json",
            json.dumps(rest, indent=2, default=str)[:20000],
            "```",
            "</details>",
        ]
    return "\n".join(lines) + "\n"


def summarize(
    text: str, *, title: str, exit_code: int | None = None, detailed: bool = False
) -> str:
    """The report for deployer's stdout `text`: rendered JSON, or (not JSON: deployer failed
    before printing it) the exit code and the end of the text."""
    try:
        doc: Any = json.loads(text) if text.strip() else None
    except json.JSONDecodeError:
        doc = None
    if doc is None:
        out = f"## {title}\n\nNo JSON output (exit code {exit_code}).\n"
        if text.strip():
            out += "\n```\n" + text[-5000:] + "\n```\n"
        return out
    return render(doc, title=title, exit_code=exit_code, detailed=detailed)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("path", nargs="?", default="-")
    parser.add_argument("--title", default="deployer plan")
    parser.add_argument("--exit-code", type=int, default=None)
    parser.add_argument(
        "--detailed-exitcode",
        action="store_true",
        help="the exit code follows plan --detailed-exitcode (2 = changes)",
    )
    args = parser.parse_args(argv)
    text = sys.stdin.read() if args.path == "-" else Path(args.path).read_text(encoding="utf-8")
    sys.stdout.write(
        summarize(text, title=args.title, exit_code=args.exit_code, detailed=args.detailed_exitcode)
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
