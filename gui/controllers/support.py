"""Small pieces the feature controllers share: user-facing error text, backend names, builders run on workers."""
from __future__ import annotations

import asyncio

from shiboken6 import isValid


class EngineUnavailable(Exception):
    """The engine could not be built; the message says why and what to do."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message
        self.code = "engine_unavailable"


def describe(exc: BaseException, what: str) -> str:
    """A user-facing message: core errors already say the next step; anything else is a bug report."""
    message = getattr(exc, "message", None)
    if message:
        return str(message)
    return (f"{what} ({type(exc).__name__}: {exc}). Try again; if it keeps happening, report it with this "
            "message.")


def backend_description(backend) -> str:
    try:
        return str(backend.description)
    except Exception:
        return type(backend).__name__


def model_name(backend) -> str:
    """The name of the model a backend answers with ("Answered by ..."): its own name, else its description."""
    for attribute in ("model_name", "model"):
        try:
            name = getattr(backend, attribute, None)
        except Exception:
            name = None
        if isinstance(name, str) and name.strip():
            return name.strip()
    return backend_description(backend)


def make_backend(settings, api_key):
    """A backend for `settings` (on a worker thread: the first call imports the openai SDK)."""
    from core.llm.factory import make_backend as build

    return build(settings, api_key)


def make_key_store():
    from core.secrets import ApiKeyStore

    return ApiKeyStore()


def default_engine(settings, *, key_store):
    """The real engine with the backend the settings choose (runs on a worker thread)."""
    from core.engine import Engine
    from core.llm.factory import make_backend as build

    # The bundled model needs no key, and asking the keyring costs ~0.1 s of the start (issue 19).
    key = key_store.stored() if settings.backend in ("openai", "openai_compatible") else None
    return Engine(settings, backend=build(settings, key))


def delete_later(widgets) -> None:
    """deleteLater() each widget still alive (a window closed meanwhile has deleted its children)."""
    for widget in widgets:
        if isValid(widget):
            widget.deleteLater()


async def until_done(task: asyncio.Task) -> None:
    """Wait until `task` has ended, even if the waiting task is cancelled again meanwhile.

    Only called for a task that has been stopped already, so it ends soon; the
    waiter is itself ending (in a `finally`) and must not skip its clean-up.
    """
    while not task.done():
        try:
            await asyncio.wait({task})
        except asyncio.CancelledError:
            continue
