"""Local models: what is on this computer and its loopback servers, and the curated downloads.

`gguf_meta` reads what a GGUF file says about itself, `discovery` finds every
model the app can use right now (and turns a listed model into the settings
that make it the one that answers), `download` fetches a recommended model
on request, and `text` puts models and downloads into words for the window
and the command line.
"""
