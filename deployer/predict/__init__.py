"""The online prediction client: request encoding from a model's serving signature
(read from `saved_model.pb` without TensorFlow) and splitting under Vertex's limits."""
