"""Request/response logging in place of BigQuery: sampled rows appended to a local table file.

Owns what the emulator does for an endpoint's predict_request_response_logging_config
(issue 16): with `enabled`, each online prediction is logged with probability
`sampling_rate` as one JSON line in `<data dir>/bigquery/<project>.<dataset>.<table>.jsonl`,
with the columns of Vertex's request_response_logging table (endpoint, deployed_model_id,
logging_time, request_id, request_payload, response_payload). A destination that names only
a project or dataset gets Vertex's default names for the rest.

Must not: reach BigQuery (nothing leaves the machine), or fail a prediction because a row
could not be written (a logging failure is the log's problem, not the caller's).
"""

from __future__ import annotations

import json
import random
import re
import threading
import time
from pathlib import Path

_SAFE = re.compile(r"[^A-Za-z0-9_.-]")
DEFAULT_DATASET = "logging"  # Vertex: logging_<endpoint display name>_<endpoint id>
DEFAULT_TABLE = "request_response_logging"


def table_name(output_uri: str) -> str:
    """bq://p.d.t -> "p.d.t"; the missing dataset or table gets a default name."""
    parts = output_uri.removeprefix("bq://").split(".")
    parts += [DEFAULT_DATASET, DEFAULT_TABLE][len(parts) - 1 :]
    return _SAFE.sub("_", ".".join(parts[:3]))


class RequestResponseLog:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._lock = threading.Lock()
        self._ids = iter(range(1, 1 << 62))

    def path(self, output_uri: str) -> Path:
        return self.root / f"{table_name(output_uri)}.jsonl"

    def record(
        self,
        config: tuple[float, str] | None,
        endpoint: str,
        deployed_model_id: str,
        request: bytes,
        response: bytes,
    ) -> None:
        """Append one row with probability `config`'s sampling rate (None: logging off)."""
        if config is None:
            return
        rate, output_uri = config
        if rate <= 0 or random.random() >= rate:
            return
        with self._lock:
            row = {
                "endpoint": endpoint,
                "deployed_model_id": deployed_model_id,
                "logging_time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "request_id": next(self._ids),
                "request_payload": [request.decode("utf-8", "replace")],
                "response_payload": [response.decode("utf-8", "replace")],
            }
            try:
                self.root.mkdir(parents=True, exist_ok=True)
                with open(self.path(output_uri), "a", encoding="utf-8") as fh:
                    fh.write(json.dumps(row, separators=(",", ":")) + "\n")
            except OSError:
                pass  # the prediction was answered; a row that cannot be written is dropped
