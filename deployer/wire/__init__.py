"""Wire vocabularies shared by the client and the emulator (neither side owns them):
Vertex batch prediction's file formats and result-file naming, bounded JSON parsing, and
reading a SavedModel's serving signature from saved_model.pb (without TensorFlow)."""
