"""Offline evaluation of the engine on public, human-annotated benchmarks.

`attribution_eval` runs the product's own attributor on WiCE and ExpertQA
(`sourcelight eval attribution ...`); `attribution_data` reads those files into
the pools the live pipeline would build; `chunk_vectors` measures retrieval
with pooled chunk vectors (`sourcelight eval chunk-vectors ...`); `arguments`
holds the command-line pieces they share.
"""
