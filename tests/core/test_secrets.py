"""`ApiKeyStore`: keyring when there is one, session memory when not, never a file.

Each test installs its keyring backend explicitly (keyring's documented
`set_keyring`), so the result does not depend on the machine: an in-memory
backend stands for a desktop keyring, keyring's own fail backend for the
headless machines this project runs on.
"""
from __future__ import annotations

import keyring
import pytest
from keyring.backends import fail

from core.secrets import API_KEY_USER, NO_KEYRING_MESSAGE, SERVICE, ApiKeyStore

from tests.fakes import MemoryKeyring


@pytest.fixture
def use_keyring():
    previous = keyring.get_keyring()

    def install(backend):
        keyring.set_keyring(backend)
        return backend

    yield install
    keyring.set_keyring(previous)


def test_keyring_stores_the_key(use_keyring):
    backend = use_keyring(MemoryKeyring())
    store = ApiKeyStore(environ={})
    status = store.set("  sk-desktop  ")
    assert status.source == "keyring" and status.keyring_available
    assert backend.passwords == {(SERVICE, API_KEY_USER): "sk-desktop"}
    # A new store (the next app start) finds it again.
    assert ApiKeyStore(environ={}).get() == "sk-desktop"
    assert ApiKeyStore(environ={}).status().source == "keyring"


def test_delete_removes_it_everywhere(use_keyring):
    backend = use_keyring(MemoryKeyring())
    store = ApiKeyStore(environ={})
    store.set("sk-desktop")
    status = store.delete()
    assert backend.passwords == {}
    assert store.get() is None and status.source is None
    assert "Settings > Model" in status.message
    store.delete()  # deleting twice is harmless


def test_without_a_keyring_the_key_lives_for_the_session_only(use_keyring):
    use_keyring(fail.Keyring())
    store = ApiKeyStore(environ={})
    assert not store.keyring_available()
    status = store.set("sk-session-only")
    assert status.source == "session" and not status.keyring_available
    assert status.message == NO_KEYRING_MESSAGE and "OPENAI_API_KEY" in status.message
    assert store.get() == "sk-session-only"
    assert ApiKeyStore(environ={}).get() is None  # gone after a restart
    assert store.delete().source is None and store.get() is None


def test_environment_variable_is_the_fallback(use_keyring):
    use_keyring(fail.Keyring())
    store = ApiKeyStore(environ={"OPENAI_API_KEY": "sk-env"})
    assert store.get() == "sk-env"
    status = store.status()
    assert status.source == "environment" and "OPENAI_API_KEY" in status.message
    store.set("sk-typed")
    assert store.get() == "sk-typed"  # what the user typed this session wins


def test_no_key_anywhere(use_keyring):
    use_keyring(fail.Keyring())
    status = ApiKeyStore(environ={}).status()
    assert status.source is None and "No system keyring" in status.message


def test_the_key_is_never_shown(use_keyring):
    use_keyring(fail.Keyring())
    store = ApiKeyStore(environ={})
    status = store.set("sk-very-secret-value")
    assert "sk-very-secret-value" not in repr(store) + repr(status) + status.message
