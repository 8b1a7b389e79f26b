"""The ingest flow: files in (`documents`), sentences (`segment`), chunks (`chunking`),
pooled chunk vectors (`chunk_vectors`), the ChromaDB store (`store`); `ingestor` runs it."""
