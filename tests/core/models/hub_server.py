"""A loopback HTTP server that serves files the way the Hugging Face Hub does, for the download tests.

`HEAD`/`GET /{repo}/resolve/{revision}/{file}` answers 302 to a "CDN" (a
second server on another port: the Hub's CDN is another host, and
huggingface_hub follows redirects only within the Hub), with the Hub's headers: `X-Repo-Commit`, `X-Linked-Etag`
(the file's SHA-256) and `X-Linked-Size`. The CDN path honours
`Range: bytes=N-` with 206 Partial Content. Unknown repositories answer 404
with `X-Error-Code: RepoNotFound`, as the Hub does. A file can be served
corrupted (one byte changed, the advertised checksum kept) or advertised
with a size no disk has. Every request is recorded so tests can check that
a resumed download asked only for the rest.
"""
from __future__ import annotations

import hashlib
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable

COMMIT = "0123456789abcdef0123456789abcdef01234567"


@dataclass
class HostedFile:
    path: Path
    corrupt: bool = False
    advertised_size: int | None = None  # None: the real size
    sha256: str = ""
    # Once, when this many bytes have been sent, call `at_pause` (a test clicks Cancel there): the client,
    # still reading what was sent before, sees it mid-transfer. A progress report from the client could
    # come too late on a fast machine: a loopback transfer can end between two reports.
    pause_after: int | None = None
    at_pause: Callable[[], None] | None = None
    paused: bool = False

    def __post_init__(self) -> None:
        digest = hashlib.sha256()
        with self.path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        self.sha256 = digest.hexdigest()


@dataclass
class Hub:
    url: str = ""
    cdn_url: str = ""
    files: dict[str, HostedFile] = field(default_factory=dict)  # "owner/repo/file" -> file
    requests: list[tuple[str, str, str | None]] = field(default_factory=list)  # (method, path, Range)


def _handler(hub: Hub):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:
            pass

        def do_HEAD(self) -> None:  # noqa: N802
            self._answer(body=False)

        def do_GET(self) -> None:  # noqa: N802
            self._answer(body=True)

        def _answer(self, *, body: bool) -> None:
            hub.requests.append((self.command, self.path, self.headers.get("Range")))
            path = self.path.split("?", 1)[0]
            if path.startswith("/cdn/"):
                return self._serve(hub.files.get(path[len("/cdn/"):]), body)
            parts = path.strip("/").split("/")
            if len(parts) >= 5 and parts[2] == "resolve":
                key = "/".join(parts[:2] + parts[4:])
                hosted = hub.files.get(key)
                if hosted is None:
                    return self._empty(404, {"X-Error-Code": "RepoNotFound"})
                size = hosted.advertised_size or hosted.path.stat().st_size
                return self._empty(302, {"Location": f"{hub.cdn_url}/cdn/{key}?signature=abc",
                                         "X-Repo-Commit": COMMIT, "X-Linked-Etag": f'"{hosted.sha256}"',
                                         "X-Linked-Size": str(size), "ETag": '"0a1b2c"'})
            self._empty(404, {})

        def _empty(self, status: int, headers: dict[str, str]) -> None:
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def _serve(self, hosted: HostedFile | None, body: bool) -> None:
            if hosted is None:
                return self._empty(404, {})
            data = hosted.path.read_bytes()
            if hosted.corrupt:
                middle = len(data) // 2
                data = data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1:]
            start = 0
            wanted = self.headers.get("Range")
            if wanted and wanted.startswith("bytes="):
                start = int(wanted[len("bytes="):].split("-", 1)[0])
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            else:
                self.send_response(200)
            self.send_header("Content-Length", str(len(data) - start))
            self.send_header("Content-Type", "application/octet-stream")
            self.end_headers()
            if not body:
                return
            try:
                view = memoryview(data)[start:]
                block = 1 << 20
                sent = 0
                while sent < len(view):
                    self.wfile.write(view[sent:sent + block])
                    sent += block
                    if hosted.pause_after is not None and not hosted.paused and start + sent >= hosted.pause_after:
                        hosted.paused = True
                        if hosted.at_pause is not None:
                            hosted.at_pause()
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client stopped reading: a cancelled download

    return Handler


@contextmanager
def hub_server():
    """Yields a `Hub`; put files in `hub.files` and point HF_ENDPOINT at `hub.url`."""
    hub = Hub()
    servers = [ThreadingHTTPServer(("127.0.0.1", 0), _handler(hub)) for _ in range(2)]
    hub.url, hub.cdn_url = (f"http://127.0.0.1:{s.server_address[1]}" for s in servers)
    for server in servers:
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield hub
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()
