"""Downloads a recommended model from Hugging Face, only when the user asks for it.

The curated list (`RECOMMENDED`) holds a few instruct GGUF files from 1B to
8B parameters that llama.cpp runs on a CPU, each with its size, licence and
the memory it needs. A download:

1. asks the Hub for the file's metadata (`huggingface_hub.get_hf_file_metadata`):
   its size and, for a large (LFS) file, its SHA-256 (the `X-Linked-Etag`);
2. checks the free disk space for what is still to come;
3. transfers it with `huggingface_hub`'s own `http_get` into `NAME.part`
   beside the destination, continuing a `.part` left by a cancel or a crash
   with an HTTP Range request (a `.part.json` sidecar records which file
   version the part belongs to, so a changed file starts afresh);
4. computes the SHA-256 of the whole file and compares it with the Hub's;
   a mismatch deletes the part and says so; only a verified GGUF file is
   renamed to its final name and offered.

`hf_hub_download` itself is not used: it downloads to a temporary file with
a unique name and deletes it on any failure (huggingface_hub 2.x), so a
cancelled 5 GB download would start again from zero.

The app keeps the Hub switched off (`HF_HUB_OFFLINE=1`, so the bundled
models never reach for the network). A download the user asked for lifts
that for its own requests only (`_online`), under a lock; nothing else in
the app talks to the Hub. `HF_ENDPOINT` is honoured (a mirror, or the tests'
loopback server), read when the download starts.

Every failure is a `DownloadError` with a stable `code` ("no_network",
"not_found", "disk_full", "checksum_mismatch", "cancelled", "failed") and a
message that says what to do next.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from core.errors import SourcelightError

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
# Room kept free beyond the file itself: a full disk breaks the index and the history too.
DISK_MARGIN_BYTES = 200 * 1024 * 1024
PROGRESS_INTERVAL_S = 0.25
SPEED_WINDOW_S = 5.0  # speed over the last few seconds: a stall shows at once, a burst does not last


@dataclass(frozen=True)
class Recommended:
    """One model of the curated list."""

    key: str
    name: str
    repo_id: str
    filename: str
    size_bytes: int  # as published; the Hub's figure is checked again before downloading
    parameters: str
    license: str
    ram_gb: float  # memory to run it with a 4k context, model plus cache, rounded up
    notes: str

    @property
    def facts(self) -> str:
        """Size, parameters, licence and memory in words (core.models.text.recommended_facts)."""
        from core.models.text import recommended_facts

        return recommended_facts(self)


# Q4_K_M quantisations: the usual balance of size and quality for CPUs. Sizes as the Hub's file
# pages list them (808 MB, 986 MB, 2.02 GB, ...; exact where known). They are shown before a
# download only; the disk check and the progress use the size the Hub reports when it starts.
RECOMMENDED = (
    Recommended("llama-3.2-1b", "Llama 3.2 1B Instruct", "bartowski/Llama-3.2-1B-Instruct-GGUF",
                "Llama-3.2-1B-Instruct-Q4_K_M.gguf", 807_694_464, "1B", "Llama 3.2 Community License", 2.0,
                "Small and quick; a big step up from the bundled model."),
    Recommended("qwen2.5-1.5b", "Qwen2.5 1.5B Instruct", "bartowski/Qwen2.5-1.5B-Instruct-GGUF",
                "Qwen2.5-1.5B-Instruct-Q4_K_M.gguf", 986_000_000, "1.5B", "Apache-2.0", 2.5,
                "Good at following the sources for its size."),
    Recommended("llama-3.2-3b", "Llama 3.2 3B Instruct", "bartowski/Llama-3.2-3B-Instruct-GGUF",
                "Llama-3.2-3B-Instruct-Q4_K_M.gguf", 2_019_377_696, "3B", "Llama 3.2 Community License", 4.0,
                "A good default on a laptop with 8 GB of memory."),
    Recommended("phi-3.5-mini", "Phi-3.5 Mini Instruct", "bartowski/Phi-3.5-mini-instruct-GGUF",
                "Phi-3.5-mini-instruct-Q4_K_M.gguf", 2_393_232_608, "3.8B", "MIT", 5.0,
                "Strong reasoning for its size; slower than Llama 3.2 3B."),
    Recommended("qwen2.5-7b", "Qwen2.5 7B Instruct", "bartowski/Qwen2.5-7B-Instruct-GGUF",
                "Qwen2.5-7B-Instruct-Q4_K_M.gguf", 4_683_073_536, "7B", "Apache-2.0", 7.0,
                "Much better answers; needs 16 GB of memory to be comfortable."),
    Recommended("llama-3.1-8b", "Llama 3.1 8B Instruct", "bartowski/Meta-Llama-3.1-8B-Instruct-GGUF",
                "Meta-Llama-3.1-8B-Instruct-Q4_K_M.gguf", 4_920_734_016, "8B", "Llama 3.1 Community License", 8.0,
                "The largest here; slow on a CPU without many cores."),
)


def recommended(key: str) -> Recommended | None:
    return next((r for r in RECOMMENDED if r.key == key.strip().lower()), None)


class DownloadError(SourcelightError):
    """A download failed; `code` says how, the message says what to do."""

    code = "failed"


@dataclass(frozen=True)
class DownloadProgress:
    """Where a download stands. `stage`: "checking", "downloading", "verifying" or "done"."""

    stage: str
    done: int
    total: int | None
    bytes_per_s: float | None = None
    seconds_left: float | None = None

    @property
    def fraction(self) -> float | None:
        return self.done / self.total if self.total else None


class _Cancelled(Exception):
    """Raised from the progress callback to stop the transfer between two chunks."""


_ONLINE_LOCK = threading.Lock()


@contextlib.contextmanager
def _online() -> Iterator[None]:
    """Lift the app's HF_HUB_OFFLINE for this download's requests (one download at a time)."""
    from huggingface_hub import constants

    with _ONLINE_LOCK:
        before = constants.HF_HUB_OFFLINE
        constants.HF_HUB_OFFLINE = False
        try:
            yield
        finally:
            constants.HF_HUB_OFFLINE = before


def part_path(destination: Path) -> Path:
    return destination.with_name(destination.name + ".part")


def download_model(repo_id: str, filename: str, *, dest_dir: Path | None = None, revision: str = "main",
                   progress: Callable[[DownloadProgress], None] | None = None,
                   cancel: threading.Event | None = None, endpoint: str | None = None) -> Path:
    """Download `filename` of `repo_id` into `dest_dir` (default: the app's models folder); returns the file.

    Blocking; run it on a worker thread. `cancel` stops it between two
    chunks and keeps the part for the next attempt. Raises DownloadError.
    """
    from core import paths

    dest_dir = Path(dest_dir) if dest_dir is not None else paths.models_dir()
    dest_dir.mkdir(parents=True, exist_ok=True)
    destination = dest_dir / Path(filename).name
    report = progress or (lambda _p: None)
    cancel = cancel or threading.Event()
    endpoint = endpoint or os.environ.get("HF_ENDPOINT") or None
    where = f"{repo_id}/{filename}"

    report(DownloadProgress("checking", 0, None))
    with _online():
        size, sha256, location = _metadata(repo_id, filename, revision, endpoint, where)
        if destination.is_file() and destination.stat().st_size == size:
            report(DownloadProgress("done", size, size))
            return destination  # verified when it was downloaded
        part = part_path(destination)
        resume = _resumable(part, sha256 or location, size)
        _check_space(dest_dir, size - resume, where)
        if cancel.is_set():
            raise DownloadError("The download was cancelled before it started.", code="cancelled")
        _transfer(location, part, resume, size, report, cancel, where)
    report(DownloadProgress("verifying", size, size))
    _verify(part, sha256, size, where, cancel)
    from core.models.gguf_meta import GGUFError, read_gguf_info

    try:
        read_gguf_info(part)
    except GGUFError as exc:
        part.unlink(missing_ok=True)
        raise DownloadError(f"The file downloaded from {where} is not a GGUF model llama.cpp can load - choose "
                            "another model.", code="failed") from exc
    os.replace(part, destination)
    _sidecar(part).unlink(missing_ok=True)
    report(DownloadProgress("done", size, size))
    return destination


def _metadata(repo_id: str, filename: str, revision: str, endpoint: str | None,
              where: str) -> tuple[int, str | None, str]:
    from huggingface_hub import get_hf_file_metadata, hf_hub_url
    from huggingface_hub.errors import (EntryNotFoundError, GatedRepoError, HfHubHTTPError, RepositoryNotFoundError,
                                        RevisionNotFoundError)

    url = hf_hub_url(repo_id, filename, revision=revision, endpoint=endpoint)
    host = (endpoint or "https://huggingface.co").rstrip("/")
    try:
        # No retries: without a network the user should hear so in a second, not after a back-off.
        meta = get_hf_file_metadata(url, endpoint=endpoint, retry_on_errors=False)
    except GatedRepoError as exc:
        raise DownloadError(f"{repo_id} asks you to accept its licence on Hugging Face before downloading - accept "
                            "it there and set HF_TOKEN, or choose another model.", code="not_found") from exc
    except (RepositoryNotFoundError, RevisionNotFoundError, EntryNotFoundError) as exc:
        raise DownloadError(f"{where} was not found on {host} (404) - the model may have moved; choose another "
                            "one, or update Sourcelight for a fresh list.", code="not_found") from exc
    except HfHubHTTPError as exc:
        status = getattr(getattr(exc, "response", None), "status_code", "?")
        if status == 404:
            raise DownloadError(f"{where} was not found on {host} (404) - the model may have moved; choose another "
                                "one, or update Sourcelight for a fresh list.", code="not_found") from exc
        raise DownloadError(f"{host} answered {status} for {where} - try again later.", code="failed") from exc
    except Exception as exc:  # noqa: BLE001 - the transport's errors (httpx2) say "no network"
        if _is_network_error(exc):
            raise DownloadError(f"Cannot reach {host} - check the internet connection and try again. Sourcelight "
                                "keeps working offline with the models already on this computer.",
                                code="no_network") from exc
        raise
    if not meta.size:
        raise DownloadError(f"{host} did not say how large {where} is - try again later.", code="failed")
    etag = (meta.etag or "").strip('"').lower()
    return meta.size, etag if _SHA256.match(etag) else None, meta.location


def _is_network_error(exc: BaseException) -> bool:
    try:
        import httpx2

        if isinstance(exc, httpx2.TransportError):
            return True
    except ImportError:  # pragma: no cover - another huggingface_hub transport
        pass
    return isinstance(exc, (ConnectionError, TimeoutError))


def _sidecar(part: Path) -> Path:
    return part.with_name(part.name + ".json")


def _resumable(part: Path, version: str, size: int) -> int:
    """Bytes of `part` to keep: all of it if it belongs to this version of the file and is not too long."""
    sidecar = _sidecar(part)
    try:
        recorded = json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        recorded = None
    have = part.stat().st_size if part.is_file() else 0
    if have and (recorded != {"version": version, "size": size} or have > size):
        part.unlink()
        have = 0
    sidecar.write_text(json.dumps({"version": version, "size": size}), encoding="utf-8")
    return have


def _check_space(folder: Path, needed: int, where: str) -> None:
    from core.units import format_bytes

    free = shutil.disk_usage(folder).free
    if free < needed + DISK_MARGIN_BYTES:
        raise DownloadError(f"Not enough free disk space for {where}: it needs {format_bytes(needed)} more and "
                            f"{folder} has {format_bytes(free)} free (plus {format_bytes(DISK_MARGIN_BYTES)} kept "
                            "spare). Free some space, or choose a smaller model.", code="disk_full")


def _transfer(location: str, part: Path, resume: int, size: int, report: Callable[[DownloadProgress], None],
              cancel: threading.Event, where: str) -> None:
    from huggingface_hub.file_download import http_get
    from huggingface_hub.utils import build_hf_headers

    meter = _Meter(resume, size, report, cancel)
    reporter = type("Reporter", (_ProgressBar,), {"meter": meter})
    try:
        with part.open("ab") as handle:
            http_get(location, handle, resume_size=resume, expected_size=size, tqdm_class=reporter,
                     headers=build_hf_headers(library_name="sourcelight"), displayed_filename=part.name)
    except _Cancelled:
        raise DownloadError(f"The download of {where} was cancelled; what arrived is kept, and downloading it "
                            "again continues from there.", code="cancelled") from None
    except OSError as exc:
        import errno

        if getattr(exc, "errno", None) == errno.ENOSPC:
            raise DownloadError(f"The disk filled up while downloading {where} - free some space and download "
                                "again; it continues where it stopped.", code="disk_full") from exc
        if _is_network_error(exc) or "Consistency check failed" in str(exc):
            raise DownloadError(f"The connection broke while downloading {where} - download again; it continues "
                                "where it stopped.", code="no_network") from exc
        raise DownloadError(f"The download of {where} failed ({exc}) - try again.", code="failed") from exc
    except Exception as exc:  # noqa: BLE001
        if _is_network_error(exc):
            raise DownloadError(f"The connection broke while downloading {where} - download again; it continues "
                                "where it stopped.", code="no_network") from exc
        raise


def _verify(part: Path, sha256: str | None, size: int, where: str, cancel: threading.Event) -> None:
    have = part.stat().st_size
    if have != size:
        raise DownloadError(f"The download of {where} ended early ({have:,} of {size:,} bytes) - download again; it "
                            "continues where it stopped.", code="no_network")
    if sha256 is None:
        part.unlink(missing_ok=True)
        raise DownloadError(f"The Hub gave no checksum for {where}, so the file cannot be verified and is not used.",
                            code="checksum_mismatch")
    digest = hashlib.sha256()
    with part.open("rb") as handle:
        for block in iter(lambda: handle.read(4 * 1024 * 1024), b""):
            if cancel.is_set():
                raise DownloadError(f"Checking {where} was cancelled; the file is kept and checked on the next "
                                    "download.", code="cancelled")
            digest.update(block)
    if digest.hexdigest() != sha256:
        part.unlink(missing_ok=True)
        _sidecar(part).unlink(missing_ok=True)
        raise DownloadError(f"The file downloaded from {where} does not match the Hub's checksum (SHA-256), so it "
                            "was deleted and is not used - download it again.", code="checksum_mismatch")


class _Meter:
    """Turns byte counts into `DownloadProgress` with speed and time left; checks the cancel flag."""

    def __init__(self, start: int, total: int, report: Callable[[DownloadProgress], None], cancel: threading.Event):
        self.done = start
        self.total = total
        self._report = report
        self._cancel = cancel
        self._samples: list[tuple[float, int]] = [(time.monotonic(), start)]
        self._last_report = 0.0

    def add(self, n: int) -> None:
        if self._cancel.is_set():
            raise _Cancelled
        self.done += n
        now = time.monotonic()
        self._samples.append((now, self.done))
        while len(self._samples) > 2 and now - self._samples[0][0] > SPEED_WINDOW_S:
            self._samples.pop(0)
        if now - self._last_report < PROGRESS_INTERVAL_S and self.done < self.total:
            return
        self._last_report = now
        t0, b0 = self._samples[0]
        speed = (self.done - b0) / (now - t0) if now > t0 else None
        left = (self.total - self.done) / speed if speed else None
        self._report(DownloadProgress("downloading", self.done, self.total, speed, left))


class _ProgressBar:
    """The `tqdm_class` given to huggingface_hub's `http_get`: counts bytes into a `_Meter`, draws nothing."""

    meter: _Meter

    def __init__(self, *args, **kwargs) -> None:
        pass

    def update(self, n: int | float | None = 1) -> None:
        if n:
            self.meter.add(int(n))

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        return None

    def close(self) -> None:
        pass
