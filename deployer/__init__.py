"""deployer: declarative deployments of TensorFlow models to Vertex AI.

The package root stays import-free so `deployer --help` is fast: heavy modules
(TensorFlow, google.cloud.aiplatform) are imported lazily where they are used.
"""

__version__ = "0.1.0"
