"""Local emulator of Vertex AI's v1 REST API and Cloud Storage's JSON API (`deployer local`).

One HTTP server on loopback serves both APIs on one port. Layout:
`http` (request/response/router), `server` (transport and lifecycle),
`context` (shared state), `objects` (crash-safe object store), `gcs` (GCS JSON
API), `faults` (fault injection, request log, admin routes), `instance`
(background instance for `deployer local up/down/status`), `vertex` (Vertex AI
surface). The deployer core never imports this package (import-linter checks);
it reaches a running emulator over HTTP or via `python -m deployer local up`.
This package never imports TensorFlow: only replica processes do.
"""

from __future__ import annotations
