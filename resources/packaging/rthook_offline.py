"""PyInstaller runtime hook: the frozen app never reaches for the network.

Runs before any application import. `core.embedding` sets the same variables
before it imports sentence-transformers, but in the frozen build the Hugging
Face libraries could be imported earlier by another route; setting them here
makes "no download at run time" hold whatever the import order. Values the
user set explicitly are kept (setdefault).
"""
import os

for _name, _value in (("HF_HUB_OFFLINE", "1"), ("TRANSFORMERS_OFFLINE", "1"), ("HF_HUB_DISABLE_TELEMETRY", "1"),
                      ("ANONYMIZED_TELEMETRY", "False")):
    os.environ.setdefault(_name, _value)
