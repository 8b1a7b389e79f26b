"""Fixtures of the fault suite: one `FaultContext` for the session, on the shared bundled embedder.

The context owns the scripted OpenAI-compatible server, the engine with the
tiny corpus the question cases use, and the bundled local model; sharing them
keeps the suite within its time budget on two busy cores.
"""
from __future__ import annotations

import pytest

from core.faults.base import FaultContext


@pytest.fixture(scope="session")
def fault_ctx(embedder, tmp_path_factory):
    ctx = FaultContext(embedder=embedder, root=tmp_path_factory.mktemp("faults"))
    yield ctx
    ctx.close()
