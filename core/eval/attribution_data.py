"""Readers for the attribution benchmarks (WiCE, ExpertQA) shaped as the app sees them.

Each benchmark item becomes what the live pipeline hands the attributor: a
claim (an answer sentence) and a pool of `SourceSentence`s from "retrieved
chunks", plus the human judgement. Shared by the eval command
(`core.eval.attribution_eval`) and the calibration fit (`core.eval.attribution_fit`)
so both score exactly the same pools.

- WiCE: the claim's cited web page is one chunk whose text is the evidence
  sentences joined by newlines; each evidence sentence is one `SourceSentence`
  with offsets into that text. Gold sets are sets of sentence indices.
- ExpertQA: every distinct passage cited in an answer is one chunk (the
  "[n] URL" header the dataset prepends is dropped: a real chunk has none), split
  with `core.ingest.segment.split_sentences`. Passages with no text (the dataset keeps
  bare URLs for some) are left out of the pools, and claims citing only those
  are skipped.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np

from core.attribution.pool import SourceSentence

WICE_LABELS = ("supported", "partially_supported", "not_supported")


@dataclass
class WiceClaim:
    id: str
    claim: str
    label: str
    chunk_text: str
    sentences: list[SourceSentence]
    gold_sets: list[frozenset[int]]  # alternative sets of sentence indices that together support the claim

    @property
    def gold_any(self) -> frozenset[int]:
        return frozenset().union(*self.gold_sets) if self.gold_sets else frozenset()


def read_jsonl(path: str | Path) -> Iterator[dict]:
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            line = line.strip()
            if line:
                yield json.loads(line)


def load_wice(path: str | Path) -> list[WiceClaim]:
    """One `WiceClaim` per line of a WiCE claim-level file."""
    out = []
    for n, row in enumerate(read_jsonl(path)):
        cid = str((row.get("meta") or {}).get("id") or f"wice{n}")
        text, sents, pos = [], [], 0
        for s in row["evidence"]:
            sents.append(SourceSentence(cid, pos, pos + len(s), s))
            text.append(s)
            pos += len(s) + 1
        gold = [frozenset(int(i) for i in g) for g in row.get("supporting_sentences") or [] if g]
        out.append(WiceClaim(cid, row["claim"], row["label"], "\n".join(text), sents, gold))
    return out


PLAIN_LABELS = {"supported": "supported", "partial": "partially_supported",
                "partially_supported": "partially_supported", "not_supported": "not_supported",
                "true": "supported", "false": "not_supported", "1": "supported", "0": "not_supported"}


def load_plain(path: str | Path) -> list[WiceClaim]:
    """The plain format for a user's own labelled data, shaped like WiCE (one source per claim).

    One JSON object per line: `claim`, `evidence` (a list of sentences, or one
    string that is split with the app's splitter), `label` (supported |
    partial | not_supported, or true/false), optional `supporting` (indices of
    the evidence sentences that support the claim) and `id`. A row that does
    not fit raises ValueError naming its line.
    """
    from core.ingest.segment import split_sentences

    out = []
    for n, row in enumerate(read_jsonl(path), start=1):
        try:
            claim, evidence = str(row["claim"]), row["evidence"]
            label = PLAIN_LABELS[str(row["label"]).strip().lower()]
        except (KeyError, TypeError) as exc:
            raise ValueError(f"{path}, line {n}: expected \"claim\", \"evidence\" and a \"label\" of "
                             f"supported, partial or not_supported ({exc!r})") from None
        if isinstance(evidence, str):
            evidence = [s.text for s in split_sentences(evidence)] if evidence.strip() else []
        cid = str(row.get("id") or f"row{n}")
        sents, pos = [], 0
        for s in evidence:
            sents.append(SourceSentence(cid, pos, pos + len(s), s))
            pos += len(s) + 1
        gold = [frozenset(int(i) for i in row["supporting"])] if row.get("supporting") else []
        out.append(WiceClaim(cid, claim, label, "\n".join(evidence), sents, gold))
    return out


_HEADER = re.compile(r"^\s*\[(\d+)\]\s*(\S*)[ \t]*\n?")


def passage_body(evidence: str) -> str:
    """An ExpertQA evidence string without its "[n] URL" header line."""
    m = _HEADER.match(evidence)
    return evidence[m.end():].strip() if m else evidence.strip()


@dataclass
class ExpertQAClaim:
    claim: str
    support: str  # Complete | Partial | Incomplete | Missing | N/A | ...
    cited: list[int]  # indices into the answer's passages (text-less passages dropped)
    cited_raw: int  # how many passages the claim cited, with or without text


@dataclass
class ExpertQAAnswer:
    question: str
    system: str
    passages: list[str]  # distinct passage texts cited anywhere in the answer
    claims: list[ExpertQAClaim] = field(default_factory=list)

    def chunk_id(self, i: int) -> str:
        return f"p{i}"


def load_expertqa(paths: str | Path | Sequence[str | Path]) -> list[ExpertQAAnswer]:
    """Answers of one or more ExpertQA files; an answer seen in an earlier file is skipped.

    rand_val and domain_val share 160 questions with identical answers and
    judgements, so reading both without the de-duplication would count them twice.
    """
    if isinstance(paths, (str, Path)):
        paths = [paths]
    seen: set[tuple[str, str]] = set()
    out = []
    for path in paths:
        for row in read_jsonl(path):
            for system, ans in (row.get("answers") or {}).items():
                key = (row["question"], system)
                if key in seen:
                    continue
                seen.add(key)
                index: dict[str, int] = {}
                answer = ExpertQAAnswer(row["question"], system, [])
                for c in ans.get("claims") or []:
                    cited = []
                    for ev in c.get("evidence") or []:
                        body = passage_body(ev)
                        if not body:
                            continue
                        if body not in index:
                            index[body] = len(answer.passages)
                            answer.passages.append(body)
                        if index[body] not in cited:
                            cited.append(index[body])
                    answer.claims.append(ExpertQAClaim(c.get("claim_string") or "", str(c.get("support")),
                                                       cited, len(c.get("evidence") or [])))
                out.append(answer)
    return out


def expertqa_sentences(answer: ExpertQAAnswer, passages: Iterable[int] | None = None) -> list[SourceSentence]:
    """The sentences of an answer's passages (all of them, or the given ones), as the app splits chunks."""
    from core.ingest.segment import split_sentences

    out = []
    for i in (range(len(answer.passages)) if passages is None else passages):
        for sp in split_sentences(answer.passages[i]):
            out.append(SourceSentence(answer.chunk_id(i), sp.start, sp.end, sp.text))
    return out


class EmbeddingCache:
    """Embeds texts once, optionally remembering them in an .npy/.json pair under `directory`.

    The full eval embeds ~44k benchmark sentences (in the app this happens at
    ingest): minutes on 2 CPU cores, so the vectors are kept on disk and a
    re-run only scores. Texts are embedded shortest first in large chunks,
    which wastes less on padding (measured 1.6x faster than file order here).
    """

    CHUNK = 512
    CHECKPOINT = 8192  # rows between saves, so an interrupted first run keeps most of its work

    def __init__(self, embedder, directory: str | Path | None = None, name: str = "embeddings"):
        from core.embedding import MODEL_NAME

        self.embedder = embedder
        self.dir = Path(directory) if directory else None
        self.name = f"{name}-{MODEL_NAME}"
        self._rows: dict[str, int] = {}
        self._blocks: list[np.ndarray] = [np.zeros((0, 384), dtype=np.float32)]
        self._saved = 0
        if self.dir and (self.dir / f"{self.name}.npy").exists():
            try:
                keys = json.loads((self.dir / f"{self.name}.json").read_text())
                matrix = np.load(self.dir / f"{self.name}.npy")
                if len(keys) == len(matrix):
                    self._blocks = [matrix]
                    self._rows = {k: i for i, k in enumerate(keys)}
                    self._saved = len(keys)
            except (OSError, ValueError):
                pass  # a damaged cache is rebuilt

    @staticmethod
    def key(text: str) -> str:
        return hashlib.sha1(text.encode("utf-8")).hexdigest()

    @property
    def _matrix(self) -> np.ndarray:
        if len(self._blocks) > 1:
            self._blocks = [np.vstack(self._blocks)]
        return self._blocks[0]

    def ensure(self, texts: Sequence[str], progress=None) -> None:
        """Embed whichever of `texts` are not cached yet (progress: a tqdm-like bar or None)."""
        todo = list({self.key(t): t for t in texts if self.key(t) not in self._rows}.values())
        todo.sort(key=len)
        if progress is not None:
            progress.reset(total=len(todo))
        for i in range(0, len(todo), self.CHUNK):
            part = todo[i:i + self.CHUNK]
            vectors = self.embedder.encode(part)
            start = sum(len(b) for b in self._blocks)
            self._blocks.append(np.asarray(vectors, dtype=np.float32))
            for j, t in enumerate(part):
                self._rows[self.key(t)] = start + j
            if progress is not None:
                progress.update(len(part))
            if len(self._rows) - self._saved >= self.CHECKPOINT:
                self._save()
        if len(self._rows) > self._saved:
            self._save()

    def _save(self) -> None:
        if not self.dir:
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        keys = [""] * len(self._rows)
        for k, i in self._rows.items():
            keys[i] = k
        tmp = self.dir / f"{self.name}.tmp.npy"
        np.save(tmp, self._matrix)
        tmp.replace(self.dir / f"{self.name}.npy")
        (self.dir / f"{self.name}.json").write_text(json.dumps(keys))
        self._saved = len(keys)

    def get(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, 384), dtype=np.float32)
        return self._matrix[[self._rows[self.key(t)] for t in texts]]


def default_cache_dir() -> Path:
    """Where the eval keeps benchmark embeddings: under the data directory (moved by SOURCELIGHT_HOME)."""
    from core.paths import data_dir

    return data_dir() / "cache" / "eval-embeddings"
