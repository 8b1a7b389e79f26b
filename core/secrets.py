"""Where the OpenAI API key is kept: the system keyring, else only in memory.

Secrets never go into the settings file, a log, or any other file (architecture
rule 9). The key is stored with `keyring` (service "Sourcelight", user
"openai_api_key"). Headless machines and minimal desktops often have no keyring
backend at all (`keyring.backends.fail.Keyring`, whose every call raises
`NoKeyringError`); then a key the user enters lives in this process's memory
for the session only, the `OPENAI_API_KEY` environment variable still works,
and `ApiKeyStore.status()` says so plainly so the settings dialog can show it.

One `ApiKeyStore` is created by the composition root and handed to whoever
needs it; the session-only key is instance state, not a module global.

Keyring calls can block (a desktop keyring may ask to be unlocked), so the GUI
should call these methods off the event-loop thread.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Mapping

import keyring
import keyring.errors

log = logging.getLogger(__name__)

SERVICE = "Sourcelight"
API_KEY_USER = "openai_api_key"
ENV_VAR = "OPENAI_API_KEY"

NO_KEYRING_MESSAGE = (
    "No system keyring is available, so the API key is kept for this session only and must be entered again "
    f"after a restart. To keep it, set the {ENV_VAR} environment variable or install a keyring service "
    "(GNOME Keyring, KWallet, or the macOS/Windows credential store).")


@dataclass(frozen=True)
class KeyStatus:
    """Where the key currently comes from, for display; never contains the key."""

    source: str | None  # "session" | "keyring" | "environment" | None
    keyring_available: bool
    message: str


class ApiKeyStore:
    """Get, set and delete the API key: keyring first, session memory as the fallback."""

    def __init__(self, *, service: str = SERVICE, username: str = API_KEY_USER,
                 environ: Mapping[str, str] | None = None):
        self._service = service
        self._username = username
        self._environ = os.environ if environ is None else environ
        self._session_key: str | None = None

    def __repr__(self) -> str:
        return f"ApiKeyStore(service={self._service!r}, username={self._username!r})"

    def get(self) -> str | None:
        """The key to use: one held for this session, else the keyring's, else OPENAI_API_KEY, else None."""
        return self.stored() or self._environ.get(ENV_VAR) or None

    def stored(self) -> str | None:
        """The key the user gave Sourcelight (this session's, else the keyring's), never OPENAI_API_KEY.

        This is what backends are built with: `core.llm.factory` decides by
        itself where OPENAI_API_KEY may go (to OpenAI, or to the server in
        OPENAI_BASE_URL), so that it never reaches a server URL typed into the
        settings, which may not be OpenAI's.
        """
        return self._session_key or self._keyring_get() or None

    def set(self, key: str) -> KeyStatus:
        """Remember `key`: in the keyring if there is one, otherwise for this session only."""
        key = key.strip()
        if not key:
            return self.delete()
        try:
            keyring.set_password(self._service, self._username, key)
        except keyring.errors.KeyringError as exc:
            log.info("API key kept for this session only: keyring unavailable (%s)", type(exc).__name__)
            self._session_key = key
            return KeyStatus("session", False, NO_KEYRING_MESSAGE)
        self._session_key = None
        return KeyStatus("keyring", True, "The API key is saved in the system keyring.")

    def delete(self) -> KeyStatus:
        """Forget the key in the keyring and in memory (OPENAI_API_KEY, if set, still applies)."""
        self._session_key = None
        try:
            keyring.delete_password(self._service, self._username)
        except keyring.errors.PasswordDeleteError:
            pass  # nothing was stored
        except keyring.errors.KeyringError as exc:
            log.info("Could not delete the API key from the keyring (%s)", type(exc).__name__)
        return self.status()

    def status(self) -> KeyStatus:
        """Where the key comes from now, with a sentence fit for the settings dialog."""
        available = self.keyring_available()
        if self._session_key:
            return KeyStatus("session", available, NO_KEYRING_MESSAGE)
        if available and self._keyring_get():
            return KeyStatus("keyring", True, "The API key is saved in the system keyring.")
        if self._environ.get(ENV_VAR):
            return KeyStatus("environment", available, f"The API key comes from the {ENV_VAR} environment variable.")
        if available:
            return KeyStatus(None, True, "No API key is set - enter one in Settings > Model.")
        return KeyStatus(None, False, "No API key is set - enter one in Settings > Model. " + NO_KEYRING_MESSAGE)

    @staticmethod
    def keyring_available() -> bool:
        """False when keyring found no usable backend.

        Only the backend type is inspected: probing with a read could make a
        locked desktop keyring pop up an unlock prompt just to draw a dialog.
        """
        from keyring.backends import fail

        return not isinstance(keyring.get_keyring(), fail.Keyring)

    def _keyring_get(self) -> str | None:
        try:
            return keyring.get_password(self._service, self._username)
        except keyring.errors.KeyringError:
            return None
