"""Sourcelight's engine: everything that is not a pixel.

Documents, chunking, embeddings, the ChromaDB store, retrieval, LLM backends,
the answer pipeline, attribution and the headless CLI live here. Nothing in
this package imports Qt (a test enforces it), so the engine runs headless.
"""
