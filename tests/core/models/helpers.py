"""Small real GGUF files and a loopback model server, for the model discovery and Models page tests.

The GGUF files are written with the `gguf` package's own writer (a header with
the metadata a listing shows, and one tiny tensor), so they are real files in
the real format, a few hundred bytes each. The server is a real HTTP server on
127.0.0.1 that speaks Ollama's `/api/tags` and the OpenAI `/v1/models`.
"""
from __future__ import annotations

import json
import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np


def make_gguf(path: Path, name: str, *, arch: str = "llama", context: int = 2048, file_type: int = 15,
              license: str = "apache-2.0", kind: str = "model") -> Path:
    """A valid GGUF file at `path` (file_type 15 is Q4_K_M)."""
    import gguf

    path.parent.mkdir(parents=True, exist_ok=True)
    writer = gguf.GGUFWriter(str(path), arch)
    writer.add_name(name)
    writer.add_type(kind)
    writer.add_context_length(context)
    writer.add_file_type(file_type)
    writer.add_license(license)
    writer.add_chat_template("{% for m in messages %}{{ m['content'] }}{% endfor %}")
    writer.add_tensor("token_embd.weight", np.zeros(8, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


OLLAMA_TAGS = {"models": [{
    "name": "llama3.2:1b", "model": "llama3.2:1b", "size": 1321098329,
    "details": {"format": "gguf", "family": "llama", "parameter_size": "1.2B", "quantization_level": "Q8_0"}}]}
OPENAI_MODELS = {"object": "list", "data": [{"id": "qwen2.5-1.5b-instruct", "object": "model", "owned_by": "me"}]}


class _Handler(BaseHTTPRequestHandler):
    routes: dict[str, dict] = {}

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        body = self.routes.get(self.path)
        if body is None:
            self.send_error(404)
            return
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args) -> None:
        pass


@contextmanager
def model_server(routes: dict[str, dict]):
    """A loopback HTTP server answering `routes` (path -> JSON); yields its base URL."""
    handler = type("Handler", (_Handler,), {"routes": routes})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
