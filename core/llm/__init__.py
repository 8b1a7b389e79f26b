"""LLM backends behind one small async streaming interface (see `core.llm.base`)."""
