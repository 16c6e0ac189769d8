"""The naive model server users often write: Flask, one `model.predict` per request.

Owns the baseline of benchmark 3 (online prediction). It is deliberately the way a tutorial
writes it, not a strawman: Flask's built-in threaded server, the Keras model loaded once at
start, `model.predict(np.array(instances))` per request, TF Serving's REST paths so the same
load generator drives it. Keras 3 loads a SavedModel for inference through
`keras.layers.TFSMLayer` (what its docs tell users to do; `load_model` no longer reads
SavedModels), wrapped in a `Sequential` to get `.predict`.

Run: `python -m benchmarks.naive_server --saved-model DIR --port P [--model-name NAME]`.

Must not: batch, cache, or otherwise optimise (that is what deployer's runtime is measured
against), or bind anything but loopback.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def build_app(saved_model: str, model_name: str, input_shape: tuple[int, ...]) -> Any:
    import keras
    import numpy as np
    from flask import Flask, jsonify, request

    model = keras.Sequential([keras.layers.TFSMLayer(saved_model, call_endpoint="serving_default")])
    app = Flask("naive_server")

    @app.get("/health")
    def health() -> Any:
        return jsonify({"status": "ok"})

    @app.post(f"/v1/models/{model_name}:predict")
    def predict() -> Any:
        instances = np.array(request.get_json()["instances"], dtype=np.float32)
        preds = model.predict(instances, verbose=0)
        if isinstance(preds, dict):  # TFSMLayer returns the signature's output dict as is
            preds = preds["output_0"] if "output_0" in preds else next(iter(preds.values()))
        return jsonify({"predictions": preds.tolist()})

    # The first predict builds the graph; users' servers pay it on the first request, we do not
    # count it against them.
    model.predict(np.zeros((1, *input_shape), dtype=np.float32), verbose=0)
    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--saved-model", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--model-name", default="model")
    parser.add_argument("--input-shape", default="28,28", help="one instance's shape (warmup)")
    args = parser.parse_args(argv)
    shape = tuple(int(d) for d in args.input_shape.split(","))
    app = build_app(args.saved_model, args.model_name, shape)
    app.run(host="127.0.0.1", port=args.port, threaded=True)


if __name__ == "__main__":
    main()
