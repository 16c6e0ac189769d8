"""TensorFlow serving runtime for SavedModels (TF Serving's REST and gRPC APIs, in Python).

Owns: loading and calling SavedModels (`runtime`), the TF Serving JSON codec (`codec`), dynamic
batching (`batching`), model versions and hot swap (`versions`), the shared predict path
(`server`), the REST (`rest`) and gRPC (`grpc_api`) front ends, the process runner (`process`),
and the replica entry point the emulator spawns (`replica`). Must not: be imported by the
deployer core or the emulator control plane (import-linter contracts), or import TensorFlow at
package import time.
"""
