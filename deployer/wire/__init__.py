"""Wire vocabularies shared by the client and the emulator (neither side owns them):
Vertex batch prediction's file formats and result-file naming, and bounded JSON parsing."""
