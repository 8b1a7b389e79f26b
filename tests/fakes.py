"""Scripted stand-ins for the parts a test cannot get on demand from a real server.

`ScriptedBackend` and `Script` (a scripted LLM backend that replays text,
fails or stalls on cue and records every call), `MemoryKeyring` and
`free_port` live in the fault harness, `core.faults`, because the fault suite
ships in the package and needs them at run time; they are re-exported here so
tests have one place to import fakes from. `ScriptedAttributor` answers
`Attributor.attribute` with a given result per sentence, for tests about what
the consumers of attribution show rather than about how well the attributor
judges.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from core.events import SupportSpan
from core.faults.fake_openai import free_port
from core.faults.memory_keyring import MemoryKeyring, memory_keyring
from core.faults.scripted import Call, Script, ScriptedBackend

__all__ = ["Call", "MemoryKeyring", "Script", "ScriptedAttribution", "ScriptedAttributor", "ScriptedBackend",
           "free_port", "memory_keyring"]


@dataclass(frozen=True)
class ScriptedAttribution:
    """The fields of `core.attribution.Attribution` the pipeline reads."""

    spans: tuple[SupportSpan, ...] = ()
    support: float = 0.0
    supported: bool = False
    kind: str = "claim"


class ScriptedAttributor:
    """Returns `results[sentence text]` for each answer sentence."""

    verifier_error = None  # the support verifier is "loaded": nothing to report after the answer

    def __init__(self, results: Mapping[str, ScriptedAttribution]):
        self.results = dict(results)

    def prefetch(self) -> None:
        """Nothing to load."""

    def attribute(self, claim: str, pool) -> ScriptedAttribution:
        return self.results[claim]  # a KeyError names a sentence the test did not script
