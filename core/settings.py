"""The one typed settings schema, with defaults, titles and descriptions.

Settings are stored as JSON in the data directory. Secrets never live here:
the API key goes to the system keyring (see `core.secrets`). Unknown keys in
an older or newer file are ignored rather than fatal, so a settings file never
stops the app from starting.
"""
from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core import paths

CHROMA_URL_ENV = "SOURCELIGHT_CHROMA_URL"
BACKENDS = ("local", "openai", "openai_compatible")
API_MODES = ("chat", "responses", "assistants")

# Presets for the OpenAI-compatible backend, offered by the settings dialog.
COMPATIBLE_PRESETS = {
    "Ollama": "http://127.0.0.1:11434/v1",
    "LM Studio": "http://127.0.0.1:1234/v1",
    "vLLM": "http://127.0.0.1:8000/v1",
    "llama.cpp server": "http://127.0.0.1:8080/v1",
}


def default_threads() -> int:
    """Generation threads for llama.cpp.

    llama.cpp's workers spin; with more threads than free cores it collapses
    from ~42 to 0.3 tokens/s (measured, environment.md). The UI and the
    embedder need a core, so never take more than cpu_count - 1.
    """
    return max(1, min(4, (os.cpu_count() or 2) - 1))


def _setting(default: Any, title: str, description: str, **extra: Any) -> Any:
    meta = {"title": title, "description": description, **extra}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class Settings:
    """Every user-visible setting. Field metadata carries the title and description."""

    backend: str = _setting("local", "Backend", "Where answers are generated: the bundled local model, OpenAI, "
                            "or any OpenAI-compatible server (Ollama, LM Studio, vLLM).", choices=BACKENDS)
    model: str = _setting("", "Model", "Model name for OpenAI or a compatible server (empty: the bundled model, "
                          "or gpt-4o-mini for OpenAI).")
    base_url: str = _setting("", "Server URL", "Base URL of an OpenAI-compatible server, e.g. "
                             "http://127.0.0.1:11434/v1 for Ollama. Empty: OPENAI_BASE_URL or OpenAI itself.")
    api_mode: str = _setting("chat", "API", "Chat Completions (every compatible server), the Responses API "
                             "(OpenAI only) or the Assistants API (retired by OpenAI on 2026-08-26; for "
                             "self-hosted servers that still implement it).", choices=API_MODES)
    top_k: int = _setting(5, "Sources per answer", "How many chunks are retrieved and given to the model.", min=1, max=20)
    chunk_chars: int = _setting(900, "Chunk size", "Target chunk length in characters; chunks end on sentence "
                                "boundaries.", min=200, max=4000)
    chunk_overlap_sentences: int = _setting(1, "Chunk overlap", "Sentences repeated at the start of the next "
                                            "chunk so no statement is cut in two.", min=0, max=5)
    threads: int = _setting(default_threads(), "Generation threads", "CPU threads for the bundled model. More "
                            "than the free cores makes it much slower.", min=1, max=64)
    max_tokens: int = _setting(400, "Answer length", "Maximum tokens in an answer.", min=16, max=8192)
    temperature: float = _setting(0.2, "Temperature", "Lower is more literal.", min=0.0, max=2.0)
    request_timeout_s: float = _setting(60.0, "Timeout", "Seconds to wait for a server to start or continue "
                                        "an answer.", min=1.0, max=600.0)
    chroma_url: str = _setting("", "Chroma server", "URL of a shared Chroma server (`chroma run`), e.g. "
                               "http://127.0.0.1:8000. Empty: the index on this computer. "
                               "SOURCELIGHT_CHROMA_URL overrides it.")
    workspace: str = _setting("default", "Workspace", "The named collection that documents are added to and "
                              "answers are drawn from.")
    local_model_path: str = _setting("", "Local model file", "A GGUF file to use instead of the bundled "
                                     "SmolLM2-135M-Instruct.")
    model_folders: list = _setting([], "Model folders", "Your own folders of GGUF model files, listed on the "
                                   "Models page besides those of LM Studio, GPT4All, Jan and Ollama.")
    model_servers: list = _setting([], "Model servers", "Addresses of model servers to list on the Models page "
                                   "besides the usual local ones, e.g. http://192.168.1.20:11434.")

    def effective_chroma_url(self) -> str:
        """The Chroma server to use ('' for the embedded index); the environment wins."""
        return os.environ.get(CHROMA_URL_ENV, "").strip() or self.chroma_url.strip()

    @classmethod
    def describe(cls) -> list[dict[str, Any]]:
        """Schema for UIs: name, type, default, title, description and limits of each setting."""
        out = []
        for f in dataclasses.fields(cls):
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
            out.append({"name": f.name, "type": type(default).__name__, "default": default, **f.metadata})
        return out

    def validated(self) -> "Settings":
        """A copy with out-of-range values clamped and unknown choices reset to their default."""
        values = dataclasses.asdict(self)
        for f in dataclasses.fields(self):
            meta, value = f.metadata, values[f.name]
            if "choices" in meta and value not in meta["choices"]:
                values[f.name] = f.default
            if "min" in meta and isinstance(value, (int, float)):
                values[f.name] = type(value)(min(max(value, meta["min"]), meta["max"]))
        return Settings(**values)

    @classmethod
    def load(cls, path: Path | None = None) -> "Settings":
        """Read settings; a missing or unreadable file gives the defaults."""
        path = path or paths.settings_file()
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return cls()
        known = {f.name: f for f in dataclasses.fields(cls)}
        values = {}
        for name, value in raw.items() if isinstance(raw, dict) else ():
            f = known.get(name)
            if f is None:
                continue
            default = f.default if f.default is not dataclasses.MISSING else None
            if default is not None and not isinstance(value, type(default)):
                if isinstance(default, float) and isinstance(value, int):
                    value = float(value)
                else:
                    continue
            values[name] = value
        return cls(**values).validated()

    def save(self, path: Path | None = None) -> None:
        """Write settings atomically (a crash mid-write leaves the old file)."""
        path = path or paths.settings_file()
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(dataclasses.asdict(self), indent=2), encoding="utf-8")
        os.replace(tmp, path)
