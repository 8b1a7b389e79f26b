"""Deterministic synthetic text for the benchmarks: English-like sentences from a word list.

The benchmarks need text that the embedder and BM25 treat like real prose
(function words, a Zipf-shaped content vocabulary, names, numbers and rare
domain terms that make lexical search discriminative), in any amount, and the
same text on every run so cached collections stay valid. Everything here is
seeded `random.Random` over fixed word lists; no download, no model.

Generation speed matters: the retrieval bench needs 100k chunks, so chunk
texts are assembled from a pre-generated pool of topic-grouped sentences
rather than word by word (`SentencePool`).
"""
from __future__ import annotations

import itertools
import random
from dataclasses import dataclass
from pathlib import Path

# Bump when generated text changes: cached corpora and collections are keyed by it.
CORPUS_VERSION = 2

_NOUNS = """
river valley report method system market engine garden window budget council harbour village forest
sample pattern measure network signal process surface station museum library archive survey contract
factory region climate season harvest bridge tunnel railway canal border charter treaty record ledger
journal letter chapter section figure table model theory result effect cause change growth decline
voltage current circuit sensor battery turbine furnace boiler pump valve pipe cable mirror lens beam
protein enzyme cell tissue membrane molecule crystal mineral sediment glacier island coast shore delta
farmer teacher doctor engineer pilot captain merchant writer painter singer student worker soldier judge
committee company agency office department school hospital court church theatre studio kitchen market
price cost income profit loan debt rate value share stock bond asset tax fee wage salary pension
storm flood drought frost wind rain snow cloud storm heat light sound noise colour shadow distance speed
weight height depth length volume pressure density friction motion force energy power fuel oil gas coal
""".split()
_NOUNS = list(dict.fromkeys(_NOUNS))  # the list above repeats a few words; keep Zipf ranks unique

_VERBS = """
describe measure record explain improve reduce increase support contain require produce protect
collect compare connect consider control cover create deliver design develop discover estimate examine
expand export follow include inform limit maintain monitor observe obtain offer operate organise
prepare present prevent publish reach receive reflect replace report represent restore return reveal
review shape store study supply test train transfer transform travel treat visit warn
""".split()

_ADJECTIVES = """
small large early late ancient modern rapid slow quiet loud bright dark warm cold narrow broad deep
shallow heavy light careful simple complex rural urban coastal northern southern eastern western local
regional national public private formal annual monthly daily central remote stable fragile common rare
accurate rough smooth steep gentle dense sparse fertile dry wet fresh costly cheap reliable uneven
""".split()

_ADVERBS = """
rarely often slowly quickly gradually sharply steadily briefly mostly partly usually seldom carefully
""".split()

_PREPOSITIONS = "in near across along under over beside behind beyond within through around".split()

_NAMES = """
Alder Brennan Castell Dorrance Everly Fairbank Garrow Hollis Ingram Jessop Kellaway Lindqvist Marlowe
Norcross Okafor Pellegrini Quayle Rasmussen Sterling Thornbury Umberto Vasquez Whitcombe Yardley Zeller
Ashford Bramley Calloway Draycott Ellison
""".split()

_PLACES = """
Avonmere Brackwater Corrin Dunmore Eastholm Fenwick Glenrock Harrowgate Ivydale Kestrel Larkspur
Millbrook Northwold Oakhurst Pinecrest Redfield Saltmarsh Thistlewood Underhill Westerby
""".split()

_SYLLABLES = "ka lo ri men tas vor qui bel dra nex sol tur mi zan pho gre lum ost har vel cor din sep ula".split()


def _plural(noun: str) -> str:
    if noun.endswith(("s", "x", "ch", "sh")):
        return noun + "es"
    if noun.endswith("y") and noun[-2] not in "aeiou":
        return noun[:-1] + "ies"
    return noun + "s"


def _third(verb: str) -> str:
    return _plural(verb)


def _past(verb: str) -> str:
    if verb.endswith("e"):
        return verb + "d"
    if verb.endswith("y") and verb[-2] not in "aeiou":
        return verb[:-1] + "ied"
    return verb + "ed"


class SentenceGenerator:
    """Seeded English-like sentences; `topic_terms` make a document's words distinctive."""

    def __init__(self, seed: int):
        self.rng = random.Random(seed)
        # Zipf-shaped noun use (s ~ 1), as in real text: a few nouns are everywhere.
        self._noun_cum = list(itertools.accumulate(1.0 / (r + 1) for r in range(len(_NOUNS))))
        self._templates = (
            "The {a} {n} {v3} the {n} {p} the {n}.",
            "In {num}, {name} {vd} a {a} {n} for the {t} {n}.",
            "Most {ns} {v} {adv} when the {n} is {a}.",
            "{name} said that the {t} {n} had {vd} {num} {ns} {p} {place}.",
            "According to the {n}, {ns} of {t} {v} {a} {ns}.",
            "This {n} {v3} how the {a} {n} {v3} {p} the {t} {n}.",
            "The {n} at {place} was {vd} by {name} after the {a} {n}.",
            "{Adv}, the {t} {n} {v3} about {num} {ns} each year.",
            "A {a} {n} can {v} the {n} if the {ns} are {a}.",
            "The {ns} {p} {place} {v} the {t} {n} more than the {a} {n}.",
            "{name} and {name} {vd} the {n} of the {t} {n} in {num}.",
            "Without a {a} {n}, the {n} {adv} {v3} its {ns}.",
        )
        # Subordinate clauses bring sentences to ~100 characters, about the length of
        # sentences in ordinary prose (and so the number of sentences per chunk).
        self._clauses = (
            ", while the {a} {ns} {p} {place} {v} the {n}",
            ", because the {t} {n} {v3} {num} {a} {ns}",
            ", which {name} {vd} {p} the {a} {n} in {num}",
            " and {v3} the {ns} of the {t} {n} {adv}",
        )

    def noun(self) -> str:
        return self.rng.choices(_NOUNS, cum_weights=self._noun_cum)[0]

    def topic_term(self) -> str:
        rng = self.rng
        return "".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 3)))

    def sentence(self, topic_terms: tuple[str, ...] = ()) -> str:
        rng = self.rng
        template = rng.choice(self._templates)
        if rng.random() < 0.6:
            template = template[:-1] + rng.choice(self._clauses) + "."
        terms = topic_terms or ("general",)
        out, i = [], 0
        while i < len(template):
            j = template.find("{", i)
            if j < 0:
                out.append(template[i:])
                break
            out.append(template[i:j])
            k = template.index("}", j)
            slot = template[j + 1:k]
            out.append(self._fill(slot, terms))
            i = k + 1
        text = "".join(out)
        return text[0].upper() + text[1:]

    def _fill(self, slot: str, terms: tuple[str, ...]) -> str:
        rng = self.rng
        if slot == "n":
            return self.noun()
        if slot == "ns":
            return _plural(self.noun())
        if slot == "a":
            return rng.choice(_ADJECTIVES)
        if slot == "v":
            return rng.choice(_VERBS)
        if slot == "v3":
            return _third(rng.choice(_VERBS))
        if slot == "vd":
            return _past(rng.choice(_VERBS))
        if slot == "p":
            return rng.choice(_PREPOSITIONS)
        if slot == "adv":
            return rng.choice(_ADVERBS)
        if slot == "Adv":
            return rng.choice(_ADVERBS).capitalize()
        if slot == "name":
            return rng.choice(_NAMES)
        if slot == "place":
            return rng.choice(_PLACES)
        if slot == "num":
            return str(rng.choice((rng.randint(2, 99), rng.randint(1850, 2025), rng.randint(100, 9999))))
        if slot == "t":
            return rng.choice(terms)
        raise KeyError(slot)

    def paragraph(self, n_sentences: int, topic_terms: tuple[str, ...]) -> str:
        return " ".join(self.sentence(topic_terms) for _ in range(n_sentences))

    def question(self, topic_terms: tuple[str, ...]) -> str:
        rng = self.rng
        t = rng.choice(topic_terms)
        forms = (
            f"What does the {t} {self.noun()} {rng.choice(_VERBS)}?",
            f"How do {_plural(self.noun())} {rng.choice(_VERBS)} the {t} {self.noun()}?",
            f"Why did {rng.choice(_NAMES)} {rng.choice(_VERBS)} the {rng.choice(_ADJECTIVES)} {self.noun()}?",
            f"When was the {t} {self.noun()} at {rng.choice(_PLACES)} {_past(rng.choice(_VERBS))}?",
            f"Which {_plural(self.noun())} {rng.choice(_VERBS)} {t}?",
        )
        return rng.choice(forms)


@dataclass(frozen=True)
class SentencePool:
    """Sentences grouped by topic; chunks are drawn from one topic so their vectors cluster like real ones."""

    sentences: tuple[str, ...]
    topic_of: tuple[int, ...]           # topic index of each sentence
    topics: tuple[tuple[str, ...], ...]  # topic terms per topic
    members: tuple[tuple[int, ...], ...]  # sentence indices per topic

    @classmethod
    def generate(cls, n_sentences: int, seed: int, per_topic: int = 16) -> "SentencePool":
        gen = SentenceGenerator(seed)
        n_topics = max(1, n_sentences // per_topic)
        topics = tuple(tuple(gen.topic_term() for _ in range(3)) for _ in range(n_topics))
        sentences, topic_of = [], []
        members: list[list[int]] = [[] for _ in range(n_topics)]
        for i in range(n_sentences):
            t = i % n_topics
            sentences.append(gen.sentence(topics[t]))
            topic_of.append(t)
            members[t].append(i)
        return cls(tuple(sentences), tuple(topic_of), topics, tuple(tuple(m) for m in members))


def pool_size_for(n_chunks: int) -> int:
    """Sentences to embed for a collection of `n_chunks` (real embeddings, reused across chunks)."""
    # Each chunk draws ~10 sentences from a topic group of 16, so a pool of n/4
    # still gives every chunk a distinct text and a distinct mean vector.
    return max(64, min(6000, n_chunks // 4))


@dataclass(frozen=True)
class ChunkPlan:
    """Which pool sentences make up each chunk (text and vector are derived from it)."""

    text: str
    sentence_ids: tuple[int, ...]
    topic: int


def plan_chunks(pool: SentencePool, n_chunks: int, seed: int, sentences_per_chunk: tuple[int, int] = (9, 13)
                ) -> list[ChunkPlan]:
    """`n_chunks` distinct chunk texts of ~600-900 characters (like 900-character chunking), each mostly from one topic."""
    rng = random.Random(seed * 7919 + 1)
    n_topics = len(pool.topics)
    plans = []
    for _ in range(n_chunks):
        topic = rng.randrange(n_topics)
        own = pool.members[topic]
        k = rng.randint(*sentences_per_chunk)
        ids = [rng.choice(own) for _ in range(k - 1)] + [rng.randrange(len(pool.sentences))]
        rng.shuffle(ids)
        plans.append(ChunkPlan(" ".join(pool.sentences[i] for i in ids), tuple(ids), topic))
    return plans


def queries(pool: SentencePool, n: int, seed: int) -> list[str]:
    """Questions that use the corpus's own topic terms, so both BM25 and vectors find matches."""
    gen = SentenceGenerator(seed * 31 + 5)
    return [gen.question(gen.rng.choice(pool.topics)) for _ in range(n)]


def write_document_corpus(folder: Path, n_files: int, seed: int, median_chars: int = 1500) -> list[Path]:
    """`n_files` .txt/.md files of varied length (log-normal around `median_chars`, 300-30,000 characters).

    Paragraphs are separated by blank lines and Markdown files get headings, so
    the product's extraction and sentence splitting see ordinary documents.
    Returns the paths in a stable order.
    """
    gen = SentenceGenerator(seed)
    rng = random.Random(seed + 1)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n_files):
        topic = tuple(gen.topic_term() for _ in range(3))
        target = int(min(30_000, max(300, median_chars * rng.lognormvariate(0.0, 0.8))))
        markdown = rng.random() < 0.3
        parts, size = [], 0
        if markdown:
            parts.append(f"# The {topic[0]} {gen.noun()}")
        while size < target:
            para = gen.paragraph(rng.randint(3, 6), topic)
            if markdown and rng.random() < 0.25:
                parts.append(f"## {gen.noun().capitalize()} and {topic[1]}")
            parts.append(para)
            size += len(para)
        sub = folder / f"part-{i // 100:03d}"
        sub.mkdir(exist_ok=True)
        path = sub / f"doc-{i:05d}.{'md' if markdown else 'txt'}"
        path.write_text("\n\n".join(parts) + "\n", encoding="utf-8")
        paths.append(path)
    return paths
