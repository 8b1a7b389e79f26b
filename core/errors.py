"""The small set of typed errors the engine raises.

Every message says what happened *and* what to do next, because the GUI and the
CLI show it to the user as is. `code` is a stable machine-readable string
(used in `--json` output and by tests).
"""
from __future__ import annotations


class SourcelightError(Exception):
    """Base class: a user-facing failure with a stable code and a next step."""

    code = "error"

    def __init__(self, message: str, *, code: str | None = None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def __str__(self) -> str:
        return self.message


class BackendUnavailable(SourcelightError):
    """The model server cannot be reached (refused, DNS, TLS)."""

    code = "backend_unavailable"


class BackendTimeout(SourcelightError):
    """The model server accepted the request but stopped answering in time."""

    code = "timeout"


class AuthenticationFailed(SourcelightError):
    """401/403: the API key is missing, wrong, or lacks access."""

    code = "authentication"


class ModelNotFound(SourcelightError):
    """404 for the model, or the bundled model file is missing/corrupt."""

    code = "model_not_found"


class RateLimited(SourcelightError):
    """429 after the SDK's own retries."""

    code = "rate_limited"


class BackendError(SourcelightError):
    """The server failed (5xx, an `error` event mid-stream, a malformed or truncated stream)."""

    code = "server_error"


class IngestError(SourcelightError):
    """A single document could not be read; ingest reports it and continues."""

    code = "ingest_failed"


class InvalidQuestion(SourcelightError):
    """The question is empty or too long to send."""

    code = "invalid_question"


class StoreError(SourcelightError):
    """The index cannot be opened or written."""

    code = "store_error"


# Why a document could not be read: stable `IngestError.code` values (shown in `--json` output).
CODE_NOT_FOUND = "file_not_found"
CODE_NOT_A_FILE = "not_a_file"
CODE_PERMISSION = "permission_denied"
CODE_READ_FAILED = "read_failed"
CODE_CHANGED = "file_changed"
CODE_TOO_LARGE = "file_too_large"
CODE_UNSUPPORTED = "unsupported_type"
CODE_NO_TEXT = "no_text"
CODE_BINARY = "binary_file"
CODE_CORRUPT = "corrupt_file"
CODE_ENCRYPTED = "password_protected"
CODE_BAD_NAME = "undecodable_file_name"
