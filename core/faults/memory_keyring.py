"""An in-memory keyring backend, for the fault suite and the tests.

`ApiKeyStore` keeps API keys in the desktop keyring; a case or test that
saves a key must not write to the real one of whoever runs it. `MemoryKeyring`
behaves like a working desktop keyring minus the disk, including raising
`PasswordDeleteError` for a password that is not there, as the real backends
do (the store must treat that as harmless). `memory_keyring()` installs one
for the duration of a `with` block. It lives in the harness package because
the fault suite (`check faults`, shipped in the package) needs it at run time;
tests import it from here too.
"""
from __future__ import annotations

import contextlib
from typing import Iterator

import keyring
from keyring.backend import KeyringBackend
from keyring.errors import PasswordDeleteError


class MemoryKeyring(KeyringBackend):
    """A working keyring backend that keeps passwords in a dict."""

    priority = 1

    def __init__(self) -> None:
        super().__init__()
        self.passwords: dict[tuple[str, str], str] = {}

    def get_password(self, service, username):
        return self.passwords.get((service, username))

    def set_password(self, service, username, password):
        self.passwords[(service, username)] = password

    def delete_password(self, service, username):
        if self.passwords.pop((service, username), None) is None:
            raise PasswordDeleteError("not set")


@contextlib.contextmanager
def memory_keyring() -> Iterator[MemoryKeyring]:
    """Install a fresh `MemoryKeyring` as the keyring for the block; the previous one comes back after."""
    previous = keyring.get_keyring()
    ring = MemoryKeyring()
    keyring.set_keyring(ring)
    try:
        yield ring
    finally:
        keyring.set_keyring(previous)
